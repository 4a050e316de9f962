"""Shared parts behind the VOC and CamVid pipelines: folds, thresholds, losses, metrics, the camvid kind."""

import json

import numpy as np
import pandas as pd
import pytest

from kagglekit.evaluation.folds import grouped_holdout, multilabel_folds
from kagglekit.evaluation.reports import multilabel_report
from kagglekit.evaluation.segmentation import ConfusionMatrix, mask_dice, stack_dice
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.submission import rle


def test_multilabel_folds_stratify_every_label_and_keep_groups_whole():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 6)) < [0.5, 0.3, 0.2, 0.1, 0.08, 0.05]).astype(int)
    groups = np.arange(200)
    groups[[10, 11, 12]] = 10  # three copies of one image
    folds = multilabel_folds(labels, groups, k=4, seed=0)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(200))
    for train, valid in folds:
        assert len({10 in valid, 11 in valid, 12 in valid}) == 1
        share = labels[valid].sum(0) / labels.sum(0)
        assert np.all(np.abs(share - 0.25) < 0.12)  # every label spread evenly


def test_grouped_holdout_holds_out_whole_groups_near_the_fraction():
    groups = np.repeat([0, 1, 2], [62, 101, 204])  # CamVid's three drives
    for seed in range(5):
        train, valid = grouped_holdout(groups, 0.2, seed)
        assert len(set(groups[valid]) & set(groups[train])) == 0
        assert len(valid) in (62, 101)


def test_thresholds_maximise_oof_f1_and_never_leave_an_image_unlabelled():
    rng = np.random.default_rng(1)
    y = (rng.random((300, 3)) < 0.3).astype(int)
    proba = y * 0.2 + rng.random((300, 3)) * 0.25  # positives sit higher, but all below 0.5
    tuner = ThresholdTuner().fit(proba, y)
    assert (tuner.thresholds_ < 0.5).all()
    f1_tuned = multilabel_report(y, proba, tuner.predict(proba), ["a", "b", "c"])
    f1_half = multilabel_report(y, proba, (proba >= 0.5).astype(int), ["a", "b", "c"])
    assert f1_tuned["macro_f1"] > f1_half["macro_f1"]
    assert (tuner.predict(np.full((4, 3), 0.01)).sum(1) == 1).all()  # top-1 fallback
    unsure = (proba < tuner.thresholds_).all(1)  # images no threshold labels: the fallback gives their likeliest
    labelled = tuner.predict(proba)
    assert unsure.sum() >= 10 and (labelled.sum(1) >= 1).all()
    assert (labelled[unsure].sum(1) == 1).all() and (labelled[unsure].argmax(1) == proba[unsure].argmax(1)).all()
    assert (ThresholdTuner(top1_fallback=False).fit(proba, y).predict(np.full((4, 3), 0.01)).sum(1) == 0).all()
    assert 0 < f1_tuned["mAP"] <= 1 and set(f1_tuned["per_class"]) == {"a", "b", "c"}


def test_segmentation_loss_ignores_void_and_rewards_the_truth():
    import keras

    from kagglekit.models.losses import SegmentationLoss

    truth = np.array([[[0, 1], [255, 1]]])
    good = np.eye(2)[[[0, 1], [0, 1]]][None].astype("float32") * 0.98 + 0.01
    void_wrong = good.copy()
    void_wrong[0, 1, 0] = [0.01, 0.99]  # the void pixel predicted differently: no change
    loss = SegmentationLoss(2, void_label=255)
    value = lambda p: float(keras.ops.convert_to_numpy(loss(truth, p)))  # noqa: E731
    assert value(good) == pytest.approx(value(void_wrong))
    assert value(good) < value(1 - good)


