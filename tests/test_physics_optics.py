"""Fourier optics against closed forms: with a pupil-plane wavefront W (waves, normalised pupil u, v), the PSF
centroid is 2 λF# <∇W> and its second moment grows by (2 λF#)² <|∇W|²> (averages over the unit disk; Goodman
§6.4). A LensDesign's ``pixel`` is λF# at 550 nm in pixels and W is in 550-nm waves, so with ``pixel=1`` these
are 2 <∇W> px and 4 <|∇W|²> px² in every colour band. The 21-px window cuts the Airy tails, so measured moments
fall a few per cent short of the closed forms."""

import math

import pytest
import torch

from isp_collab.physics.optics import LensDesign
from isp_collab.physics.psf_field import make_lens


def moments(psf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid (..., 2) (x, y) and per-axis variances (..., 2) of kernels (..., k, k), in pixels."""
    g = torch.arange(psf.shape[-1], dtype=torch.float64) - psf.shape[-1] // 2
    p = psf.double() / psf.double().sum(dim=(-2, -1), keepdim=True)
    mx, my = (p * g).sum(dim=(-2, -1)), (p * g[:, None]).sum(dim=(-2, -1))
    vx = (p * (g - mx[..., None, None]) ** 2).sum(dim=(-2, -1))
    vy = (p * (g[:, None] - my[..., None, None]) ** 2).sum(dim=(-2, -1))
    return torch.stack([mx, my], -1), torch.stack([vx, vy], -1)


ZERO = dict(spherical=0.0, coma=0.0, astig=(0.0, 0.0), curvature=(0.0, 0.0), lateral_color=(0.0,) * 3)


def _design(**terms) -> LensDesign:
    return LensDesign(**{**ZERO, "axial_color": (0.0,) * 3, **terms})


def _corner_and_centre(design: LensDesign) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, k, k) PSFs at field height 1 (node 0 of a 1-row image: x = 0, its radial direction is -x) and 0."""
    edge = make_lens(design, image_size=(1, 33), grid=(1, 2), ksize=21, perturbation=0.0)
    assert edge.field_radius(*edge.positions[0, 0]) == 1
    centre = make_lens(design, image_size=(33, 33), grid=(1, 1), ksize=21, perturbation=0.0)
    return edge.kernels[0, 0], centre.kernels[0, 0]


def _trace(psf: torch.Tensor) -> torch.Tensor:
    return moments(psf)[1].sum(-1)


def test_a_perfect_lens_psf_is_centred_and_has_the_squares_symmetries():
    edge, centre = _corner_and_centre(_design())
    for psf in (edge, centre):
        assert moments(psf)[0].abs().max() < 1e-6
        assert torch.allclose(psf, psf.flip(-1), atol=1e-6) and torch.allclose(psf, psf.transpose(-1, -2), atol=1e-6)
    # diffraction scales with the wavelength: red spreads more than blue
    t = _trace(centre)
    assert t[0] > t[1] > t[2]


def test_lateral_colour_shifts_each_band_by_twice_its_tilt():
    """W111 = a H ρcosφ is a tilt: the band's PSF moves 2a px radially (outwards for a > 0)."""
    edge, centre = _corner_and_centre(_design(lateral_color=(0.5, 0.0, -0.25)))
    radial = -moments(edge)[0][:, 0]  # outwards = -x at x = 0
    assert radial.tolist() == pytest.approx([1.0, 0.0, -0.5], abs=0.05)
    assert moments(centre)[0].abs().max() < 1e-6  # H = 0: no lateral colour at the centre


def test_coma_moves_the_centroid_by_twice_its_coefficient():
    """W = c ρ² u: <∂W/∂u> = c (<ρ²> + 2<u²>) = c, so the centroid moves 2c px outwards, in every band."""
    edge, _ = _corner_and_centre(_design(coma=0.4))
    assert (-moments(edge)[0][:, 0]).tolist() == pytest.approx([0.8] * 3, rel=0.1)


@pytest.mark.parametrize("terms", [{"axial_color": (0.5, 0.5, 0.5)}, {"curvature": (0.5, 0.0)}])
def test_defocus_widens_the_psf_by_the_closed_form(terms):
    """W = 0.5 ρ²: |∇W|² = ρ², <ρ²> = 1/2, so the second moment grows by 4 <|∇W|²> = 2 px² (x + y).
    Axial colour defocuses the whole field; field curvature (H²) only off-centre."""
    edge, centre = _corner_and_centre(_design(**terms))
    edge0, centre0 = _corner_and_centre(_design())
    assert (_trace(edge) - _trace(edge0)).tolist() == pytest.approx([2.0] * 3, rel=0.15)
    grown = (_trace(centre) - _trace(centre0)).tolist()
    assert grown == (pytest.approx([2.0] * 3, rel=0.15) if "axial_color" in terms else [0.0] * 3)


def test_nodes_span_the_image_corner_to_corner():
    f = make_lens(_design(), image_size=(9, 13), grid=(3, 4), ksize=3, perturbation=0.0)
    assert f.node_x.tolist() == [0.0, 4.0, 8.0, 12.0] and f.node_y.tolist() == [0.0, 4.0, 8.0]
    one = make_lens(_design(), image_size=(9, 13), grid=(1, 1), ksize=3, perturbation=0.0)
    assert one.positions.tolist() == [[[6.0, 4.0]]]  # one node: the image centre
    tiny = make_lens(_design(), image_size=(1, 1), grid=(1, 1), ksize=3, perturbation=0.0)
    assert torch.isfinite(tiny.kernels).all() and math.isclose(tiny.kernels.sum().item(), 3.0, rel_tol=1e-5)


def test_a_finer_pixel_pitch_spreads_the_psf_over_more_pixels():
    """``pixel`` is λF# in pixels: at pixel = 0.5 the same tilt moves the PSF 2a / 0.5 = 4a px."""
    edge, _ = _corner_and_centre(_design(lateral_color=(0.25, 0.0, 0.0), pixel=0.5))
    assert -moments(edge)[0][0, 0].item() == pytest.approx(1.0, abs=0.05)


def test_balanced_spherical_aberration_widens_the_psf_everywhere_by_the_closed_form():
    """W = S (ρ⁴ - ρ²): <|∇W|²> = S² <(4ρ² - 2)² ρ²> = 2/3 S², so the second moment grows by 8/3 S² px².
    Measured: 71-80% of that, as the weight ρ⁶ sits on the pupil's rim, which the anti-aliased aperture softens
    (the pupil is about 14 samples in radius); an unbalanced ρ⁴ + ρ² or a lone ρ⁴ would be 6-17x larger."""
    s = 0.6
    edge, centre = _corner_and_centre(_design(spherical=s))
    edge0, centre0 = _corner_and_centre(_design())
    for psf, psf0 in ((edge, edge0), (centre, centre0)):
        assert (_trace(psf) - _trace(psf0)).tolist() == pytest.approx([8 / 3 * s**2] * 3, rel=0.35)


@pytest.mark.parametrize("astig", [(0.5, 0.0), (0.0, 0.5)])
def test_astigmatism_widens_the_psf_radially_only(astig):
    """At H = 1, W = A (ρcosφ)² = A u² along the radius (x here): <|∇W|²> = 4 A² <u²> = A², so the radial
    variance grows by 4 A² = 1 px² and the tangential one not at all; H = 0 has none."""
    edge, centre = _corner_and_centre(_design(astig=astig))
    edge0, centre0 = _corner_and_centre(_design())
    grown = moments(edge)[1] - moments(edge0)[1]  # (3, 2): x (radial), y (tangential)
    assert grown[:, 0].tolist() == pytest.approx([1.0] * 3, rel=0.15)
    assert grown[:, 1].abs().max() < 0.05
    assert torch.allclose(centre, centre0, atol=1e-6)


@pytest.mark.parametrize(("curvature", "power"), [((0.5, 0.0), 2), ((0.0, 0.5), 4)])
def test_field_curvature_grows_as_its_power_of_the_field_height(curvature, power):
    """W = a ρ² with a = 0.5 H^p: <|∇W|²> = 2 a², a second moment 8 a² px² larger; at H = 0.5 that is 1/8 px²
    for the H² term and 1/128 px² for the H⁴ one."""
    design = _design(curvature=curvature)
    f = make_lens(design, image_size=(1, 33), grid=(1, 5), ksize=21, perturbation=0.0)
    f0 = make_lens(_design(), image_size=(1, 33), grid=(1, 5), ksize=21, perturbation=0.0)
    assert f.field_radius(*f.positions[0, 1]) == 0.5
    a = 0.5 * 0.5**power
    grown = (_trace(f.kernels[0, 1]) - _trace(f0.kernels[0, 1])).tolist()
    assert grown == pytest.approx([8 * a**2] * 3, rel=0.2, abs=2e-3)
