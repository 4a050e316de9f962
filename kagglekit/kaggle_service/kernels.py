"""Notebooks on the local Kaggle service: pushed versions, each run in a sandbox as kaggle.com runs it.

A push (``SaveKernel``) makes a new version and queues its run. A run is a session folder:

    kaggle/input/<slug>/     the competition's data and each attached dataset version (links)
    kaggle/working/          the current folder; what the notebook writes there is its output
    log.txt                  everything the cells printed, kept when the run fails or times out

The notebook runs with nbclient in a child process (execute.py), offline when the kernel says
``enable_internet: false`` (netguard/sitecustomize.py on its PYTHONPATH refuses non-loopback
sockets), with ``$KAGGLE_INPUT_ROOT`` pointing notebook/bootstrap.py at the sandbox's inputs, and is
killed at its time limit. Runs take turns, like a user's sessions on Kaggle. A code competition's
submission reruns a finished version with the hidden test set mounted in place of the public one,
and scores the file it writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kagglesdk.competitions.types import competition_api_service as capi
from kagglesdk.kernels.types import kernels_api_service as api
from kagglesdk.kernels.types.kernels_enums import KernelWorkerStatus

from kagglekit.kaggle_service.state import HostedCompetition, ServiceError, Submission

HERE = Path(__file__).parent
EXECUTE = HERE / "execute.py"
NETGUARD = HERE / "netguard"
TIMED_OUT = "timed out"


@dataclass
class Session:
    """One run of a kernel version."""

    folder: Path
    status: str = "QUEUED"  # KernelWorkerStatus names: QUEUED, RUNNING, COMPLETE, ERROR
    failure: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def input(self) -> Path:
        return self.folder / "kaggle" / "input"

    @property
    def working(self) -> Path:
        return self.folder / "kaggle" / "working"

    @property
    def log(self) -> Path:
        return self.folder / "log.txt"

    def outputs(self) -> list[str]:
        return sorted(p.relative_to(self.working).as_posix() for p in self.working.rglob("*") if p.is_file())


@dataclass
class KernelVersion:
    owner: str
    slug: str
    number: int
    notebook: Path
    competition: str | None  # the competition source's slug
    datasets: dict[str, Path]  # mount name -> the dataset version's folder, fixed at push time
    enable_internet: bool
    machine_shape: str
    time_limit: float
    session: Session

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}/{self.number}"


class Kernels:
    """Every user's kernels (``root/<owner>/<slug>/<version>/``) and the runs of their versions."""

    def __init__(self, service, root: Path, time_limit: float):
        self.service = service
        self.root = Path(root)
        self.time_limit = time_limit
        self.versions: dict[tuple[str, str], list[KernelVersion]] = {}
        self._turn = threading.Lock()  # one run at a time: they share the machine

    def push(self, user: str, request: api.ApiSaveKernelRequest) -> KernelVersion:
        owner, _, slug = (request.slug or "").partition("/")
        if owner != user or not slug:
            raise ServiceError(403, f"You cannot push to kernel {request.slug!r}: kernels are pushed as <your user>/<slug>")
        if request.kernel_type != "notebook" or request.language != "python":
            raise ServiceError(400, "The local Kaggle service runs Python notebooks only")
        competitions = list(request.competition_data_sources or [])
        for slug_ in competitions:
            self.service.state.competition(slug_)
        if len(competitions) > 1:
            raise ServiceError(400, "The local Kaggle service mounts at most one competition per kernel")
        datasets = {}
        with self.service.state.lock:
            for ref in request.dataset_data_sources or []:
                ds_owner, _, ds_slug = ref.partition("/")
                dataset = self.service.datasets.get(ds_owner, ds_slug.split("/")[0])
                datasets[dataset.slug] = dataset.latest.folder
            versions = self.versions.setdefault((owner, slug), [])
            number = len(versions) + 1
            folder = self.root / owner / slug / str(number)
            folder.mkdir(parents=True, exist_ok=True)
            notebook = folder / "notebook.ipynb"
            notebook.write_text(request.text, encoding="utf-8")
            limit = float(request.session_timeout_seconds or self.time_limit)
            version = KernelVersion(owner, slug, number, notebook, competitions[0] if competitions else None,
                                    datasets, request.enable_internet, request.machine_shape or
                                    ("NvidiaTeslaT4" if request.enable_gpu else ""), limit, Session(folder / "run"))
            versions.append(version)
        threading.Thread(target=self.run, args=(version, version.session), name=f"kernel-{version.ref}",
                         daemon=True).start()
        return version

    def find(self, owner: str, slug: str, number: int | None = None) -> KernelVersion:
        versions = self.versions.get((owner, slug))
        if not versions:
            raise ServiceError(404, f"Kernel {owner}/{slug} not found")
        if number is None:
            return versions[-1]
        if not 1 <= number <= len(versions):
            raise ServiceError(404, f"Kernel {owner}/{slug} has no version {number}")
        return versions[number - 1]

    def run(self, version: KernelVersion, session: Session, competition_dir: Path | None = None) -> Session:
        """Run ``version`` in ``session`` (its competition's public data, or ``competition_dir``); blocks."""
        with self._turn:
            session.status = "RUNNING"
            try:
                self._mount(version, session, competition_dir)
                session.status, session.failure = self._execute(version, session)
            except OSError as exc:
                session.status, session.failure = "ERROR", f"the session could not start: {exc}"
            finally:
                session.done.set()
        return session

    def _mount(self, version: KernelVersion, session: Session, competition_dir: Path | None) -> None:
        session.working.mkdir(parents=True, exist_ok=True)
        (session.folder / "home").mkdir(exist_ok=True)
        mounts = dict(version.datasets)
        if version.competition:
            mounts[version.competition] = competition_dir or self.service.state.competition(version.competition).data_dir
        for name, folder in mounts.items():
            (session.input / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(Path(folder).resolve(), session.input / name, target_is_directory=True)

    def _execute(self, version: KernelVersion, session: Session) -> tuple[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KAGGLE", "PYTHON", "JPY")) and "proxy" not in k.lower()}
        env.update(HOME=str(session.folder / "home"), KAGGLE_INPUT_ROOT=str(session.input),
                   KAGGLE_KERNEL_RUN_TYPE="Batch")
        if not version.enable_internet:
            env.update(PYTHONPATH=str(NETGUARD), NETGUARD_LOG=str(session.folder / "netguard.log"))
        with open(session.log, "ab") as log:
            proc = subprocess.Popen([sys.executable, str(EXECUTE), str(version.notebook),
                                     str(session.folder / "__notebook__.ipynb"), str(session.folder / "kernel.err")],
                                    cwd=session.working, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                code = proc.wait(timeout=version.time_limit)
            except subprocess.TimeoutExpired:
                _stop(proc)
                failure = f"Notebook {TIMED_OUT}: it ran past its time limit of {version.time_limit:g} s"
                log.write(f"--- {failure}\n".encode())
                return "ERROR", failure
        if code == 0:
            return "COMPLETE", ""
        last = [line for line in log_text(session).splitlines() if line.strip()][-1:] or ["no output"]
        return "ERROR", f"Notebook threw an exception: {last[0]}"

    def submit(self, user: str, request: capi.ApiCreateCodeSubmissionRequest) -> Submission:
        """A code competition submission of a finished kernel version; scored after a rerun on hidden data."""
        state = self.service.state
        version = self.find(request.kernel_owner, request.kernel_slug, request.kernel_version)
        file_name = request.file_name or "submission.csv"
        if version.owner != user:
            raise ServiceError(403, f"You can only submit your own notebooks, not {version.owner}/{version.slug}")
        if version.session.status != "COMPLETE":
            raise ServiceError(400, f"Notebook {version.ref} has not run successfully (status "
                                    f"{version.session.status}); only a successful version can be submitted")
        if version.enable_internet:
            raise ServiceError(400, "Submission not allowed: notebooks submitted to this competition must have "
                                    "internet access disabled")
        if file_name not in version.session.outputs():
            raise ServiceError(400, f"Submission file {file_name} not found in the output of notebook {version.ref}")
        submission = state.create_code_submission(user, request.competition_name, version.ref, file_name,
                                                  request.submission_description or "")
        hosted = state.competition(submission.slug)
        threading.Thread(target=self._score, args=(version, submission, hosted), daemon=True,
                         name=f"code-submission-{submission.ref}").start()
        return submission

    def _score(self, version: KernelVersion, submission: Submission, hosted: HostedCompetition) -> None:
        session = self.run(version, Session(version.notebook.parent / f"submission-{submission.ref}"),
                           hosted.hidden_dir)
        output = session.working / submission.file_name
        if session.status != "COMPLETE":
            self.service.state.fail(submission, f"Notebook rerun on the hidden test set failed: {session.failure}")
        elif not output.is_file():
            self.service.state.fail(submission, f"Submission CSV not found: the rerun wrote no {submission.file_name}")
        else:
            submission.blob = output.read_bytes()
            self.service.state.score(submission)


def _stop(proc: subprocess.Popen) -> None:
    """End a session at its time limit: SIGTERM lets execute.py shut its notebook kernel down, then anything
    left of the session goes."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def log_text(session: Session) -> str:
    return session.log.read_text(encoding="utf-8", errors="replace") if session.log.is_file() else ""


def _version_number(label: str | None) -> int | None:
    """``v3`` or ``3`` (how the kaggle client names a version), or None for the latest."""
    text = (label or "").lstrip("v")
    if not text:
        return None
    if not text.isdigit():
        raise ServiceError(400, f"Invalid kernel version {label!r}")
    return int(text)


# -- RPCs (server.py routes them) ---------------------------------------------------------------
def save_kernel(service, user: str, body: dict):
    version = service.kernels.push(user, api.ApiSaveKernelRequest.from_dict(body))
    response = api.ApiSaveKernelResponse()
    response.ref, response.version_number = f"/code/{version.owner}/{version.slug}", version.number
    response.url = f"{service.base_url}/code/{version.owner}/{version.slug}"
    return response


def get_kernel_session_status(service, user: str, body: dict):
    request = api.ApiGetKernelSessionStatusRequest.from_dict(body)
    session = service.kernels.find(request.user_name, request.kernel_slug,
                                   _version_number(request.version_label)).session
    response = api.ApiGetKernelSessionStatusResponse()
    response.status = KernelWorkerStatus[session.status]
    if session.failure:
        response.failure_message = session.failure
    return response


def list_kernel_session_output(service, user: str, body: dict):
    request = api.ApiListKernelSessionOutputRequest.from_dict(body)
    version = service.kernels.find(request.user_name, request.kernel_slug, _version_number(request.version_label))
    files = []
    if version.session.done.is_set():
        for name in version.session.outputs():
            item = api.ApiKernelSessionOutputFile()
            item.file_name = name
            item.url = (f"{service.base_url}/kernel-output/{service.state.download_secret}/"
                        f"{version.owner}/{version.slug}/{version.number}/{name}")
            files.append(item)
    response = api.ApiListKernelSessionOutputResponse()
    response.files, response.log = files, log_text(version.session)
    return response


def output_file(service, owner: str, slug: str, number: int, name: str) -> Path:
    """The output file a kernel-output URL names (server.py serves it)."""
    session = service.kernels.find(owner, slug, number).session
    if name not in session.outputs():
        raise ServiceError(404, f"No output file {name}")
    return session.working / name


def create_code_submission(service, user: str, body: dict):
    submission = service.kernels.submit(user, capi.ApiCreateCodeSubmissionRequest.from_dict(body))
    response = capi.ApiCreateCodeSubmissionResponse()
    title = service.state.competition(submission.slug).competition.title
    response.message, response.ref = f"Successfully submitted to {title}", submission.ref
    return response


RPCS = {
    ("kernels.KernelsApiService", "SaveKernel"): save_kernel,
    ("kernels.KernelsApiService", "GetKernelSessionStatus"): get_kernel_session_status,
    ("kernels.KernelsApiService", "ListKernelSessionOutput"): list_kernel_session_output,
    ("competitions.CompetitionApiService", "CreateCodeSubmission"): create_code_submission,
}
