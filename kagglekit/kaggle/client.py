"""The Kaggle API as kagglekit uses it: the official ``kaggle`` client, plus clear errors and retries.

Three things the ``kaggle`` 2.x client does not do that we need:
- honour ``KAGGLE_API_ENVIRONMENT`` (its ``KaggleApi`` always talks to production; the underlying
  ``kagglesdk`` client does honour it, e.g. ``TEST`` = http://localhost:7777, the local service);
- reach a local service on another port (``KAGGLEKIT_LOCAL_KAGGLE_PORT``; kagglesdk's ports are fixed);
- time out: requests without a timeout can hang forever on a stalled connection.
All are fixed in one override of ``KaggleApi.build_kaggle_client``. Every HTTP request is still
made by the ``kaggle``/``kagglesdk`` code.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Callable, TypeVar

import requests
from requests.adapters import HTTPAdapter

from kagglekit.core.errors import KaggleError
from kagglekit.kaggle.credentials import (
    HOW_TO_GET_A_KEY,
    Credentials,
    api_endpoint,
    api_environment,
    load_credentials,
)
from kagglekit.kaggle.retry import Backoff, call_with_retry

log = logging.getLogger(__name__)
T = TypeVar("T")

UPLOAD_FAILED = "Could not submit to competition"  # KaggleApi.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE
MAX_PAGES = 1000


def _kaggle_api_class():
    """Import ``KaggleApi`` without the auth banner ``import kaggle`` prints when it finds no key."""
    with contextlib.redirect_stdout(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi
    return KaggleApi


class _Transport(HTTPAdapter):
    """Every request gets a timeout, and one for kagglesdk's fixed address of the environment (``fixed``)
    goes to ``endpoint`` instead (the same unless KAGGLEKIT_LOCAL_KAGGLE_PORT moved it)."""

    def __init__(self, timeout: float, fixed: str, endpoint: str):
        super().__init__()
        self.timeout = timeout
        self.fixed, self.endpoint = fixed + "/", endpoint + "/"

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if request.url.startswith(self.fixed):
            request.url = self.endpoint + request.url[len(self.fixed):]
        return super().send(request, **kwargs)


def _make_api(credentials: Credentials, timeout: float):
    from kagglesdk.kaggle_client import KaggleClient
    from kagglesdk.kaggle_env import get_endpoint

    env = api_environment()
    fixed, wanted = get_endpoint(env), api_endpoint()

    class EnvironmentAwareKaggleApi(_kaggle_api_class()):
        def build_kaggle_client(self):
            client = KaggleClient(
                env=env,
                username=self.config_values.get(self.CONFIG_NAME_USER),
                password=self.config_values.get(self.CONFIG_NAME_KEY),
                response_processor=self.get_response_processor(),
            )
            http = client.http_client()
            http._init_session()
            adapter = _Transport(timeout, fixed, wanted)
            http._session.mount("http://", adapter)
            http._session.mount("https://", adapter)
            return client

    api = EnvironmentAwareKaggleApi()
    api.config_values = {api.CONFIG_NAME_USER: credentials.username, api.CONFIG_NAME_KEY: credentials.key}
    api._authenticated = True
    return api


class KaggleService:
    """One user's view of Kaggle: files, download, limits, submissions, leaderboard, submit; datasets,
    notebooks (kernels) and code-competition submissions."""

    def __init__(self, credentials: Credentials | None = None, timeout: float = 60.0,
                 backoff: Backoff = Backoff()):
        self.credentials = credentials or load_credentials()
        self.timeout = timeout
        self.backoff = backoff
        self.api = _make_api(self.credentials, timeout)

    # -- calls -------------------------------------------------------------------------------
    def call(self, action: str, slug: str, func: Callable[[], T], kind: str = "competition") -> T:
        """Run one API call about the ``kind`` (competition, dataset, kernel) ``slug``; turn its failure
        into a KaggleError that says what to do."""
        try:
            return func()
        except KaggleError:
            raise
        except (requests.RequestException, OSError, ValueError) as exc:
            raise translate(exc, action, slug, self.credentials, kind) from None

    def read(self, action: str, slug: str, func: Callable[[], T], kind: str = "competition") -> T:
        """A call that changes nothing on Kaggle, so it is retried on transient failures."""
        return call_with_retry(lambda: self.call(action, slug, func, kind), action, self.backoff)

    def quietly(self, func: Callable[[], T]) -> Callable[[], T]:
        """``func`` with the client's own printing (progress bars, upload chatter) swallowed."""
        def run():
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return func()
        return run

    def list_files(self, slug: str) -> list:
        files, token = [], None
        for _ in range(MAX_PAGES):
            page = self.read("list files", slug, lambda: self.api.competition_list_files(slug, token, 200))
            files += page.files
            token = page.next_page_token
            if not token:
                return files
        raise KaggleError(f"{slug}: the file list has more than {MAX_PAGES} pages; giving up")

    def download_all(self, slug: str, folder: Path) -> Path:
        """Download (resuming a partial file of the same remote object) ``folder/<slug>.zip``."""
        self.read("download", slug, lambda: self.api.competition_download_files(slug, str(folder), quiet=True))
        return folder / f"{slug}.zip"

    def limits(self, slug: str):
        return self.read("check the submission limit", slug, lambda: self.api.competition_get_submission_limits(slug))

    def submissions(self, slug: str, page_size: int = 100) -> list:
        return self.read("list submissions", slug,
                         lambda: self.api.competition_submissions(slug, page_size=page_size)) or []

    def leaderboard(self, slug: str, page_size: int = 50) -> list:
        return self.read("read the leaderboard", slug,
                         lambda: self.api.competition_leaderboard_view(slug, page_size=page_size)) or []

    def create_submission(self, slug: str, path: Path, description: str) -> int | None:
        """Upload and submit once (never retried here: see kagglekit.kaggle.submit). Returns the ref."""
        def submit_once():
            try:
                return self.api.competition_submit(str(path), description, slug, quiet=True)
            except requests.RequestException as exc:
                error = translate(exc, "submit", slug, self.credentials)
                request = getattr(exc, "request", None)
                if request is not None and not str(request.url).endswith("/CreateSubmission"):
                    error.ambiguous = False  # failed before the step that creates the submission
                raise error from None

        with contextlib.redirect_stdout(io.StringIO()) as printed:  # the client prints upload errors
            response = self.call("submit", slug, submit_once)
        if response.message == UPLOAD_FAILED:
            detail = self.credentials.redact(printed.getvalue().strip())
            raise KaggleError(f"{slug}: the upload of {path.name} did not complete ({detail or 'no detail'}); "
                              "it is safe to retry", transient=True)
        return response.ref or None

    # -- datasets ----------------------------------------------------------------------------
    def dataset(self, ref: str):
        """The dataset ``owner/slug`` (kagglesdk's ApiDataset: description, versions), or None if there is none."""
        from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

        request = ApiGetDatasetRequest()
        request.owner_slug, request.dataset_slug = ref.split("/")

        def get():
            with self.api.build_kaggle_client() as kaggle:
                return kaggle.datasets.dataset_api_client.get_dataset(request)

        try:
            return self.read("read the dataset", ref, get, "dataset")
        except KaggleError as exc:
            if exc.status == 404:
                return None
            raise

    def upload_dataset(self, folder: Path, ref: str, notes: str | None) -> None:
        """Upload ``folder`` (subfolders zipped, as ``--dir-mode zip``) as the new dataset ``ref`` (``notes``
        None) or a new version of it. Never retried here as a whole: see kagglekit.kaggle.datasets."""
        def upload():
            if notes is None:
                return self.api.dataset_create_new(str(folder), quiet=True, dir_mode="zip")
            return self.api.dataset_create_version(str(folder), notes, quiet=True, dir_mode="zip")

        response = self.call("upload the dataset", ref, self.quietly(upload), "dataset")
        if response.error:
            raise KaggleError(f"cannot upload the dataset {ref!r}: Kaggle said: {response.error}")

    # -- kernels (notebooks) ------------------------------------------------------------------
    def push_kernel(self, folder: Path, ref: str, timeout: float | None, accelerator: str | None):
        """Push the notebook in ``folder`` (its kernel-metadata.json) as a new version; starts its run."""
        push = self.quietly(lambda: self.api.kernels_push(str(folder), str(int(timeout)) if timeout else None,
                                                          accelerator))
        response = self.call("push the notebook", ref, push, "kernel")
        if response.error:
            raise KaggleError(f"cannot push the notebook {ref!r}: Kaggle said: {response.error}")
        return response

    def kernel_status(self, ref: str):
        """Status of a kernel version ``owner/slug/version`` (status, failure_message)."""
        return self.read("read the notebook's status", ref, self.quietly(lambda: self.api.kernels_status(ref)),
                         "kernel")

    def kernel_output(self, ref: str, folder: Path) -> list[Path]:
        """Download the output files of a kernel version into ``folder`` (and its log, as <slug>.log)."""
        files, _ = self.read("download the notebook's output", ref, self.quietly(
            lambda: self.api.kernels_output(ref, str(folder), force=True, quiet=True)), "kernel")
        return [Path(f) for f in files]

    def kernel_log(self, ref: str) -> str:
        return self.read("read the notebook's log", ref, self.quietly(lambda: self.api.kernels_logs(ref)), "kernel")

    def submit_code(self, slug: str, kernel: str, version: int, file_name: str, description: str) -> int | None:
        """Submit a kernel version's output file to code competition ``slug`` once (see kaggle.submit)."""
        submit = self.quietly(lambda: self.api.competition_submit_code(file_name, description, slug, kernel, version,
                                                                       quiet=True))
        return self.call("submit the notebook", slug, submit).ref or None


