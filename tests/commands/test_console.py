"""A clean console: no TensorFlow / absl banners from a kagglekit command unless ``--verbose``."""

from __future__ import annotations

import os
import subprocess
import sys

BANNERS = ("absl::InitializeLog", "cpu_feature_guard", "oneDNN", "TensorFlow binary is optimized", "cuda")


def test_a_command_prints_no_tensorflow_banner(tmp_path):
    """``python -m kagglekit`` imports TensorFlow, with no TF_CPP_MIN_LOG_LEVEL set by the user: not a word
    from it (this machine's TensorFlow prints a CPU-features banner otherwise)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-m", "kagglekit", "backbones"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "efficientnet_lite0" in out.stdout
    assert not [b for b in BANNERS if b.lower() in (out.stdout + out.stderr).lower()], out.stderr[-2000:]


def tensorflow_warning_after(*argv: str) -> str:
    """stderr of a kagglekit command followed by a warning on TensorFlow's own logger (as its tf.function
    retracing warnings are)."""
    script = ("import sys; from kagglekit.cli import main; main(sys.argv[1:]); import tensorflow as tf; "
              "tf.get_logger().warning('retracing probe')")
    out = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stderr


def test_tensorflow_warnings_only_with_verbose_and_printed_once():
    assert "retracing probe" not in tensorflow_warning_after("backbones")
    assert tensorflow_warning_after("--verbose", "backbones").count("retracing probe") == 1
