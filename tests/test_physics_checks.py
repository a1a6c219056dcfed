"""Level and range checks: every element counts, and a degenerate sigma range is a fixed blur."""

import math

import pytest
import torch

from isp_collab.physics.checks import require_level, require_sigma_range
from isp_collab.physics.kernels import sample_gaussian_params


@pytest.mark.parametrize(
    ("value", "positive"),
    [
        (torch.tensor([1.0, math.nan]), False),
        (torch.tensor([1.0, math.inf]), False),
        (torch.tensor([1.0, -1e-6]), False),
        (torch.tensor([1.0, 0.0]), True),
    ],
)
def test_one_bad_element_is_enough_to_refuse_a_level(value, positive):
    with pytest.raises(ValueError, match="must be finite"):
        require_level("level", value, positive=positive)


def test_good_levels_pass():
    require_level("level", torch.tensor([0.0, 2.0]))
    require_level("level", torch.tensor([1e-9, 2.0]), positive=True)


def test_a_sigma_range_may_be_a_single_value():
    require_sigma_range((1.5, 1.5))
    sigmas, _ = sample_gaussian_params(3, torch.Generator().manual_seed(0), (1.5, 1.5))
    assert torch.equal(sigmas, torch.full((3, 2), 1.5))
    for bad in ((2.0, 1.0), (0.0, 1.0), (1.0, math.inf)):
        with pytest.raises(ValueError, match="sigma_range"):
            require_sigma_range(bad)


def test_psf_field_arrays_are_checked_one_by_one():
    from isp_collab.physics.psf_field import PSFField

    pos = torch.stack(torch.meshgrid(torch.tensor([0.0, 9.0]), torch.tensor([0.0, 7.0]), indexing="xy"), -1)
    k = torch.full((2, 2, 3, 3, 3), 1 / 9)
    PSFField(pos, (8, 10), k, center=(9.5, 7.5))  # the centre may sit on the image's outer edge
    PSFField(pos, (8, 10), k, center=(-0.5, -0.5))
    nan_pos = pos.clone()
    nan_pos[1, 1, 0] = math.nan
    for bad_pos, bad_k, center, match in (
        (pos[..., :1], k, None, "positions must"),
        (pos, k[:, :, :2], None, "kernels must"),
        (pos, k[..., :2], None, "kernels must"),
        (pos, torch.full((2, 2, 3, 4, 4), 1 / 16), None, "odd"),
        (nan_pos, k, None, "finite"),
        (pos, k, (math.nan, 3.0), "finite"),
        (pos, k, (10.0, 3.0), "outside"),
        (pos, k, (3.0, -0.6), "outside"),
    ):
        with pytest.raises(ValueError, match=match):
            PSFField(bad_pos, (8, 10), bad_k, center=center)


def test_nodes_may_lie_five_percent_beyond_a_densely_sampled_frame():
    """The slack is the larger of 5% of the side and the widest node spacing: with nodes about 4 px apart on a
    100 px side, 5 px (beyond the outer pixel edge at -0.5 and 99.5)."""
    from isp_collab.physics.psf_field import PSFField

    def field(x: tuple[float, float], y: tuple[float, float]) -> PSFField:
        xs, ys = torch.linspace(*x, 28), torch.linspace(*y, 28)  # spacing about 4 px
        pos = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
        return PSFField(pos, (100, 100), torch.ones(28, 28, 3, 1, 1))

    inside = (-5.0, 104.0)  # 4.5 px beyond each edge: within the 5 px
    field(inside, inside)
    for beyond in ((-6.0, 104.0), (-5.0, 105.0)):  # 5.5 px beyond one edge, in x or in y
        for x, y in ((beyond, inside), (inside, beyond)):
            with pytest.raises(ValueError, match="beyond the 100x100"):
                field(x, y)


def test_psf_field_kernels_and_node_layout_are_checked():
    from isp_collab.physics.psf_field import PSFField

    xs, ys = torch.tensor([0.0, 9.0]), torch.tensor([0.0, 7.0])
    pos = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
    k = torch.full((2, 2, 3, 3, 3), 1 / 9)
    PSFField(pos, (8, 10), k * (1 + 5e-4))  # sums within 1e-3 of 1 pass
    narrow = torch.stack(torch.meshgrid(torch.tensor([0.0, 1.1]), ys, indexing="xy"), -1)
    PSFField(narrow, (8, 10), k)  # nodes spanning 1.1 px of 10: more than a tenth, so pixel coordinates
    nan_k, neg_k = k.clone(), k.clone()
    nan_k[1, 0, 2, 1, 1] = math.nan
    neg_k[0, 1, 0, 0, 0], neg_k[0, 1, 0, 1, 1] = -0.01, 1 / 9 + 0.01  # still sums to 1
    swapped = torch.stack(torch.meshgrid(xs.flip(0), ys, indexing="xy"), -1)
    fractions = torch.stack(torch.meshgrid(xs / 10, ys / 8, indexing="xy"), -1)
    skewed = pos.clone()
    skewed[1, 1, 0] += 0.6  # x no longer constant down the second column
    for bad_pos, bad_k, match in (
        (pos, nan_k, "NaN"),
        (pos, neg_k, "non-negative"),
        (pos, k * (1 + 2e-3), "sum to 1"),
        (swapped, k, "must increase"),
        (fractions, k, "not fractions"),
        (skewed, k, "rectilinear"),
    ):
        with pytest.raises(ValueError, match=match):
            PSFField(bad_pos, (8, 10), bad_k)
