"""Inspecting a trained run: Grad-CAM on a classifier whose answer is known (the map's mass lies on the
object), and ``kagglekit explain`` / ``kagglekit attack`` on a real fine-tuned run."""

import keras
import numpy as np
import pytest

from kagglekit.inspection.gradcam import class_activation_maps
from kagglekit.models.composition import network_cam


def red_detector() -> keras.Model:
    """Class 0 = "there is something red": a 1x1 conv that fires on red, pooled, and a fixed softmax."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="feature_maps")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="classes")(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[1, 1, :, 0] = [1.0, -1.0, -1.0]  # channel 0: red minus the rest
    kernel[1, 1, :, 1] = [-1.0, 1.0, 1.0]  # channel 1: the opposite
    model.get_layer("conv").set_weights([kernel, np.zeros(2, np.float32)])
    model.get_layer("classes").set_weights([np.array([[8.0, -8.0], [-8.0, 8.0]], np.float32), np.zeros(2, np.float32)])
    return model


@pytest.mark.parametrize("plus_plus", [False, True])
def test_the_map_covers_the_red_square(plus_plus):
    images = np.zeros((2, 32, 32, 3), np.float32)
    images[0, 4:12, 4:12, 0] = 1.0  # top left
    images[1, 20:28, 18:26, 0] = 1.0  # bottom right
    model = red_detector()
    assert (model.predict(images, verbose=0).argmax(1) == 0).all()
    cams = class_activation_maps(*network_cam(model, "feature_maps"), images, np.array([0, 0]), plus_plus=plus_plus)
    assert cams.shape == (2, 32, 32) and cams.min() >= 0 and np.isclose(cams.max(), 1)
    for cam, (rows, cols) in zip(cams, [(slice(2, 14), slice(2, 14)), (slice(18, 30), slice(16, 28))]):
        assert cam[rows, cols].sum() / cam.sum() > 0.9  # the mass is on the object, nowhere else


@pytest.mark.slow
def test_explain_and_attack_a_fine_tuned_run(seedlings_finetuned_run, seedlings_small, tmp_path, capsys):
    """``kagglekit explain`` draws the run's worst mistakes (predicted and true class) and any images;
    ``kagglekit attack`` lowers its accuracy on held-out images within eps (head-based runs:
    test_inspect_heads.py). The run: the session's shared fine-tuned run, only read."""
    from PIL import Image

    from kagglekit.cli import main as run_cli

    run_dir = seedlings_finetuned_run
    worst = tmp_path / "worst.png"
    assert run_cli(["explain", run_dir, "--worst", "3", "--method", "gradcam++", "--out", worst]) == 0
    with Image.open(worst) as picture:  # 3 rows: image | predicted-class map | true-class map
        assert picture.width > 600 and picture.height > 600
    some = tmp_path / "some.png"
    test_images = sorted((seedlings_small / "test").iterdir())[:2]
    assert run_cli(["explain", run_dir, "--images", *test_images, "--class", "Maize", "--out", some]) == 0
    assert some.is_file()

    import pandas as pd

    report = tmp_path / "attack"
    assert run_cli(["attack", run_dir, "--method", "fgsm", "pgd", "--eps", "0", "8", "--count", "24",
                    "--steps", "3", "--out", report]) == 0
    table = pd.read_csv(report / "robustness.csv")
    for method in ("fgsm", "pgd"):
        part = table[table.method == method].set_index("eps")
        assert part.loc[8.0, "accuracy"] < part.loc[0.0, "accuracy"]  # fold 0's own held-out images
        assert part.loc[8.0, "max_abs_perturbation"] <= 8.0 + 1e-3 and part.loc[0.0, "max_abs_perturbation"] == 0
    assert (report / "robustness.png").is_file() and (report / "examples.png").is_file()
    capsys.readouterr()
    assert run_cli(["explain", run_dir, "--images", *test_images, "--class", "Oak", "--out", some]) == 2
    assert "'Oak' is not one of the run's classes" in capsys.readouterr().err

