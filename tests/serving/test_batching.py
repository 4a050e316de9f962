"""The REST endpoint's dynamic batcher: concurrent submissions share calls, each gets its own results."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kagglekit.serving.batching import DynamicBatcher


def test_concurrent_jobs_share_calls_and_get_their_own_results():
    sizes = []

    def predict(images):
        sizes.append(len(images))
        time.sleep(0.05)  # a model call: others queue meanwhile
        return [image * 10 for image in images]

    batcher = DynamicBatcher(predict, max_images=16)
    with ThreadPoolExecutor(8) as pool:
        futures = list(pool.map(lambda i: batcher.submit([i, i + 100]), range(24)))
    results = [f.result(timeout=10) for f in futures]
    batcher.close()
    assert results == [[i * 10, (i + 100) * 10] for i in range(24)]
    assert batcher.calls == len(sizes) < 24 and max(sizes) > 2  # calls were joined
    assert max(sizes) <= 16 + 2  # a call stops taking jobs once it holds max_images


def test_a_lone_job_is_served_at_once_and_an_error_stays_with_its_job():
    started = threading.Event()
    release = threading.Event()

    def predict(images):
        if "slow" in images:
            started.set()
            release.wait(10)
        if "bad" in images:
            raise ValueError("cannot predict")
        return images

    batcher = DynamicBatcher(predict)
    assert batcher.submit(["a"]).result(timeout=5) == ["a"]
    slow = batcher.submit(["slow"])
    started.wait(5)
    good, bad = batcher.submit(["b"]), batcher.submit(["bad"])  # queued behind the slow call: one call
    release.set()
    assert slow.result(timeout=5) == ["slow"]
    assert good.result(timeout=5) == ["b"]  # its shared call failed; it was retried alone
    with pytest.raises(ValueError, match="cannot predict"):
        bad.result(timeout=5)
    assert batcher.submit(["c"]).result(timeout=5) == ["c"]  # the worker survived the error
    batcher.close()
