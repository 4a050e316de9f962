"""Blend finished PASCAL VOC runs (``kagglekit blend`` on ``multilabel-segmentation`` runs): labels and masks.

A VOC run submits its classifier's labels and its segmenters' masks, the masks limited to those labels
("consistency"). A blend of such runs is the two existing blends on the same members, then that step:

1. read each member: its label probabilities (``pipelines.blend.read_member``), the segmenters' maps of
   every scored fold's images, each from the segmenter that did not train on it, and of the test images
   (``runs.probability_maps``), and whether it limited masks to labels (``postprocess.json``); refuse
   members of another competition, other data, folds, classes, test images or map size, by name;
2. labels: the multi-label blend (``pipelines.blend.label_blend``: per class, thresholds nested) on
   every out-of-fold row;
3. masks: the segmentation blend (``pipelines.blend_segmentation``: mean or hill; stack refused) on
   the scored images, nested over the same folds (a ``hill`` blend fitted on the other folds' images,
   climbing the masks' plain Dice, so no label decision leaks into it);
4. the run's post-processing: each image's blended masks limited to its blended labels
   (``multilabel_segmentation.allowed_classes``) if the first member's ``segmentation.consistency``
   says so ("auto": if that raises the nested mask Dice, as the run itself decides);
5. scored as a VOC run scores itself: per scored fold, the mean Dice over its classification and
   segmentation rows (the leaderboard's estimate), the two kinds of row also apart; every member is
   scored on the same rows from what it saved, at its own nested thresholds and its own consistency;
6. the test labels (thresholds tuned on the blend's OOF probabilities) and masks blended, combined,
   encoded as the competition's rows and validated like any blend;
7. everything a VOC member keeps is kept (label probabilities, thresholds, the nested mask maps of the
   scored images and the test maps): a blend is itself a member of another blend.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import ConfigError
from kagglekit.evaluation import baseline
from kagglekit.learners.segmenter import label_maps
from kagglekit.pipelines.blend import (Member, check_comparable, label_blend, require_blend_files, weights_of,
                                      write_blend_run, write_probabilities)
from kagglekit.pipelines.blend import read_member as read_labels
from kagglekit.pipelines.blend_segmentation import (
    MapsMember,
    blend_maps,
    blended_test_maps,
    check_maps_comparable,
    member_rows,
    refuse_stack,
    scored_maps,
    scored_truths,
)
from kagglekit.pipelines.multilabel_classification import label_tuner
from kagglekit.pipelines.multilabel_segmentation import (
    allowed_classes,
    constant_answer,
    keeps_consistency,
    label_rows_dice,
    leaderboard_folds,
    mask_rows_dice,
    row_kinds_cv,
)
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.probability_maps import ProbabilityMaps, maps_writer
from kagglekit.runs.result import RunResult


@dataclass
class VocMember:
    labels: Member
    maps: MapsMember  # its ``holdout`` maps are the out-of-fold ones
    consistency: bool  # the member limited its masks to its labels

    @property
    def run_dir(self) -> Path:
        return self.labels.run_dir

    @property
    def config(self):
        return self.labels.config

    @property
    def folds(self) -> dict:
        return self.labels.folds


def read_member(run_dir: Path) -> VocMember:
    run_dir = Path(run_dir)
    require_blend_files(run_dir, (RUN_FILES.oof_maps, RUN_FILES.test_maps, RUN_FILES.postprocess), "PASCAL VOC",
                        "its masks")
    labels = read_labels(run_dir)
    maps = MapsMember(run_dir, labels.config, labels.folds, ProbabilityMaps(run_dir / RUN_FILES.oof_maps),
                      ProbabilityMaps(run_dir / RUN_FILES.test_maps))
    return VocMember(labels, maps, bool(json.loads((run_dir / RUN_FILES.postprocess).read_text())["consistency"]))


def run(competition: Competition, members: list[VocMember], method: str, run_dir: Path, data: Path) -> RunResult:
    started = time.time()
    refuse_stack(method, "the masks of PASCAL VOC runs (their labels and masks are blended by the same method)")
    check_comparable([m.labels for m in members], competition)
    check_maps_comparable([m.maps for m in members], competition)
    first, classes, void = members[0], members[0].labels.classes, competition.void_label

    # --- labels: every row all members scored out of fold ---------------------------------------------
    position = {id_: k for k, id_ in enumerate(first.labels.folds["ids"])}
    rows = sorted(set.intersection(*(set(m.labels.oof.index) for m in members)), key=position.__getitem__)
    fold_of = np.array(first.labels.folds["fold_of"])[[position[i] for i in rows]]
    truth = first.labels.oof.loc[rows, [f"true_{c}" for c in classes]].reset_index(drop=True)
    true_labels = truth.to_numpy(np.int64)
    test_ids = first.maps.test_ids
    labels = label_blend(method, label_tuner(competition, first.config.multilabel),
                         [m.labels.oof.loc[rows, classes].to_numpy(np.float64) for m in members],
                         [m.labels.test.loc[test_ids, classes].to_numpy(np.float64) for m in members], true_labels,
                         fold_of, lambda predicted, held: float(label_rows_dice(true_labels[held], predicted[held]).mean()))

    # --- masks: the images every member's segmenters scored out of fold --------------------------------
    row_of = {id_: k for k, id_ in enumerate(rows)}
    scored = [i for i in rows if all(i in index for index in (set(m.maps.holdout.ids) for m in members))]
    at = [row_of[i] for i in scored]  # their label rows
    block = fold_of[at]
    if len(np.unique(block)) < 2:
        raise ConfigError(f"{first.run_dir}: its segmenters scored {len(np.unique(block))} fold: a blend of masks is "
                          "fitted on some folds and scored on others; run the members with segmentation.scored_folds "
                          "0 (all) or 2 or more")
    truths = scored_truths(competition, data, scored)
    maps = scored_maps([m.maps for m in members], scored)

    def mask_dice(images: np.ndarray, proba: np.ndarray, predicted: np.ndarray | None = None) -> np.ndarray:
        """Segmentation rows' Dice of ``images`` (indices into ``scored``), limited to ``predicted`` labels."""
        allowed = None if predicted is None else allowed_classes(predicted[images])
        return mask_rows_dice([truths[i] for i in images], label_maps(proba, [truths.sizes[i] for i in images],
                                                                      allowed), len(classes), void)

    limits = [labels.member_labels[j][at] if m.consistency else None for j, m in enumerate(members)]
    member_masks = member_rows(maps, [functools.partial(mask_dice, predicted=limit) for limit in limits])
    plain, consistent = np.zeros(len(scored)), np.zeros(len(scored))
    with maps_writer(run_dir / RUN_FILES.oof_maps, scored, first.maps.classes) as nested:  # by blends not fit on it

        def on_held(images: np.ndarray, proba: np.ndarray) -> None:
            nested.put(images, proba)
            proba = proba.astype(np.float32)  # scored as nested_proba kept them
            plain[images], consistent[images] = mask_dice(images, proba), mask_dice(images, proba,
                                                                                     labels.oof_labels[at])

        blend = blend_maps(method, maps, block, mask_dice, on_held)
    use_consistency = keeps_consistency(first.config.segmentation.consistency, plain.mean(), consistent.mean())
    blend_masks = consistent if use_consistency else plain

    # --- scored per fold like the run: both kinds of row ---------------------------------------------------
    folds = [np.flatnonzero(block == f) for f in np.unique(block)]
    member_label_dice = [label_rows_dice(true_labels[at], predicted[at]) for predicted in labels.member_labels]
    label_dice = label_rows_dice(true_labels[at], labels.oof_labels[at])
    member_scores = [leaderboard_folds(d, m, folds) for d, m in zip(member_label_dice, member_masks)]
    fold_scores = leaderboard_folds(label_dice, blend_masks, folds)

    # --- test: blended labels, blended maps limited to them -----------------------------------------------
    with maps_writer(run_dir / RUN_FILES.test_maps, test_ids, first.maps.classes) as kept:
        submission = competition.submission_frame(test_ids, labels.predicted, blended_test_maps(
            blend, [m.maps for m in members], competition.load_test(data).image_sizes(),
            allowed_classes(labels.predicted) if use_consistency else None, kept))
    write_probabilities(run_dir, classes, labels, rows, truth, test_ids, consistency=use_consistency)

    def parts(label: np.ndarray, mask: np.ndarray) -> dict:
        """The two kinds of row apart, named as a VOC run's metrics.json names them."""
        return {"classification_rows_dice": float(label.mean()), "segmentation_rows_dice": float(mask.mean())}

    return write_blend_run(
        run_dir, competition, data, members, method,
        {"labels": weights_of(labels.blend), "masks": weights_of(blend)},
        submission, member_scores, fold_scores, len(scored),
        started, f"nested: labels and masks of each of {len(folds)} folds' {len(scored)} images from blends fitted on "
                 f"the other folds' out-of-fold rows (labels: thresholds too, on {len(rows)} rows)",
        extra={"baseline": baseline.record(constant_answer(true_labels[at], truths, folds, classes, void),
                                           float(np.mean(fold_scores)), competition.metric,
                                           row_kinds_cv(label_dice, blend_masks, folds)),
               **parts(label_dice, blend_masks), "label_fold_scores": labels.fold_scores,
               "segmentation_dice_plain": float(plain.mean()), "segmentation_dice_consistent": float(consistent.mean()),
               "consistency_used": bool(use_consistency)},
        member_extra=[{**parts(d, m), "label_fold_scores": s, "consistency_used": member.consistency}
                      for d, m, s, member in zip(member_label_dice, member_masks, labels.member_scores, members)])
