"""Benchmark metrics: PSNR / SSIM sanity, border handling, region masks, report merging."""

import numpy as np
import pytest

from isp_collab.bench.lens import region_masks
from isp_collab.bench.metrics import crop_border, psnr, ssim
from isp_collab.bench.report import merge_section, read_section


def _img(seed=0, shape=(48, 40, 3)):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_psnr_of_identical_images_is_inf_and_ssim_is_one():
    x = _img()
    assert psnr(x, x) == float("inf")
    assert ssim(x, x) == pytest.approx(1.0)


def test_psnr_of_a_constant_offset():
    x = np.full((40, 40, 3), 0.5, np.float32)
    assert psnr(x + 0.1, x, border=0) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)


def test_more_noise_scores_lower():
    x = _img(1)
    rng = np.random.default_rng(2)
    a = x + 0.01 * rng.standard_normal(x.shape).astype(np.float32)
    b = x + 0.05 * rng.standard_normal(x.shape).astype(np.float32)
    assert psnr(a, x) > psnr(b, x)
    assert ssim(a, x) > ssim(b, x)


def test_border_is_left_out():
    x = _img(3)
    y = x.copy()
    y[:4] = 0  # damage only the border rows
    assert psnr(y, x, border=4) == float("inf")
    assert psnr(y, x, border=0) < 40
    assert ssim(y, x, border=4) == pytest.approx(1.0) and ssim(y, x, border=0) < 0.99  # SSIM leaves it out too
    assert crop_border(x, 5).shape == (38, 30, 3)
    with pytest.raises(ValueError, match="leaves nothing"):
        crop_border(x, 20)


def test_a_mask_scores_its_pixels_only():
    """The lens table's region PSNRs: the error inside the region, nothing outside it."""
    x = _img(4)
    y = x.copy()
    y[:, 20:] += 0.1  # the right half is off by 0.1, the left half exact
    left = np.zeros(x.shape[:2], bool)
    left[:, :20] = True
    assert psnr(y, x, border=0, mask=left) == float("inf")
    assert psnr(y, x, border=0, mask=~left) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.1²)
    assert psnr(y, x, border=4, mask=left) == float("inf")  # the mask is cropped with the image, aligned
    assert psnr(y, x, border=4, mask=~left) == pytest.approx(20.0, abs=1e-4)
    assert psnr(y, x, border=0) == pytest.approx(20.0 + 10 * np.log10(2), abs=1e-3)  # half the pixels: MSE halved


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(_img(shape=(20, 20, 3)), _img(shape=(20, 21, 3)))


def test_region_masks_partition_the_image():
    m = region_masks((60, 90))
    total = m["edge"].astype(int) + m["intermediate"] + m["centre"]
    assert (total == 1).all()
    assert m["centre"][30, 45] and m["edge"][0, 0]


def test_merge_section_preserves_other_sections():
    text = "# R\n\n<!-- section:training -->\nT\n<!-- /section:training -->\n"
    text = merge_section(text, "speed", "S1")
    text = merge_section(text, "speed", "S2")
    assert read_section(text, "training") == "T"
    assert read_section(text, "speed") == "S2"
    assert text.count("<!-- section:speed -->") == 1
