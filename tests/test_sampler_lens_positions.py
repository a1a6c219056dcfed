"""LensSampler: the patch sizes it accepts, its defaults, and where N=1 patches may lie (the whole image, inside it)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from isp_collab.data.lens import LensSampler
from isp_collab.physics.psf_field import make_lens

SIZE = (40, 56)  # (H, W): not square, so the smaller side is the limit


@pytest.fixture(scope="module")
def field():
    return make_lens("lens-a", image_size=SIZE, grid=(3, 3), ksize=5)


class Source:
    def random_crop(self, size, generator=None):
        return torch.rand(3, size, size, generator=generator)


@pytest.mark.parametrize("patch", [2, 40])
def test_patches_from_2_to_the_smaller_side_are_accepted(field, patch):
    assert LensSampler(Source(), field, patch=patch).patch == patch


@pytest.mark.parametrize("patch", [0, 1, 42, 56])
def test_smaller_odd_or_larger_patches_are_refused(field, patch):
    with pytest.raises(ValueError, match="patch must be even and fit"):
        LensSampler(Source(), field, patch=patch)


def test_defaults():
    s = LensSampler(Source(), make_lens("lens-a", image_size=(64, 64), grid=(3, 3), ksize=5))
    assert (s.n, s.patch, s.align, s.noise, s.same_image) == (4, 64, True, "demosaic", False)


@pytest.mark.parametrize("patch", [2, 16])
def test_single_patches_cover_the_image_and_stay_inside_it(field, patch):
    pos = LensSampler(Source(), field, n=1, patch=patch).sample_positions(4000, torch.Generator().manual_seed(0))
    assert pos.shape == (4000, 1, 2) and pos.dtype == torch.float32
    assert abs(torch.corrcoef(pos[:, 0].T)[0, 1]) < 0.1  # x and y drawn apart
    lo = (patch - 1) / 2  # the centre of a patch at the top-left corner
    for axis, size in ((0, SIZE[1]), (1, SIZE[0])):  # x spans the width, y the height
        v = pos[:, 0, axis]
        assert v.min() >= lo and v.max() <= size - 1 - lo
        assert v.min() < lo + 0.1 and v.max() > size - 1 - lo - 0.1  # uniform: reaches both edges


@pytest.mark.parametrize("cx,cy", [(20.0, 24.0), (36.0, 15.0)])
def test_mirror_patches_of_an_off_centre_lens_stay_inside_and_reach_the_nearer_edge(field, cx, cy):
    off = dataclasses.replace(field, center=(cx, cy))
    pos = LensSampler(Source(), off, n=4, patch=8).sample_positions(4000, torch.Generator().manual_seed(0))
    assert pos.shape == (4000, 4, 2) and pos.dtype == torch.float32
    lo, (h, w) = 3.5, SIZE
    assert pos[..., 0].min() >= lo and pos[..., 0].max() <= w - 1 - lo
    assert pos[..., 1].min() >= lo and pos[..., 1].max() <= h - 1 - lo
    torch.testing.assert_close(
        pos[:, 1:],
        pos[:, :1] * torch.tensor([[-1, 1], [1, -1], [-1, -1]])
        + pos.new_tensor([[2 * cx, 0], [0, 2 * cy], [2 * cx, 2 * cy]]),
    )  # the mirrors of the first
    reach = (pos[:, 0] - torch.tensor([cx, cy])).amax(0)  # the first quadrant's offsets
    assert pos[:, 0, 0].min() >= cx and pos[:, 0, 1].min() >= cy
    assert reach[0] == pytest.approx(min(cx - lo, w - 1 - lo - cx), abs=0.1)
    assert reach[1] == pytest.approx(min(cy - lo, h - 1 - lo - cy), abs=0.1)
