"""Blend finished segmentation runs (``kagglekit blend`` on ``segmentation`` runs such as CamVid).

1. read each member's saved probability maps (``runs.probability_maps``: hold-out and test, at the
   model's input size) and ``folds.json``; refuse members of another competition, other training data,
   another hold-out, other classes, other test images or another input size, by name;
2. score every member and the blend on the hold-out images, split into ``HOLDOUT_FOLDS`` contiguous
   blocks of images ordered by group (e.g. video sequence) then id, so neighbouring frames stay
   together: a fitted blend (``hill``) is fitted on the other blocks and scored on the held one;
   the score is the run's own hold-out Dice (each map's argmax resized to the image's original size);
3. fit the blend on every hold-out image, apply it to the members' test maps, resize each argmax to
   its test image's size as the run's own prediction does (``learners.segmenter.label_maps``), and
   write, validate and record the RLE submission like any blend (``pipelines.blend.write_blend_run``);
4. keep its maps as a run does (``keep_maps``: the nested hold-out maps and the test maps), so a blend is
   itself a member of another blend.

``stack`` is refused: a per-pixel logistic regression would be fitted on millions of strongly
correlated pixels of a handful of images (its inner CV could not be honest), and per-member weights
(``hill``) already capture which run to trust.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kagglekit.competitions.contract import Competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.data.masks import read_label_map
from kagglekit.evaluation import baseline
from kagglekit.evaluation.reports import segmentation_report
from kagglekit.learners.blending import BLENDS, make_blend, nested_proba
from kagglekit.learners.segmenter import label_maps
from kagglekit.pipelines.blend import check_comparable, member_config, require_blend_files, weights_of, write_blend_run
from kagglekit.pipelines.classification import FOLDS_FILE
from kagglekit.runs.probability_maps import HOLDOUT_MAPS, TEST_MAPS, MapsCollector, ProbabilityMaps, compact, expand
from kagglekit.runs.result import RunResult

HOLDOUT_FOLDS = 5  # blocks of hold-out images for the nested CV (fewer if fewer images)
CHUNK = 32  # test images blended at a time, so memory stays bounded


@dataclass
class MapsMember:
    run_dir: Path
    config: RunConfig
    folds: dict
    holdout: ProbabilityMaps
    test: ProbabilityMaps

    @property
    def classes(self) -> list[str]:
        return self.holdout.classes

    @property
    def test_ids(self) -> list[str]:
        return self.test.ids


def read_member(run_dir: Path) -> MapsMember:
    run_dir = Path(run_dir)
    require_blend_files(run_dir, [FOLDS_FILE, HOLDOUT_MAPS, TEST_MAPS], "segmentation", "segmentation")
    return MapsMember(run_dir, member_config(run_dir), json.loads((run_dir / FOLDS_FILE).read_text()),
                      ProbabilityMaps.load(run_dir / HOLDOUT_MAPS), ProbabilityMaps.load(run_dir / TEST_MAPS))


def check_maps_comparable(members: list[MapsMember], competition: Competition) -> None:
    """``check_comparable`` (competition, classes, data, hold-out as ``folds.json``'s fold 0, test
    images), then the maps' size."""
    check_comparable(members, competition)
    first = members[0]
    for member in members[1:]:
        if member.holdout.size != first.holdout.size:
            raise ConfigError(f"{member.run_dir} predicted at {member.holdout.size}, {first.run_dir} at "
                              f"{first.holdout.size} (height, width): their maps cannot be averaged pixel by "
                              "pixel; run both with the same segmentation.input_size")


def holdout_blocks(ids: list[str], groups: np.ndarray, n: int = HOLDOUT_FOLDS) -> np.ndarray:
    """The block (0 .. n-1) of each hold-out image: contiguous runs of images ordered by (group, id)."""
    order = sorted(range(len(ids)), key=lambda i: (groups[i], ids[i]))
    block = np.zeros(len(ids), dtype=int)
    for k, part in enumerate(np.array_split(order, min(n, len(ids)))):
        block[part] = k
    return block


def refuse_stack(method: str, runs: str = "segmentation runs") -> None:
    BLENDS.get(method)  # a typo fails now
    if method == "stack":
        raise ConfigError(f"--method stack is not offered for {runs} (a per-pixel regression on a few images' "
                          "correlated pixels cannot be fitted honestly); use --method hill or mean")


