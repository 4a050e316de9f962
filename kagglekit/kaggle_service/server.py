"""The local Kaggle service's HTTP front: kaggle.com's wire protocol on a loopback port."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import tempfile
import threading
import time
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kagglesdk.competitions.types import competition_api_service as api
from kagglesdk.competitions.types.submission_status import SubmissionStatus

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import ConfigError
from kagglekit.kaggle_service import datasets, kernels
from kagglekit.kaggle_service.faults import Fault, Faults
from kagglekit.kaggle_service.state import (
    HostedCompetition,
    ServiceError,
    ServiceState,
    Submission,
    host_competition,
)

log = logging.getLogger(__name__)

RPC = re.compile(r"/api/v1/([\w.]+)/(\w+)")
COMPETITIONS = "competitions.CompetitionApiService"  # answered by the rpc_ methods below
#: The other RPCs, one module per kind of thing: (service, method) -> handler(service, user, body) -> reply.
ROUTES = {**datasets.RPCS, **kernels.RPCS}
CHUNK = 64 * 1024
MAX_BODY = 512 * 1024 * 1024


class _Hangup(Exception):
    """Close the connection without an answer (a dropped request)."""


class LocalKaggleService:
    """Start with ``with LocalKaggleService(users) as service:``; host competitions with ``host``."""

    def __init__(self, users: dict[str, str], host: str = "127.0.0.1", port: int = 7777,
                 scoring_delay: float = 0.2, work_dir: Path | None = None, kernel_time_limit: float = 3600.0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the local Kaggle service only listens on loopback")
        self.state = ServiceState(users)
        work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="local-kaggle-"))
        self.datasets = datasets.Datasets(self.state, work / "datasets")
        self.kernels = kernels.Kernels(self, work / "kernels", kernel_time_limit)
        self.faults = Faults()
        self.calls: dict[str, int] = {}  # requests received per operation (tests count uploads, resumes)
        self.scoring_delay = scoring_delay
        self.address = (host, port)  # port 0: a free one, chosen as it starts
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.port}"

    def host(self, competition: Competition, data_dir: Path, work_dir: Path, **options) -> HostedCompetition:
        hosted = host_competition(competition, data_dir, work_dir, **options)
        with self.state.lock:
            self.state.competitions[hosted.slug] = hosted
        return hosted

    def start(self) -> "LocalKaggleService":
        handler = type("Handler", (_Handler,), {"service": self})
        server = ThreadingHTTPServer(self.address, handler, bind_and_activate=False)
        server.daemon_threads = True
        server.block_on_close = False
        server.allow_reuse_address = True
        try:
            server.server_bind()
            server.server_activate()
        except OSError as exc:
            server.server_close()
            raise ConfigError(f"cannot listen on port {self.address[1]} of {self.address[0]} ({exc.strerror}): "
                              "is another local Kaggle service or program using it? Choose another port "
                              "with --port") from exc
        self.address = server.server_address[:2]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="local-kaggle", daemon=True)
        self._thread.start()
        log.info("local Kaggle service on %s", self.base_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def count(self, op: str) -> None:
        with self.state.lock:
            self.calls[op] = self.calls.get(op, 0) + 1

    def submissions(self, slug: str) -> list[Submission]:
        with self.state.lock:
            return [s for s in self.state.submissions if s.slug == slug]

    def schedule_scoring(self, submission: Submission) -> None:
        fault = self.faults.take("score")
        delay = fault.seconds if fault is not None and fault.kind == "slow" else self.scoring_delay

        def score():
            time.sleep(delay)
            self.state.score(submission)

        threading.Thread(target=score, name=f"score-{submission.ref}", daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    service: LocalKaggleService
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 (signature from BaseHTTPRequestHandler)
        log.debug("%s %s", self.address_string(), format % args)

    # -- plumbing ----------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ServiceError(413, "Request too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, status: int, message: str, headers: dict | None = None) -> None:
        self._send(status, json.dumps({"code": status, "message": message}).encode(), headers)

    def _user(self) -> str:
        auth = self.headers.get("Authorization", "")
        username = key = None
        if auth.startswith("Basic "):
            try:
                username, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                pass
        return self.service.state.authenticate(username, key)

    def _run(self, op: str, work) -> None:
        """Run ``work()`` (which sends the answer) under the fault plan for ``op``."""
        self.service.count(op)
        fault: Fault | None = self.service.faults.take(op)
        try:
            if fault is not None:
                if fault.status is not None:
                    self._body()
                    headers = {"Retry-After": "0"} if fault.status == 429 else None
                    self._send_error(fault.status, f"Injected fault: HTTP {fault.status}", headers)
                    return
                if fault.kind == "drop":
                    self._body()
                    raise _Hangup
                if fault.kind == "slow" and op != "download":
                    time.sleep(fault.seconds)
            work(fault)
        except ServiceError as exc:
            self._send_error(exc.status, str(exc))
        except _Hangup:
            self.close_connection = True

    def _after(self, fault: Fault | None, send) -> None:
        """The work is done; answer, unless a fault says the answer gets lost."""
        if fault is not None and fault.kind == "500-after":
            self._send_error(500, "Injected fault: HTTP 500 after the work was done")
        elif fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
            raise _Hangup
        else:
            send()

    # -- verbs -------------------------------------------------------------------------------
    def do_POST(self):
        path = urlsplit(self.path).path
        match = RPC.fullmatch(path)
        if match is None:
            return self._run("unknown", lambda f: self._send_error(404, f"No such endpoint {path}"))
        service, method = match.groups()
        handler = getattr(self, f"rpc_{method}", None) if service == COMPETITIONS else None
        route = ROUTES.get((service, method))
        if handler is None and route is not None:
            def handler(user, body, fault):
                self._reply(fault, route(self.service, user, body))

        def work(fault):
            if handler is None:
                raise ServiceError(404, f"{service}/{method} is not implemented by the local Kaggle service")
            user = self._user()
            try:
                body = json.loads(self._body() or b"{}")
            except ValueError:
                raise ServiceError(400, "Request body is not JSON") from None
            handler(user, body, fault)

        self._run(method, work)

    def _reply(self, fault, obj) -> None:
        self._after(fault, lambda: self._send(200, obj.to_json().encode()))

    def rpc_ListDataFiles(self, user, body, fault):
        request = api.ApiListDataFilesRequest.from_dict(body)
        hosted = self.service.state.competition(request.competition_name)
        start = int(request.page_token or 0)
        size = request.page_size or 20
        response = api.ApiListDataFilesResponse()
        files = []
        for name, nbytes in hosted.files[start:start + size]:
            item = api.ApiDataFile()
            item.ref, item.name, item.total_bytes, item.creation_date = name, name, nbytes, hosted.created
            files.append(item)
        response.files = files
        if start + size < len(hosted.files):
            response.next_page_token = str(start + size)
        self._reply(fault, response)

    def rpc_DownloadDataFiles(self, user, body, fault):
        request = api.ApiDownloadDataFilesRequest.from_dict(body)
        hosted = self.service.state.joined(user, request.competition_name, "download data")
        url = f"{self.service.base_url}/files/{hosted.slug}.zip?token={self.service.state.download_secret}"
        self._after(fault, lambda: self._send(302, b"", {"Location": url}))

    def rpc_GetSubmissionLimits(self, user, body, fault):
        request = api.ApiGetSubmissionLimitsRequest.from_dict(body)
        state = self.service.state
        with state.lock:
            hosted = state.competition(request.competition_name)
            used = state.used_today(user, hosted.slug)
            total = len(state.submissions_of(user, hosted.slug))
        limits = api.ApiSubmissionLimits()
        limits.num_today, limits.num_total = used, total
        limits.num_allowed_now, limits.limited_by_total = max(0, hosted.daily_limit - used), False
        self._reply(fault, limits)

    def rpc_StartSubmissionUpload(self, user, body, fault):
        request = api.ApiStartSubmissionUploadRequest.from_dict(body)
        token = self.service.state.start_upload(user, request.competition_name, request.file_name,
                                                request.content_length)
        response = api.ApiStartSubmissionUploadResponse()
        response.token, response.create_url = token, f"{self.service.base_url}/upload/{token}"
        self._reply(fault, response)

    def rpc_CreateSubmission(self, user, body, fault):
        request = api.ApiCreateSubmissionRequest.from_dict(body)
        submission = self.service.state.create_submission(
            user, request.competition_name, request.blob_file_tokens, request.submission_description)
        self.service.schedule_scoring(submission)
        response = api.ApiCreateSubmissionResponse()
        title = self.service.state.competitions[submission.slug].competition.title
        response.message, response.ref = f"Successfully submitted to {title}", submission.ref
        self._reply(fault, response)

    def rpc_ListSubmissions(self, user, body, fault):
        request = api.ApiListSubmissionsRequest.from_dict(body)
        rows = self.service.state.submissions_of(user, request.competition_name)
        size = request.page_size or 20
        start = (max(request.page or 1, 1) - 1) * size
        response = api.ApiListSubmissionsResponse()
        response.submissions = [_api_submission(s) for s in rows[start:start + size]]
        self._reply(fault, response)

    def rpc_GetSubmission(self, user, body, fault):
        request = api.ApiGetSubmissionRequest.from_dict(body)
        with self.service.state.lock:
            found = [s for s in self.service.state.submissions if s.ref == request.ref and s.username == user]
        if not found:
            raise ServiceError(404, f"Submission {request.ref} not found")
        self._reply(fault, _api_submission(found[0]))

    def rpc_GetLeaderboard(self, user, body, fault):
        request = api.ApiGetLeaderboardRequest.from_dict(body)
        rows = []
        for s in self.service.state.leaderboard(request.competition_name)[:request.page_size or 50]:
            row = api.ApiLeaderboardSubmission()
            row.team_id, row.team_name = _team_id(s.username), s.username
            row.submission_date, row.score = s.date, f"{s.public_score:.5f}"
            rows.append(row)
        response = api.ApiGetLeaderboardResponse()
        response.submissions = rows
        self._reply(fault, response)

    def do_GET(self):
        parts = urlsplit(self.path)
        output = re.fullmatch(r"/kernel-output/(\w+)/([\w.-]+)/([\w.-]+)/(\d+)/(.+)", parts.path)
        if output is not None:
            return self._run("kernel-output", lambda fault: self._send_output(*output.groups(), fault))
        match = re.fullmatch(r"/files/([\w.-]+)\.zip", parts.path)

        def work(fault):
            token = parse_qs(parts.query).get("token", [""])[0]
            if match is None or token != self.service.state.download_secret:
                raise ServiceError(403, "Invalid or expired download URL")
            hosted = self.service.state.competition(match.group(1))
            self._send_file(hosted.zip_path.read_bytes(), hosted.etag, hosted.created, fault)

        self._run("download", work)

    def _send_output(self, token: str, owner: str, slug: str, version: str, name: str, fault) -> None:
        if token != self.service.state.download_secret:
            raise ServiceError(403, "Invalid or expired download URL")
        path = kernels.output_file(self.service, owner, slug, int(version), name)
        data = path.read_bytes()
        etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        self._send_file(data, etag, datetime.fromtimestamp(path.stat().st_mtime), fault, "application/octet-stream")

    def _send_file(self, data: bytes, etag: str, created: datetime, fault: Fault | None,
                   content_type: str = "application/zip") -> None:
        start = 0
        status = 200
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range == etag):
            start = int(wanted.group(1))
            if start >= len(data):
                return self._send_error(416, "Requested range not satisfiable",
                                        {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            self.service.count("download-resumed")
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(created.timestamp(), usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        slow = fault is not None and fault.kind == "slow"
        chunks = range(0, len(body), CHUNK)
        pause = fault.seconds / max(1, len(chunks)) if slow else 0.0
        for offset in chunks:
            self.wfile.write(body[offset:offset + CHUNK])
            if pause:
                self.wfile.flush()
                time.sleep(pause)

    def do_PUT(self):
        match = re.fullmatch(r"/upload/(\w+)", urlsplit(self.path).path)

        def work(fault):
            if match is None:
                raise ServiceError(404, "No such upload")
            upload = self.service.state.upload(match.group(1))
            body = self._body()
            content_range = self.headers.get("Content-Range", "")
            with self.service.state.lock:
                if content_range.startswith("bytes */"):  # "how much do you have?"
                    pass
                elif content_range.startswith("bytes "):
                    first = int(content_range[6:].split("-")[0])
                    upload.data[first:] = body
                else:
                    upload.data[:] = body
                complete, have = upload.complete, len(upload.data)
            if complete:
                return self._after(fault, lambda: self._send(200, b"{}"))
            headers = {"Range": f"bytes=0-{have - 1}"} if have else {}
            self._after(fault, lambda: self._send(308, b"", headers))

        self._run("upload", work)


def _team_id(username: str) -> int:
    return sum(ord(c) * 31**i for i, c in enumerate(username)) % 1_000_000


def _api_submission(s: Submission) -> api.ApiSubmission:
    out = api.ApiSubmission()
    out.ref, out.total_bytes, out.date = s.ref, len(s.blob), s.date
    out.description, out.file_name, out.status = s.description, s.file_name, SubmissionStatus[s.status]
    out.submitted_by, out.team_name = s.username, s.username
    out.url = f"/submissions/{s.ref}/{s.file_name}"
    if s.status == "COMPLETE":
        out.public_score, out.private_score = f"{s.public_score:.5f}", f"{s.private_score:.5f}"
    if s.error:
        out.error_description = s.error
    return out
