"""The model code is backend-agnostic: the same backbone and head run on Keras's PyTorch backend."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, numpy as np, keras
from PIL import Image
from skimage import data
from kagglekit.models.backbones import get_backbone
from kagglekit.learners.head import HeadClassifier
model = get_backbone("efficientnet_lite0").build(224)
image = np.asarray(Image.fromarray(data.chelsea()).resize((224, 224), Image.BILINEAR), dtype=np.float32)[None]
features = keras.ops.convert_to_numpy(model(image))
rng = np.random.default_rng(0)
x = rng.normal(size=(120, 8)).astype(np.float32); y = (x[:, 0] > 0).astype(int)
head = HeadClassifier(8, 2, "{workdir}", epochs=60, learning_rate=0.03, patience=60, seed=0)
head.fit(x[:90], y[:90], x[90:], y[90:])
accuracy = float((head.predict_proba(x[90:]).argmax(1) == y[90:]).mean())
from kagglekit.inspection.adversarial import loss_gradient
grad = loss_gradient(head.model)
twice = [grad(x[:k], y[:k]) for k in (4, 4, 3)]  # compiled once; a smaller last chunk
print(json.dumps({{"backend": keras.backend.backend(), "features": features[0, :64].tolist(), "accuracy": accuracy,
                  "gradient": twice[0].tolist(), "again": twice[1].tolist(), "chunk": twice[2].tolist()}}))
"""


def run_on(backend: str, workdir) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(workdir=workdir)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_torch_backend_gives_the_same_features_and_trains(tmp_path, private_cache):
    on_tf, on_torch = run_on("tensorflow", tmp_path / "tf"), run_on("torch", tmp_path / "torch")
    assert (on_tf["backend"], on_torch["backend"]) == ("tensorflow", "torch")
    import numpy as np

    np.testing.assert_allclose(on_torch["features"], on_tf["features"], atol=1e-3)
    assert on_torch["accuracy"] > 0.8 and on_tf["accuracy"] > 0.8
    for result in (on_tf, on_torch):  # the attack loss's gradient: per image, repeatable, any chunk size
        grad = np.array(result["gradient"])
        assert grad.shape == (4, 8) and np.isfinite(grad).all() and (np.abs(grad).sum(1) > 0).all()
        np.testing.assert_allclose(result["again"], grad, rtol=1e-5)
        # the loss is a mean over the chunk: an image's gradient in a chunk of 3 is 4/3 of its gradient in 4
        np.testing.assert_allclose(np.array(result["chunk"]) * 3, grad[:3] * 4, rtol=1e-4, atol=1e-7)