def scored_truths(competition: Competition, data: Path, ids: list[str]) -> list[np.ndarray]:
    """The true label maps of the scored training images ``ids``, from the competition folder."""
    train = competition.load_train(data)
    mask_of = dict(zip(train.ids, train.masks))
    lost = [i for i in ids if i not in mask_of]
    if lost:
        raise ConfigError(f"{data} lacks the masks of scored image(s) {', '.join(lost[:5])}: pass --data with "
                          "the competition folder the runs were made on")
    return [read_label_map(mask_of[i]) for i in ids]


def blend_maps(method: str, maps: list[np.ndarray], block: np.ndarray, score) -> tuple[np.ndarray, object]:
    """(each block's blended maps from a blend fitted on the other blocks, the blend fitted on every image):
    ``score(image rows, their maps)`` is what a ``hill`` blend climbs."""
    rows = np.arange(len(maps[0]))
    return nested_proba(method, maps, rows, block, score), make_blend(method).fit(maps, rows, score)


def blended_test_maps(blend, members: list[MapsMember], sizes: dict, allowed: np.ndarray | None = None,
                      kept: MapsCollector | None = None) -> list[np.ndarray]:
    """The blend's label map of each of the first member's test images at its size (``sizes`` by id),
    ``CHUNK`` images at a time; ``allowed`` (rows in that order) limits each image's classes; ``kept``
    collects the blended probabilities (float16, chunk by chunk) for the blend's own ``TEST_MAPS``."""
    test_ids = members[0].test_ids
    order = [{id_: k for k, id_ in enumerate(m.test_ids)} for m in members]
    maps = []
    for start in range(0, len(test_ids), CHUNK):
        part = test_ids[start:start + CHUNK]
        proba = blend.predict_proba([expand(m.test.proba[[o[i] for i in part]]) for m, o in zip(members, order)])
        if kept is not None:
            kept(proba)
        maps += label_maps(proba, [sizes[i] for i in part], None if allowed is None else allowed[start:start + CHUNK])
    return maps


def keep_maps(run_dir: Path, scored_file: str, ids: list[str], classes: list[str], nested: np.ndarray,
              test_ids: list[str], kept: MapsCollector) -> None:
    """The blend's maps, kept as a run keeps its own (``runs.probability_maps``), so that it can be blended
    again: the scored images' (``scored_file``), each from the blend that was not fitted on it, and the test images'."""
    ProbabilityMaps(ids, classes, compact(nested)).save(run_dir / scored_file)
    kept.maps(test_ids, classes).save(run_dir / TEST_MAPS)


def run(competition: Competition, members: list[MapsMember], method: str, run_dir: Path, data: Path) -> RunResult:
    started = time.time()
    refuse_stack(method)
    check_maps_comparable(members, competition)
    classes, void = members[0].classes, competition.void_label
    ids = members[0].holdout.ids
    if len(ids) < 2:
        raise ConfigError(f"{members[0].run_dir} held out {len(ids)} image: a blend needs two or more to be fitted "
                          "on some and scored on others; run the members with a larger segmentation.valid_fraction")
    truths = scored_truths(competition, data, ids)

    def score(rows: np.ndarray, proba: np.ndarray) -> float:
        """The run's own hold-out Dice of images ``rows`` (indices into ``ids``) given their maps."""
        return segmentation_report([truths[i] for i in rows], label_maps(proba, [truths[i].shape for i in rows]),
                                   classes, void)["dice"]

    rows = np.arange(len(ids))
    block = holdout_blocks(ids, competition.groups(ids))
    held_out = [block == k for k in np.unique(block)]
    holdout = [expand(m.holdout.proba) for m in members]
    member_scores = [[score(rows[held], p[held]) for held in held_out] for p in holdout]
    nested, blend = blend_maps(method, holdout, block, score)
    fold_scores = [score(rows[held], nested[held]) for held in held_out]
    kept = MapsCollector()
    maps = blended_test_maps(blend, members, competition.load_test(data).image_sizes(), kept=kept)
    keep_maps(run_dir, HOLDOUT_MAPS, ids, classes, nested, members[0].test_ids, kept)
    return write_blend_run(run_dir, competition, data, members, method, weights_of(blend),
                           competition.submission_frame(members[0].test_ids, maps), member_scores, fold_scores,
                           len(ids), started, f"nested: the blend fitted on the other {len(held_out) - 1} blocks of "
                                              f"{len(ids)} hold-out images",
                           {"baseline": baseline.record(baseline.per_class_masks(truths, [rows[h] for h in held_out],
                                                                                 classes),
                                                        float(np.mean(fold_scores)), competition.metric)})
