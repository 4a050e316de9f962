"""FGSM and PGD on small real-shaped models: they stay within eps and they hurt."""

import keras
import numpy as np
import pytest

from kagglekit.inspection.adversarial import attack, cross_entropy
from kagglekit.models.gradients import CompiledGradient, gradient


def trained_classifier(rng):
    """A small convnet that separates bright-left from bright-right images (an easy, learnable task)."""
    x = rng.uniform(0, 120, (256, 16, 16, 3)).astype(np.float32)
    y = rng.integers(0, 2, 256)
    shift = rng.uniform(2, 40, (256, 1, 1, 1)).astype(np.float32)  # some images lie near the boundary
    x[:, :, :8] += np.where(y == 0, 1, 0)[:, None, None, None] * shift
    x[:, :, 8:] += np.where(y == 1, 1, 0)[:, None, None, None] * shift
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=60, verbose=0)
    return model, x, y


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_attacks_stay_within_eps_and_lower_accuracy(method):
    rng = np.random.default_rng(0)
    model, x, y = trained_classifier(rng)
    clean = (model.predict(x, verbose=0).argmax(1) == y).mean()
    assert clean > 0.85
    accuracies = []
    for eps in (0.0, 3.0, 12.0):
        adversarial = attack(model, x, y, eps, method)
        assert np.abs(adversarial - x).max() <= eps + 1e-3 and adversarial.min() >= 0 and adversarial.max() <= 255
        accuracies.append((model.predict(adversarial, verbose=0).argmax(1) == y).mean())
    assert accuracies[0] == clean and accuracies[1] < clean and accuracies[2] < accuracies[1]


def test_targeted_attack_steers_towards_the_target():
    rng = np.random.default_rng(1)
    model, x, y = trained_classifier(rng)
    target = 1 - y
    before = (model.predict(x, verbose=0).argmax(1) == target).mean()
    after = (model.predict(attack(model, x, target, 16.0, "pgd", targeted=True), verbose=0).argmax(1) == target).mean()
    assert after > before + 0.3


def test_segmenter_attack_ignores_void_pixels():
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    masks = np.full((2, 8, 8), 255)  # all void: nothing to attack, the loss has no gradient
    np.testing.assert_array_equal(attack(model, x, masks, 8.0, "fgsm", void=255), x)
    masks[:, :4] = 1
    moved = attack(model, x, masks, 8.0, "fgsm", void=255)
    assert np.abs(moved - x).max() == pytest.approx(8.0, abs=1e-3)


def test_the_compiled_gradient_is_the_eager_one_for_every_chunk_size():
    """An attack compiles its loss's gradient once (eager TensorFlow took seconds a call); the traced function
    gives the eager gradient, for the chunk it was traced on and a smaller last one."""
    rng = np.random.default_rng(3)
    model, x, y = trained_classifier(rng)
    loss = cross_entropy(model, 2)
    compiled = CompiledGradient(loss)
    for n in (32, 32, 7):
        np.testing.assert_allclose(compiled(x[:n], y[:n]), gradient(loss, x[:n], y[:n]), rtol=1e-4, atol=1e-9)
