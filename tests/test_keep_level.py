"""The network stages keep the local level (``keep_level``): the shipped networks darken or tint dark areas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isp_collab.restore.detail import keep_local_level

DNG = Path(__file__).resolve().parents[1] / "isp_collab" / "assets" / "blackmagic_pocket4k.dng"


def test_keep_local_level_removes_an_offset_and_keeps_a_fine_change():
    rng = np.random.default_rng(0)
    before = rng.random((48, 64, 3), dtype=np.float32)
    checker = np.where((np.indices((48, 64)).sum(0) % 2)[..., None] == 1, 0.02, -0.02).astype(np.float32)
    change = keep_local_level(before, before + checker + 0.05) - before
    np.testing.assert_allclose(change, np.broadcast_to(checker, change.shape), atol=1e-6)  # the offset goes, the
    # pixel-scale change stays
    one = np.full((1, 1, 3), 0.3, np.float32)
    np.testing.assert_allclose(keep_local_level(one, one + 0.1), one, atol=1e-7)  # a 1 x 1 image: all level
    with pytest.raises(ValueError, match="box must be odd"):
        keep_local_level(one, one, box=32)


@pytest.fixture(scope="module")
def grass():
    from isp_collab.pipeline import Pipeline

    image, frame, _ = Pipeline().read(DNG)
    return np.ascontiguousarray(image[1700:1956, 1200:1456]), frame  # the bundled DNG's dark grass


def test_sharpening_keeps_the_level_of_dark_texture(grass):
    """The default network loses ~10% of the grass's level (restored at its own exposure: the whole frame's
    bright sky sets the exposure gain to 1); with keep_level the local means stay within 0.5%."""
    from isp_collab.pipeline import Sharpen

    crop, frame = grass
    level = crop.reshape(-1, 3).mean(0)
    lost = Sharpen(keep_level=False, exposure_target=0).apply(crop, frame).reshape(-1, 3).mean(0) / level
    kept_image = Sharpen(exposure_target=0).apply(crop, frame)
    kept = kept_image.reshape(-1, 3).mean(0) / level
    np.testing.assert_allclose(kept, 1.0, atol=0.005)
    assert np.abs(kept - 1).max() <= np.abs(lost - 1).max(), (kept, lost)  # never further off than without it
    assert np.abs(kept_image - crop).mean() > 2e-4  # and it still sharpens


def test_the_lens_stage_keeps_the_level_too(tmp_path):
    """keep_level is on by default for the lens stage as well: the network's change minus its low frequencies."""
    from isp_collab.pipeline import LensCorrect
    from isp_collab.pipeline.frame import Frame

    image = (0.05 * np.random.default_rng(3).random((96, 128, 3))).astype(np.float32)  # dark texture
    frame = Frame(source=tmp_path / "x.png", kind="rgb", height=96, width=128, bit_depth=8)
    raw = LensCorrect(model="lens-b-unet-tx-n4", tile=32, keep_level=False).apply(image, frame)
    kept = LensCorrect(model="lens-b-unet-tx-n4", tile=32).apply(image, frame)
    assert np.abs(raw - image).max() > 1e-3  # the network changes the image
    np.testing.assert_allclose(kept, keep_local_level(image, raw), atol=1e-6)
    with pytest.raises(ValueError, match="lens.keep_level must be true or false"):
        LensCorrect(keep_level="yes")
