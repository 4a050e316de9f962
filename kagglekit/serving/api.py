"""A finished run behind HTTP: FastAPI, served by uvicorn (``kagglekit serve-model``).

``POST /predict`` takes one or more images as multipart ``files`` and answers each one's prediction
(a classifier's class and probabilities; a segmenter's mask as a palette PNG, its pixel shares and any
image labels: the predictor's ``answer``); ``GET /health``; ``GET /metadata`` (competition, classes,
CV, provenance). The model is loaded once (``serving.predictor``); requests decode their uploads
concurrently in worker threads, and a ``DynamicBatcher`` joins concurrent requests' images into one
model call. Limits: the request body (413 before it is read), the number of
files per request (413) and each image's pixels (413: a decompression bomb is refused before it is
decoded); an upload that is not a readable image gets 415, naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Iterator

import numpy as np
from fastapi import FastAPI, File, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from kagglekit.data.images import TooManyPixels, UnreadableImage, decode_rgb
from kagglekit.serving.batching import DynamicBatcher
from kagglekit.serving.predictor import BATCH, RunPredictor

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_FILES = 64


class UploadLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``. A declared Content-Length is checked
    before anything is read; a body without one (chunked) is counted as it arrives."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await self._refuse(scope, send, "the request body" + (f" ({int(length)} bytes)" if length.isdigit() else ""))
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, f"the request body is larger than the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope, send, what: str) -> None:
        from starlette.responses import JSONResponse

        response = JSONResponse({"detail": f"{what} is larger than the limit of {self.max_bytes} bytes"}, 413)
        await response(scope, None, send)


def create_app(predictor: RunPredictor, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_files: int = DEFAULT_MAX_FILES) -> FastAPI:
    metadata = predictor.metadata()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.batcher = DynamicBatcher(predictor.predict_images, max_images=BATCH)
        yield
        app.state.batcher.close()

    app = FastAPI(title=f"kagglekit: {metadata['competition']} ({metadata['run']})", lifespan=lifespan)
    app.add_middleware(UploadLimit, max_bytes=max_upload_bytes)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/metadata")
    def get_metadata() -> dict:
        return metadata

    @app.post("/predict")
    async def predict(files: list[UploadFile] = File(..., description="one or more images")) -> dict:
        if len(files) > max_files:
            raise HTTPException(413, f"{len(files)} files in one request; the limit is {max_files}")
        names = [f.filename or f"file {i + 1}" for i, f in enumerate(files)]
        uploads = [await f.read() for f in files]
        images = await run_in_threadpool(decode_uploads, uploads, names)
        results = await asyncio.wrap_future(app.state.batcher.submit(images))
        return {"predictions": [predictor.answer(name, r) for name, r in zip(names, results)]}

    return app


def decode_uploads(uploads: list[bytes], names: list[str]) -> list[np.ndarray]:
    """Every upload decoded, or an HTTPException naming the first that is not a readable image."""
    images = []
    for data, name in zip(uploads, names):
        try:
            images.append(decode_rgb(data, name))
        except TooManyPixels as exc:
            raise HTTPException(413, str(exc)) from None
        except UnreadableImage as exc:
            raise HTTPException(415, f"{exc}; send PNG, JPEG, BMP, TIFF, WebP or GIF images") from None
    return images


@contextlib.contextmanager
def serving_in_background(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn from a background thread (tests, benchmarks); yields the base URL.
    Port 0 takes a free one."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="kagglekit-serve-model", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