def test_segmentation_cross_entropy_is_the_mean_over_each_images_class_pixels():
    """The CE part by hand: -log p(true class), averaged over the pixels of each image that hold a class
    (void 255, and 7, no class of 3, are left out), then over the images."""
    import keras

    from kagglekit.models.losses import SegmentationLoss

    truth = np.array([[[0, 2], [255, 1]], [[7, 255], [255, 2]]])
    probs = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], [[0.5, 0.4, 0.1], [0.2, 0.5, 0.3]]],
                      [[[0.3, 0.3, 0.4], [0.9, 0.05, 0.05]], [[0.1, 0.1, 0.8], [0.25, 0.25, 0.5]]]], dtype="float32")
    first = -(np.log(0.7) + np.log(0.6) + np.log(0.5)) / 3
    second = -np.log(0.5)
    loss = SegmentationLoss(3, void_label=255, dice_weight=0.0)
    per_image = keras.ops.convert_to_numpy(loss.call(keras.ops.convert_to_tensor(truth), probs))
    np.testing.assert_allclose(per_image, [first, second], rtol=1e-5)
    assert float(keras.ops.convert_to_numpy(loss(truth, probs))) == pytest.approx((first + second) / 2, rel=1e-5)


def test_metrics_agree_with_decoded_submissions():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 4, (30, 40)).astype(np.uint8)
    truth[:3] = 255
    pred = np.where(rng.random((30, 40)) < 0.7, truth % 255, rng.integers(0, 4, (30, 40))).astype(np.uint8)
    stack = lambda m: np.stack([m == c for c in (1, 2, 3)])  # noqa: E731
    by_rle = rle.dice(rle.encode(stack(truth), rle.ROW_MAJOR), rle.encode(stack(pred), rle.ROW_MAJOR), rle.ROW_MAJOR)
    assert stack_dice(truth, pred, [1, 2, 3], void_label=255) == pytest.approx(by_rle)
    per_class = mask_dice(truth, pred, 4)
    assert per_class[2] == pytest.approx(rle.dice(rle.encode(truth == 2), rle.encode(pred == 2)))
    confusion = ConfusionMatrix(4, void_label=255).update(truth, pred)
    valid = truth != 255
    iou1 = ((truth == 1) & (pred == 1) & valid).sum() / (((truth == 1) | (pred == 1)) & valid).sum()
    assert confusion.iou()[1] == pytest.approx(iou1)
    assert confusion.counts.sum() == valid.sum()


def test_camvid_is_a_config_only_competition(camvid, camvid_small):
    from kagglekit.competitions.discovery import get_competition

    competition = get_competition("camvid")
    assert competition.task == "segmentation" and competition.void_label == 11 and len(competition.classes) == 11
    train, test = competition.load_train(camvid_small), competition.load_test(camvid_small)
    assert len(train) == 24 and len(test) == 6 and len(train.masks) == 24
    assert len(set(competition.groups(train.ids))) == 3  # the three drives
    solution = pd.read_csv(camvid_small / "solution.csv", dtype=str, keep_default_na=False)
    assert len(solution) == 6 * 11 and solution.Id[0] == f"{test.ids[0]}_0"
    from kagglekit.data.masks import read_label_map

    mask = read_label_map(camvid / "masks" / f"{test.ids[0]}.png")
    sky = rle.decode(solution.EncodedPixels[0], mask.shape, rle.COLUMN_MAJOR)  # column-major, 1-based
    np.testing.assert_array_equal(sky, mask == 0)
    assert competition.score(solution, solution) == 1.0


@pytest.mark.parametrize("head", ["unet", "deeplabv3plus"])
def test_segmentation_heads_give_per_pixel_probabilities_at_input_size(head):
    from kagglekit.models.segmentation import build_segmenter

    model = build_segmenter(head, "efficientnet_lite0", (64, 96), n_classes=5, freeze_encoder=True)
    out = np.asarray(model.predict(np.random.default_rng(0).uniform(0, 255, (2, 64, 96, 3)), verbose=0))
    assert out.shape == (2, 64, 96, 5)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-4)
    encoder = next(layer for layer in model.layers if layer.name.endswith("_encoder"))
    assert not encoder.trainable_weights and model.trainable_weights  # only the decoder trains


