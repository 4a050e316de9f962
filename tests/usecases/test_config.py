"""A run config from a competition and options: an input size nobody chose comes from the images."""

from __future__ import annotations

from kagglekit.usecases.config import resolve_run


def test_image_size_nobody_chose_is_the_images_own(seedlings_small):
    """The small seedlings are 150 px images: a run trains at 160 unless the options, a config or a preset
    choose a size."""
    assert resolve_run("seedlings", data=seedlings_small)[1].image_size == 160
    assert resolve_run("seedlings", data=seedlings_small, image_size=224)[1].image_size == 224
    assert resolve_run("seedlings", data=seedlings_small, config={"image_size": 96})[1].image_size == 96
    assert resolve_run("seedlings", data=seedlings_small, preset="fast")[1].image_size == 224
