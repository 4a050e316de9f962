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
4. keep its maps as a run does (the nested hold-out maps and the test maps), so a blend is itself a
   member of another blend.

Nothing grows with the number of images: maps are read, blended, scored and written ``chunk_rows`` images
at a time (a hill blend climbs a mean of per-image Dice summed chunk by chunk), true masks are read when
scored (``LabelMapFiles``), and each test image's label map becomes its RLE rows before the next is made.

``stack`` is refused: a per-pixel logistic regression would be fitted on millions of strongly
correlated pixels of a handful of images (its inner CV could not be honest), and per-member weights
(``hill``) already capture which run to trust.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from kagglekit.competitions.contract import Competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.data.masks import LabelMapFiles
from kagglekit.evaluation import baseline
from kagglekit.evaluation.segmentation import mask_dice
from kagglekit.learners.blending import BLENDS, Chunked, RowScore, make_blend
from kagglekit.learners.segmenter import label_maps
from kagglekit.pipelines.blend import check_comparable, member_config, require_blend_files, weights_of, write_blend_run
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.probability_maps import MapsWriter, ProbabilityMaps, expand, maps_writer
from kagglekit.runs.result import RunResult

HOLDOUT_FOLDS = 5  # blocks of hold-out images for the nested CV (fewer if fewer images)
CHUNK_VALUES = 2 ** 23  # probabilities of one member's chunk of images (16 MB as float16, 64 MB mixed as float64)


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
    require_blend_files(run_dir, [RUN_FILES.folds_file, RUN_FILES.holdout_maps, RUN_FILES.test_maps], "segmentation",
                        "segmentation")
    return MapsMember(run_dir, member_config(run_dir), json.loads((run_dir / RUN_FILES.folds_file).read_text()),
                      ProbabilityMaps(run_dir / RUN_FILES.holdout_maps), ProbabilityMaps(run_dir / RUN_FILES.test_maps))


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