def test_multilabel_loss_weights_positives_and_focal_spares_easy_examples():
    import keras

    from kagglekit.models.losses import MultiLabelLoss

    y = np.array([[1.0, 0.0]])
    p = np.array([[0.6, 0.1]], dtype="float32")
    value = lambda loss: float(keras.ops.convert_to_numpy(loss(y, p)))  # noqa: E731
    plain = value(MultiLabelLoss())
    assert plain == pytest.approx(-(np.log(0.6) + np.log(0.9)) / 2, rel=1e-5)
    assert value(MultiLabelLoss(pos_weight=[3.0, 1.0])) == pytest.approx(-(3 * np.log(0.6) + np.log(0.9)) / 2, rel=1e-5)
    focal = value(MultiLabelLoss(gamma=2.0))
    assert focal == pytest.approx(-(0.4 ** 2 * np.log(0.6) + 0.1 ** 2 * np.log(0.9)) / 2, rel=1e-5)


class Killed(Exception):
    """Stands for ``kill -9`` right after a checkpoint was written."""


def test_segmenter_trains_a_fixed_budget_with_a_slower_unfrozen_encoder(tmp_path, monkeypatch):
    """An unfrozen encoder's layers step at ``encoder_lr_factor`` of the rate, the decoder at the full rate;
    the schedule warms up and decays over exactly ``epochs``; validation images change nothing; a fit killed
    after its first epoch's checkpoint resumes there and ends with the uninterrupted fit's weights; a fit past its
    deadline stops after its first epoch, its weights saved."""
    import time

    from PIL import Image

    from kagglekit.learners import segmenter as module
    from kagglekit.learners.budget import Deadline
    from kagglekit.learners.checkpoints import CHECKPOINT
    from kagglekit.learners.segmenter import Segmenter

    rng = np.random.default_rng(0)
    paths, masks = [], []
    for i in range(4):
        labels = (np.arange(64)[None, :] >= 32).astype(np.uint8).repeat(64, 0) * (i % 2 + 1)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        Image.fromarray(labels).save(tmp_path / f"{i}_mask.png")
        paths.append(tmp_path / f"{i}.png")
        masks.append(tmp_path / f"{i}_mask.png")
    # the scratch CNN encoder: nothing checked here depends on the encoder, and a fit takes 11 s against 25 on Lite0
    params = dict(backbone="scratch_cnn", input_size=(64, 64), epochs=2, batch_size=2, freeze_encoder=False,
                  encoder_lr_factor=0.25, seed=42)
    first = Segmenter(3, None, tmp_path / "a", **params).fit(paths, masks, paths[:2], masks[:2],
                                                             deadline=Deadline(time.time() + 3600, 0.0, 1.0))
    assert first.stopped_at is None
    factors = first.model.optimizer.lr_multipliers
    assert factors["stage1_conv1"] == 0.25 and "aspp_proj_conv" not in factors  # encoder slower, decoder not
    assert len(first.history["loss"]) == 2 and "val_loss" in first.history  # no early stop: the whole budget
    assert first.model.optimizer.iterations.numpy() == 4  # 2 batches x 2 epochs, one schedule

    write = module.write_checkpoint

    def killed_after_epoch_1(model, workdir, epoch, **fields):
        write(model, workdir, epoch, **fields)
        raise Killed

    monkeypatch.setattr(module, "write_checkpoint", killed_after_epoch_1)
    with pytest.raises(Killed):
        Segmenter(3, None, tmp_path / "b", **params).fit(paths, masks)  # without validation images
    monkeypatch.undo()
    assert json.loads((tmp_path / "b" / CHECKPOINT).read_text())["epoch"] == 1
    second = Segmenter(3, None, tmp_path / "b", **params).fit(paths, masks)
    assert second.time.epochs == 1 and second.history["loss"] == first.history["loss"]  # resumed at epoch 2
    assert second.model.optimizer.iterations.numpy() == 4 and not (tmp_path / "b" / CHECKPOINT).exists()
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)

    late = Segmenter(3, None, tmp_path / "c", **params).fit(paths, masks, deadline=Deadline(time.time(), 0.0, 1.0))
    assert late.stopped_at == 1 and len(late.history["loss"]) == 1 and late.done
    assert not (tmp_path / "c" / CHECKPOINT).exists()
