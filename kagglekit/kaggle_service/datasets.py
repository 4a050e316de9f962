"""Datasets on the local Kaggle service, made as kaggle.com makes them from the ``kaggle`` client.

The client asks for an upload token per file (``StartBlobUpload``), PUTs the bytes (resumable, the
same endpoint as submission uploads), then names the tokens in ``CreateDataset`` or
``CreateDatasetVersion``. Each version is kept as the folder a notebook sees under
``/kaggle/input/<slug>``: uploaded zips (``--dir-mode zip`` folders) unpacked into folders of their
name. A token makes one version only: a repeated create after a lost answer is refused, not doubled.
"""

from __future__ import annotations

import secrets
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kagglesdk.blobs.types import blob_api_service as blobs
from kagglesdk.datasets.types import dataset_api_service as api
from kagglesdk.datasets.types.dataset_enums import DatabundleVersionStatus

from kagglekit.core.fileio import sha256_tree
from kagglekit.kaggle_service.state import ServiceError, ServiceState, Upload, utcnow


@dataclass
class DatasetVersion:
    number: int
    notes: str
    folder: Path
    sha256: str  # of the files (kagglekit.core.fileio.sha256_tree)
    created: datetime = field(default_factory=utcnow)


@dataclass
class Dataset:
    owner: str
    slug: str
    title: str
    license_name: str
    description: str
    is_private: bool
    versions: list[DatasetVersion] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def latest(self) -> DatasetVersion:
        return self.versions[-1]


class Datasets:
    """Every user's datasets, their versions' files under ``root/<owner>/<slug>/<version>/``."""

    def __init__(self, state: ServiceState, root: Path):
        self.state = state
        self.root = Path(root)
        self.datasets: dict[str, Dataset] = {}

    def get(self, owner: str, slug: str) -> Dataset:
        found = self.datasets.get(f"{owner}/{slug}")
        if found is None:
            raise ServiceError(404, f"Dataset {owner}/{slug} not found")
        return found

    def start_upload(self, username: str, name: str, size: int) -> str:
        with self.state.lock:
            token = secrets.token_hex(12)
            self.state.uploads[token] = Upload("", username, name, int(size))
            return token

    def create(self, username: str, owner: str, slug: str, title: str, license_name: str, description: str,
               is_private: bool, tokens: list[str]) -> Dataset:
        with self.state.lock:
            if owner != username:
                raise ServiceError(403, f"You cannot create a dataset owned by {owner}")
            if f"{owner}/{slug}" in self.datasets:
                raise ServiceError(409, f'The requested slug "{slug}" is already in use by a dataset')
            dataset = Dataset(owner, slug, title, license_name, description or "", is_private)
            self._add_version(dataset, username, tokens, "Initial release")
            self.datasets[dataset.ref] = dataset
            return dataset

    def new_version(self, username: str, owner: str, slug: str, notes: str, description: str | None,
                    tokens: list[str]) -> Dataset:
        with self.state.lock:
            dataset = self.get(owner, slug)
            if owner != username:
                raise ServiceError(403, f"You cannot create a version of {owner}/{slug}")
            self._add_version(dataset, username, tokens, notes)
            if description is not None:
                dataset.description = description
            return dataset

    def _add_version(self, dataset: Dataset, username: str, tokens: list[str], notes: str) -> None:
        uploads = [self._claim(username, token) for token in tokens]
        if not uploads:
            raise ServiceError(400, "A dataset version needs at least one file")
        number = len(dataset.versions) + 1
        folder = self.root / dataset.owner / dataset.slug / str(number)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for upload in uploads:
            if upload.file_name.endswith(".zip"):  # Kaggle unpacks an uploaded archive into a folder
                with zipfile.ZipFile(_bytes_file(folder, upload)) as archive:
                    archive.extractall(folder / upload.file_name[:-len(".zip")])
                (folder / upload.file_name).unlink()
            else:
                _bytes_file(folder, upload)
        for upload in uploads:
            upload.used = True
        dataset.versions.append(DatasetVersion(number, notes or "", folder, sha256_tree(folder)))

    def _claim(self, username: str, token: str) -> Upload:
        upload = self.state.uploads.get(token)
        if upload is None or upload.slug or upload.username != username:
            raise ServiceError(400, "Invalid blob file token")
        if upload.used:
            raise ServiceError(400, f"The upload of {upload.file_name} was already used by a dataset version")
        if not upload.complete:
            raise ServiceError(400, f"The upload of {upload.file_name} is incomplete "
                                    f"({len(upload.data)} of {upload.size} bytes)")
        return upload


