"""Contracts every learner keeps, checked for each (scikit-learn's ``test_common`` style): its constructor
takes named hyperparameters whose defaults are the run config's defaults, ``get_params`` gives them back, and
it builds, fits, loads and predicts under the ``Devices`` it is given (a MirroredStrategy over two logical CPU
devices, in one subprocess for all of them: the devices must be set before TensorFlow starts)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import pytest
from helpers import REPO

import kagglekit.learners
from kagglekit.core.config import RunConfig
from kagglekit.learners.classifier import KerasClassifier
from kagglekit.learners.finetune import FineTunedClassifier
from kagglekit.learners.head import HeadClassifier
from kagglekit.learners.multilabel_head import MultiLabelHead
from kagglekit.learners.params import Params
from kagglekit.learners.segmenter import Segmenter
from kagglekit.learners.top_blocks import TopBlocksClassifier
from kagglekit.pipelines import hyperparameters

CONFIG = RunConfig()
#: Each learner with its required arguments, and what a pipeline unpacks from a run's config for it.
LEARNERS = {
    HeadClassifier: ((8, 2, "w"), hyperparameters.head(CONFIG.train)),
    MultiLabelHead: ((8, 2, "w"), hyperparameters.head(CONFIG.train)),
    TopBlocksClassifier: (("efficientnet_lite0", 32, 2, "w"), hyperparameters.top_blocks(CONFIG)),
    FineTunedClassifier: (("efficientnet_lite0", 32, 2, "w"), hyperparameters.finetuned(CONFIG)),
    Segmenter: ((3, None, "w"), hyperparameters.segmenter(CONFIG)),
}
#: The kinds ``tests/scripts/learners_in_scope.py`` builds (the frozen feature extractor besides the learners).
IN_SCOPE = ["features", "head", "multilabel_head", "top_blocks", "finetuned", "segmenter"]


def test_every_learner_is_checked():
    """A new learner (a ``Params`` class in ``kagglekit.learners`` but the abstract Keras classifier) is added to
    LEARNERS, or this fails."""
    for module in pkgutil.iter_modules(kagglekit.learners.__path__):
        importlib.import_module(f"kagglekit.learners.{module.name}")

    def subclasses(cls):
        return {cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))}

    found = {cls for cls in subclasses(Params) if cls.__module__.startswith("kagglekit.")}  # not tests' own
    assert found - {Params, KerasClassifier} == set(LEARNERS)


@pytest.mark.parametrize("learner", LEARNERS, ids=lambda c: c.__name__)
def test_defaults_are_the_config_defaults(learner):
    """What a pipeline unpacks from a default config is what the learner defaults to (the seed aside: a
    pipeline derives it per fold): the two cannot drift apart."""
    required, unpacked = LEARNERS[learner]
    defaults = learner(*required).get_params()
    assert {k: v for k, v in unpacked.items() if k != "seed"} == {k: defaults[k] for k in unpacked if k != "seed"}


@pytest.mark.parametrize("learner", LEARNERS, ids=lambda c: c.__name__)
def test_get_params_rebuilds_the_same_learner(learner):
    required, unpacked = LEARNERS[learner]
    params = learner(*required, **{**unpacked, "epochs": 3}).get_params()
    assert params["epochs"] == 3 and learner(**params).get_params() == params


@pytest.fixture(scope="module")
def in_scope(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("in-scope")
    done = subprocess.run([sys.executable, str(REPO / "tests" / "scripts" / "learners_in_scope.py"), str(work),
                           *IN_SCOPE], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("kind", IN_SCOPE)
def test_builds_and_predicts_under_the_given_devices(in_scope, kind):
    """Every variable of the model is a mirrored variable of the strategy it was given, and prediction
    splits its batches across the replicas (one row per image, not one per image and replica)."""
    assert in_scope["replicas"] == 2
    report = in_scope[kind]
    assert report["variables"] > 0 and report["mirrored"] == report["variables"], report
    assert report["rows"] == (4 if kind == "segmenter" else 8) and report["finite"], report
