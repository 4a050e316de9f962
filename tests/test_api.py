"""The Python API (``kagglekit/api.py``): the README's example, run as written on a small real competition, and
``import kagglekit`` staying cheap."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO
from PIL import Image


def readme_example() -> str:
    """The README's Python example: the code block after "The same from Python"."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"The same from Python.*?```python\n(.*?)```", readme, re.S).group(1)


@pytest.mark.slow  # trains two tiny runs and blends them (about a minute on 2 cores)
def test_the_readme_example_runs_as_written(seedlings_small, private_cache, tmp_path, monkeypatch):
    """As after `kagglekit prepare seedlings`: the small seedlings in the data cache, a photo.jpg beside."""
    from kagglekit.competitions.discovery import get_competition

    cache = tmp_path / "cache"  # a data cache of its own; converted weights shared with the session
    (cache / "data").mkdir(parents=True)
    (cache / "data" / get_competition("seedlings").slug).symlink_to(seedlings_small)
    (private_cache / "weights").mkdir(parents=True, exist_ok=True)
    (cache / "weights").symlink_to(private_cache / "weights")
    monkeypatch.setenv("KAGGLEKIT_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    photo = sorted((seedlings_small / "test").iterdir())[0]
    Image.open(photo).convert("RGB").save(tmp_path / "photo.jpg", quality=95)

    printed = io.StringIO()
    scope: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_example(), "README.md", "exec"), scope)  # noqa: S102 - the README's own code

    a, b, run = scope["a"], scope["b"], scope["run"]
    runs = sorted((tmp_path / "submissions" / "seedlings").iterdir())
    assert len(runs) == 3 and {a.path, b.path} < set(runs)  # two runs and their blend, beside each other
    blended = next(r for r in runs if r not in (a.path, b.path))
    assert json.loads((blended / "blend_config.json").read_text())["members"] == [str(a.path), str(b.path)]
    assert a.metrics == json.loads((a.path / "metrics.json").read_text()) and a.metrics["fold_scores"]
    assert len(a.submission) == len(list((seedlings_small / "test").iterdir()))

    frame = run.predict(["photo.jpg"])
    classes = [c for c in frame.columns if c not in ("image", "class")]
    assert frame.loc[0, "image"] == "photo.jpg" and frame.loc[0, "class"] in classes
    assert frame.loc[0, classes].sum() == pytest.approx(1, abs=1e-3)
    assert "photo.jpg" in printed.getvalue() and frame.loc[0, "class"] in printed.getvalue()
    pixels = np.asarray(Image.open("photo.jpg"))  # decoded arrays, one by one or as one batch
    by_array = run.predict([pixels])
    assert list(by_array.columns) == list(frame.columns) and by_array.loc[0, "image"] == 0
    assert by_array.equals(run.predict(pixels[None]))


def test_import_kagglekit_loads_no_keras_until_the_api_is_used():
    code = ("import sys, kagglekit; kagglekit.load_run; assert 'keras' not in sys.modules, 'keras'; "
            "print(sorted(kagglekit.__all__))\n"
            "try:\n    kagglekit.nothing\nexcept AttributeError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "['Run', '__version__', 'blend', 'load_run', 'run']" in out.stdout
    assert "has no attribute 'nothing'" in out.stdout


def test_predict_takes_paths_or_arrays_not_both():
    from kagglekit.core.errors import ConfigError, DataError
    from kagglekit.usecases.predict import prediction_frame

    with pytest.raises(ConfigError, match="not both"):
        prediction_frame(None, ["a.png", np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(DataError, match=r"image array\(s\) \[1\].*shape \(4, 4\)"):
        prediction_frame(None, [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)])