def chunk_rows(maps: ProbabilityMaps) -> int:
    """Images per chunk: about ``CHUNK_VALUES`` probabilities (CamVid at 160 x 224: 21; VOC at 320 x 448: 2)."""
    return max(1, CHUNK_VALUES // (maps.size[0] * maps.size[1] * len(maps.classes)))


def scored_maps(members: list[MapsMember], ids: list[str]) -> Chunked:
    """Every member's saved maps of the scored images ``ids`` (rows: positions in ``ids``), read a chunk at a time."""
    at = [np.array([index[i] for i in ids]) for index in ({i: k for k, i in enumerate(m.holdout.ids)} for m in members)]
    return Chunked(lambda rows: [m.holdout.rows(a[rows]) for m, a in zip(members, at)], len(members),
                   np.arange(len(ids)), chunk_rows(members[0].holdout))


def scored_truths(competition: Competition, data: Path, ids: list[str]) -> LabelMapFiles:
    """The true label maps of the scored training images ``ids``, from the competition folder (read when used)."""
    train = competition.load_train(data)
    mask_of = dict(zip(train.ids, train.masks))
    lost = [i for i in ids if i not in mask_of]
    if lost:
        raise ConfigError(f"{data} lacks the masks of scored image(s) {', '.join(lost[:5])}: pass --data with "
                          "the competition folder the runs were made on")
    return LabelMapFiles([mask_of[i] for i in ids])


def member_rows(maps: Chunked, row_scores: list[RowScore]) -> list[np.ndarray]:
    """Each member's scores of its own maps, row by row in the order of ``maps.rows`` (``row_scores[j]``
    scores member j's), in one pass over the chunks."""
    parts = [[] for _ in row_scores]
    for rows, chunk in maps:
        for kept, score, member in zip(parts, row_scores, chunk):
            kept.append(score(rows, expand(member)))
    return [np.concatenate(p) for p in parts]


def blend_maps(method: str, maps: Chunked, block: np.ndarray, row_score: RowScore,
               on_held: Callable[[np.ndarray, np.ndarray], None]):
    """The blend fitted on every image, after each block's images were blended by a blend fitted on the other
    blocks only (``on_held(rows, their blended maps)``, a chunk at a time): ``row_score(rows, maps)`` gives
    the per-image scores whose mean a ``hill`` blend climbs."""
    for k in np.unique(block):
        held = block == k
        nested = make_blend(method).fit_chunked(maps.subset(~held), row_score)
        for rows, chunk in maps.subset(held):
            on_held(rows, nested.predict_proba(chunk))
    return make_blend(method).fit_chunked(maps, row_score)


def blended_test_maps(blend, members: list[MapsMember], sizes: dict, allowed: np.ndarray | None = None,
                      kept: MapsWriter | None = None) -> Iterator[np.ndarray]:
    """The blend's label map of each of the first member's test images at its size (``sizes`` by id), one at a
    time, blended ``chunk_rows`` images at a time; ``allowed`` (rows in that order) limits each image's classes;
    ``kept`` writes the blended probabilities for the blend's own ``RUN_FILES.test_maps``."""
    test_ids = members[0].test_ids
    order = [np.array([index[i] for i in test_ids]) for index in ({i: k for k, i in enumerate(m.test_ids)}
                                                                   for m in members)]
    chunk = chunk_rows(members[0].test)
    for start in range(0, len(test_ids), chunk):
        part = slice(start, start + chunk)
        proba = blend.predict_proba([m.test.rows(o[part]) for m, o in zip(members, order)])
        if kept is not None:
            kept(proba)
        yield from label_maps(proba, [sizes[i] for i in test_ids[part]], None if allowed is None else allowed[part])


def run(competition: Competition, members: list[MapsMember], method: str, run_dir: Path, data: Path) -> RunResult:
    started = time.time()
    refuse_stack(method)
    check_maps_comparable(members, competition)
    classes, ids = members[0].classes, members[0].holdout.ids
    if len(ids) < 2:
        raise ConfigError(f"{members[0].run_dir} held out {len(ids)} image: a blend needs two or more to be fitted "
                          "on some and scored on others; run the members with a larger segmentation.valid_fraction")
    truths = scored_truths(competition, data, ids)

    def row_score(rows: np.ndarray, proba: np.ndarray) -> np.ndarray:
        """The Dice of each class's mask in each of images ``rows`` (indices into ``ids``) given their maps:
        the run's own hold-out Dice is their mean."""
        return np.array([mask_dice(truths[i], m, len(classes))
                         for i, m in zip(rows, label_maps(proba, [truths.sizes[i] for i in rows]))])

    rows = np.arange(len(ids))
    block = holdout_blocks(ids, competition.groups(ids))
    held_out = [block == k for k in np.unique(block)]
    maps = scored_maps(members, ids)
    member_scores = [[float(np.mean(dice[held])) for held in held_out]
                     for dice in member_rows(maps, [row_score] * len(members))]
    nested_dice = np.zeros((len(ids), len(classes)))
    with maps_writer(run_dir / RUN_FILES.holdout_maps, ids, classes) as nested:  # each image's by a blend not fit on it

        def on_held(held: np.ndarray, proba: np.ndarray) -> None:
            nested.put(held, proba)
            nested_dice[held] = row_score(held, proba.astype(np.float32))  # scored as nested_proba kept them

        blend = blend_maps(method, maps, block, row_score, on_held)
    fold_scores = [float(np.mean(nested_dice[held])) for held in held_out]
    with maps_writer(run_dir / RUN_FILES.test_maps, members[0].test_ids, classes) as kept:
        submission = competition.submission_frame(members[0].test_ids, blended_test_maps(
            blend, members, competition.load_test(data).image_sizes(), kept=kept))
    return write_blend_run(run_dir, competition, data, members, method, weights_of(blend), submission,
                           member_scores, fold_scores, len(ids), started,
                           f"nested: the blend fitted on the other {len(held_out) - 1} blocks of {len(ids)} hold-out "
                           "images",
                           {"baseline": baseline.record(baseline.per_class_masks(truths, [rows[h] for h in held_out],
                                                                                 classes),
                                                        float(np.mean(fold_scores)), competition.metric)})