def translate(exc: Exception, action: str, slug: str, credentials: Credentials,
              kind: str = "competition") -> KaggleError:
    """A KaggleError for a failed ``action`` on the ``kind`` ``slug``: cause, fix, retry advice."""
    response = getattr(exc, "response", None)
    said = credentials.redact(str(exc))[:300]
    where = f"cannot {action} for {slug!r}"
    if response is None:
        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return KaggleError(f"{where}: no answer from {api_endpoint()} ({type(exc).__name__}); the network or "
                               "Kaggle is down, or the request timed out. Retry later.",
                               transient=True, ambiguous=True)
        return KaggleError(f"{where}: {type(exc).__name__}: {said}")
    status = response.status_code
    if status == 401:
        return KaggleError(f"{where}: Kaggle rejected the credentials of user {credentials.username!r} "
                           f"(from {credentials.source}); the key is wrong or was revoked. {HOW_TO_GET_A_KEY}",
                           status=status)
    if status == 403 and kind != "competition":
        return KaggleError(f"{where}: access denied ({said}). Is the {kind} yours, and its id spelled "
                           f"<your user>/<slug>?", status=status)
    if status == 404 and kind != "competition":
        return KaggleError(f"{where}: Kaggle has no {kind} {slug!r} visible to user {credentials.username!r} "
                           f"({said}).", status=status)
    if status == 403:
        return KaggleError(f"{where}: access denied ({said}). Most likely you have not joined the competition "
                           f"or accepted its rules: open https://www.kaggle.com/competitions/{slug}/rules, "
                           "accept them, then retry.", status=status)
    if status == 404:
        return KaggleError(f"{where}: Kaggle has no competition {slug!r} visible to user "
                           f"{credentials.username!r} ({said}). Check the slug: it is the last part of "
                           "https://www.kaggle.com/competitions/<slug> (adapters declare it as `slug`).",
                           status=status)
    if status == 429:
        return KaggleError(f"{where}: rate limited by Kaggle (HTTP 429); slow down and retry.", status=status,
                           transient=True, retry_after=_retry_after(response))
    if status >= 500:
        return KaggleError(f"{where}: Kaggle service error (HTTP {status}: {said}); usually temporary, "
                           "retry later.", status=status, transient=True, ambiguous=True)
    if "code competition" in said.lower():
        return KaggleError(f"{where}: {slug} is a code competition: Kaggle scores a notebook's output after "
                           "rerunning it on the hidden test set, never an uploaded file. Publish the run's notebook "
                           "and submit it: kagglekit publish RUN_DIR --submit", status=status)
    if any(word in said.lower() for word in ("daily", "allowance", "limit")):
        return KaggleError(f"{where}: daily submission limit reached ({said}). Submissions count per UTC day; "
                           "try again after midnight UTC.", status=status)
    return KaggleError(f"{where}: Kaggle refused the request (HTTP {status}: {said}).", status=status)


def _retry_after(response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None
