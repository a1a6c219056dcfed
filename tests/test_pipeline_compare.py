"""``process --compare``: the crop shown is the image's most detailed window, before on the left, after on the right."""

from __future__ import annotations

import numpy as np
import pytest

from isp_collab.pipeline.compare import detail_window, side_by_side


def _flat_with_texture(h: int, w: int, y: int, x: int, size: int) -> np.ndarray:
    """A flat grey (H, W, 3) image with one ``size`` x ``size`` square of noise whose top-left is (y, x)."""
    image = np.full((h, w, 3), 0.3, np.float32)
    image[y : y + size, x : x + size] = np.random.default_rng(y * 7 + x).random((size, size, 3), dtype=np.float32)
    return image


@pytest.mark.parametrize(
    ("shape", "at", "size"),
    [
        ((120, 160), (50, 90), 32),  # searched at full resolution
        ((300, 200), (0, 0), 64),  # in a corner
        ((1200, 1600), (700, 1100), 256),  # searched on a copy downscaled 3x
    ],
)
def test_the_window_is_the_textured_part_of_the_image(shape, at, size):
    y, x, h, w = detail_window(_flat_with_texture(*shape, *at, size), size)
    assert (h, w) == (size, size)
    step = max(1, max(shape) // 512)  # the search grid of the downscaled copy
    assert abs(y - at[0]) <= 2 * step and abs(x - at[1]) <= 2 * step, (y, x, at)


def test_a_window_larger_than_the_image_is_the_image():
    assert detail_window(np.random.default_rng(0).random((40, 30, 3), dtype=np.float32), 512) == (0, 0, 40, 30)


def test_before_is_left_and_after_right_each_finished():
    before = _flat_with_texture(100, 140, 30, 60, 48)
    after = np.clip(before * 1.5, 0, 1)  # "restored": brighter where there is texture
    finish = np.sqrt  # stands in for the rest of the pipeline (tone)
    out = side_by_side(before, after, finish, size=48, labels=("", ""))  # no labels drawn over the pixels
    y, x, h, w = detail_window(before, 48)
    assert out.shape == (h, 2 * w + 8, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :w], finish(before[y : y + h, x : x + w]))
    np.testing.assert_array_equal(out[:, w : w + 8], 1.0)  # the white gap
    np.testing.assert_array_equal(out[:, w + 8 :], finish(after[y : y + h, x : x + w]))
    assert not np.array_equal(out[:, :w], out[:, w + 8 :])
    with pytest.raises(ValueError, match="before and after differ in shape"):
        side_by_side(before, after[1:], finish)


def test_labels_are_drawn_on_each_half():
    before = np.full((64, 64, 3), 0.5, np.float32)
    plain = side_by_side(before, before, lambda c: c, size=64, labels=("", ""))
    labelled = side_by_side(before, before, lambda c: c, size=64)
    changed = np.abs(labelled - plain).max(axis=2) > 0.1
    assert changed[:, :64].any() and changed[:, 72:].any() and not changed[:, 64:72].any()


def test_process_compare_shows_the_output_without_and_with_the_restoration(tmp_path, capsys):
    """``--compare``: left the image the run writes without its restoration stages, right the image it writes."""
    import cv2

    from isp_collab.cli import main

    src = tmp_path / "in.png"
    yy, xx = np.mgrid[0:120, 0:160]
    pixels = np.where((xx // 20 + yy // 20) % 2, 200, 40).astype(np.uint8)  # edges for unsharp masking to boost
    cv2.imwrite(str(src), cv2.GaussianBlur(np.stack([pixels, pixels // 2, pixels], axis=-1), (0, 0), 1.5))
    assert main(["process", str(src), "-o", str(tmp_path / "plain.png"), "--stages", "none"]) == 0
    assert main(["process", str(src), "-o", str(tmp_path / "sharp.png"), "--stages", "unsharp", "--compare"]) == 0
    capsys.readouterr()
    plain, sharp, both = (
        cv2.imread(str(tmp_path / f"{n}.png")).astype(int) for n in ("plain", "sharp", "sharp_compare")
    )
    assert both.shape == (120, 2 * 160 + 8, 3)  # the whole image is smaller than the crop
    below_labels = slice(40, None)
    left, right = both[below_labels, :160], both[below_labels, 168:]
    assert np.abs(left - plain[below_labels]).max() <= 1
    assert np.abs(right - sharp[below_labels]).max() <= 1
    assert np.abs(left - right).max() > 8  # the restoration shows