def _bytes_file(folder: Path, upload: Upload) -> Path:
    path = folder / Path(upload.file_name).name
    path.write_bytes(bytes(upload.data))
    return path


# -- RPCs (server.py routes them) ---------------------------------------------------------------
def start_blob_upload(service, user: str, body: dict):
    request = blobs.ApiStartBlobUploadRequest.from_dict(body)
    token = service.datasets.start_upload(user, request.name, request.content_length)
    response = blobs.ApiStartBlobUploadResponse()
    response.token, response.create_url = token, f"{service.base_url}/upload/{token}"
    return response


def create_dataset(service, user: str, body: dict):
    request = api.ApiCreateDatasetRequest.from_dict(body)
    response = api.ApiCreateDatasetResponse()
    try:
        dataset = service.datasets.create(user, request.owner_slug, request.slug, request.title,
                                          request.license_name, request.description, request.is_private,
                                          [f.token for f in request.files])
    except ServiceError as exc:
        if exc.status != 409:
            raise
        response.status, response.error = "error", str(exc)  # kaggle.com answers this one in the body
        return response
    return _created(service, dataset, response)


def create_dataset_version(service, user: str, body: dict):
    request = api.ApiCreateDatasetVersionRequest.from_dict(body)
    dataset = service.datasets.new_version(user, request.owner_slug, request.dataset_slug,
                                           request.body.version_notes, request.body.description,
                                           [f.token for f in request.body.files])
    return _created(service, dataset, api.ApiCreateDatasetResponse())


def _created(service, dataset: Dataset, response):
    response.ref, response.url = dataset.ref, f"{service.base_url}/datasets/{dataset.ref}"
    response.status = "ok"
    return response


def get_dataset_status(service, user: str, body: dict):
    request = api.ApiGetDatasetStatusRequest.from_dict(body)
    service.datasets.get(request.owner_slug, request.dataset_slug)
    response = api.ApiGetDatasetStatusResponse()
    response.status = DatabundleVersionStatus.READY
    return response


def get_dataset(service, user: str, body: dict):
    request = api.ApiGetDatasetRequest.from_dict(body)
    dataset = service.datasets.get(request.owner_slug, request.dataset_slug)
    out = api.ApiDataset()
    out.ref, out.title, out.description = dataset.ref, dataset.title, dataset.description
    out.owner_ref, out.license_name, out.is_private = dataset.owner, dataset.license_name, dataset.is_private
    out.current_version_number, out.last_updated = dataset.latest.number, dataset.latest.created
    out.url = f"{service.base_url}/datasets/{dataset.ref}"
    versions = []
    for version in reversed(dataset.versions):  # newest first, as kaggle.com lists them
        item = api.ApiDatasetVersion()
        item.version_number, item.version_notes, item.creation_date = version.number, version.notes, version.created
        item.status = "ready"
        versions.append(item)
    out.versions = versions
    return out


RPCS = {
    ("blobs.BlobApiService", "StartBlobUpload"): start_blob_upload,
    ("datasets.DatasetApiService", "CreateDataset"): create_dataset,
    ("datasets.DatasetApiService", "CreateDatasetVersion"): create_dataset_version,
    ("datasets.DatasetApiService", "GetDatasetStatus"): get_dataset_status,
    ("datasets.DatasetApiService", "GetDataset"): get_dataset,
}
