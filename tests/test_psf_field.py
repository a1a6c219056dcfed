"""Lens PSF fields: normalisation, symmetry, field dependence, interpolation, blurring, calibration files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isp_collab.physics.psf_field import (
    PSFField,
    apply_psf_field,
    convolve_psf,
    load_calibration,
    make_lens,
    psf_at,
    save_calibration,
)

SIZE = (96, 144)  # (H, W): tiny image; the PSFs are in pixels, so they are as large as on a real one
GRID = (5, 7)
K = 21


def assert_close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6, rtol: float = 0.0) -> None:
    # torch.allclose rather than torch.testing.assert_close, whose first call imports torch.distributed (~1 s)
    assert a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=rtol), f"max |a - b| = {(a - b).abs().max()}"


def small_lens(name: str = "lens-a", **kw) -> PSFField:
    return make_lens(name, image_size=kw.pop("image_size", SIZE), grid=kw.pop("grid", GRID), ksize=K, **kw)


def moments(psf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid (..., 2) (x, y) and covariance (..., 2, 2) of kernels (..., k, k), in pixels."""
    k = psf.shape[-1]
    g = torch.arange(k, dtype=torch.float64) - k // 2
    p = psf.double() / psf.double().sum(dim=(-2, -1), keepdim=True)
    mx, my = (p * g).sum(dim=(-2, -1)), (p * g[:, None]).sum(dim=(-2, -1))
    dx, dy = g - mx[..., None, None], g[:, None] - my[..., None, None]
    cov = torch.stack(
        [
            torch.stack([(p * dx * dx).sum((-2, -1)), (p * dx * dy).sum((-2, -1))], -1),
            torch.stack([(p * dx * dy).sum((-2, -1)), (p * dy * dy).sum((-2, -1))], -1),
        ],
        -2,
    )
    return torch.stack([mx, my], -1), cov


def tv(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean total-variation distance between normalised kernels (0 equal, 1 disjoint)."""
    return 0.5 * (a - b).abs().sum(dim=(-2, -1)).mean().item()


@pytest.mark.parametrize("name", ["lens-a", "lens-b"])
def test_kernels_are_normalised_and_shaped(name):
    f = small_lens(name)
    assert f.kernels.shape == (*GRID, 3, K, K) and f.kernels.dtype == torch.float32
    assert f.positions.shape == (*GRID, 2) and f.image_size == SIZE
    assert f.center == ((SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2)
    assert f.kernels.min() >= 0
    assert_close(f.kernels.sum(dim=(-2, -1)), torch.ones(*GRID, 3), atol=1e-5, rtol=0)
    # nodes span the image corner to corner
    assert f.positions[0, 0].tolist() == [0, 0] and f.positions[-1, -1].tolist() == [SIZE[1] - 1, SIZE[0] - 1]


@pytest.mark.parametrize("name", ["lens-a", "lens-b"])
def test_mirror_symmetry_exact_without_perturbation_approximate_with(name):
    exact, real = small_lens(name, perturbation=0.0), small_lens(name)
    # PSF(-x, y) = hflip PSF(x, y); PSF(x, -y) = vflip PSF(x, y)
    assert_close(exact.kernels.flip(1).flip(-1), exact.kernels, atol=1e-6, rtol=0)
    assert_close(exact.kernels.flip(0).flip(-2), exact.kernels, atol=1e-6, rtol=0)
    off_axis = real.kernels[:, :2]  # two left columns against their right mirrors
    mirrored = real.kernels.flip(1)[:, :2]
    aligned, unaligned = tv(mirrored.flip(-1), off_axis), tv(mirrored, off_axis)
    assert 1e-4 < aligned < 0.2  # the seeded perturbation breaks the symmetry, slightly
    assert aligned < 0.4 * unaligned  # flipping is what makes mirrored PSFs alike


def test_perturbation_is_seeded():
    assert_close(small_lens(seed=3).kernels, small_lens(seed=3).kernels, atol=0, rtol=0)
    assert tv(small_lens(seed=3).kernels, small_lens(seed=4).kernels) > 1e-3


def test_sharp_at_centre_blur_grows_with_field_radius():
    f = small_lens("lens-a")
    (h, w), (cx, cy) = f.image_size, f.center
    t = torch.linspace(0, 1, 5)
    psf = psf_at(f, cx + t * (w - 1 - cx), cy + t * (h - 1 - cy))  # centre -> bottom-right corner
    _, cov = moments(psf[:, 1])  # green
    second_moment = cov.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert (second_moment.diff() > 0).all(), second_moment
    assert psf[0, 1].max() > 0.4  # near diffraction-limited: the central pixel holds most of the light
    assert psf[-1, 1].max() < 0.5 * psf[0, 1].max()
    assert f.field_radius(cx, cy) == 0 and math.isclose(f.field_radius(w - 1, h - 1).item(), 1.0)


def test_lens_a_is_stronger_than_lens_b():
    corner_a, corner_b = small_lens("lens-a").kernels[0, 0], small_lens("lens-b").kernels[0, 0]
    trace = lambda k: moments(k)[1].diagonal(dim1=-2, dim2=-1).sum(-1)  # noqa: E731
    assert (trace(corner_a) > 1.5 * trace(corner_b)).all()


def test_psf_axes_are_radial_and_tangential():
    f = small_lens("lens-a", perturbation=0.0)
    (cx, cy), r = f.center, 30.0
    for angle in (0.0, 0.5, 1.0, 2.3, -2.0):
        psf = psf_at(f, cx + r * math.cos(angle) * 1.4, cy + r * math.sin(angle))[1]
        _, cov = moments(psf)
        psi = math.atan2(math.sin(angle), math.cos(angle) * 1.4)  # direction of the point from the centre
        axis = 0.5 * math.atan2(2 * cov[0, 1].item(), (cov[0, 0] - cov[1, 1]).item())  # principal axis
        # the principal axes are the radial and tangential directions (modulo 90°); interpolation between
        # nodes of other orientations blurs this slightly
        diff = (axis - psi) % (math.pi / 2)
        assert min(diff, math.pi / 2 - diff) < math.radians(8), (angle, math.degrees(axis), math.degrees(psi))


@pytest.mark.parametrize("name", ["lens-a", "lens-b"])
def test_lateral_colour_red_outwards_blue_inwards(name):
    f = small_lens(name)
    centroid, _ = moments(f.kernels)  # (R, C, 3, 2)
    radial = f.positions - torch.tensor(f.center)
    radial = radial / radial.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    shift = lambda c: ((centroid[:, :, c] - centroid[:, :, 1]) * radial.double()).sum(-1)  # noqa: E731
    corners = [(0, 0), (0, -1), (-1, 0), (-1, -1)]
    for i, j in corners:
        assert shift(0)[i, j] > 0.2 and shift(2)[i, j] < -0.2, (i, j, shift(0)[i, j], shift(2)[i, j])
    mid, corner = f.field_radius(*f.positions[1, 1]), f.field_radius(*f.positions[0, 0])
    assert shift(0)[1, 1] < shift(0)[0, 0] and mid < corner  # lateral colour grows with field height


def test_psf_at_interpolates_between_nodes():
    f = small_lens("lens-b")
    x, y = f.positions[2, 3]
    assert_close(psf_at(f, float(x), float(y)), f.kernels[2, 3])
    xm = float((f.positions[2, 3, 0] + f.positions[2, 4, 0]) / 2)
    assert_close(psf_at(f, xm, float(y)), (f.kernels[2, 3] + f.kernels[2, 4]) / 2)
    many = psf_at(f, torch.tensor([0.0, 50.5, 1e4]), torch.tensor([0.0, 20.25, -5.0]))  # clamped outside
    assert many.shape == (3, 3, K, K)
    assert_close(many.sum(dim=(-2, -1)), torch.ones(3, 3))
    assert_close(many[2], f.kernels[0, -1])


def test_convolve_psf_is_a_true_convolution():
    psf = torch.zeros(1, 3, 5, 5)
    psf[0, :, 1, 4] = 1.0  # light goes 2 px right, 1 px up
    img = torch.zeros(1, 3, 12, 12)
    img[0, :, 6, 5] = 1.0
    out = convolve_psf(img, psf, padding="reflect")
    assert out.shape == img.shape and out[0, 0, 5, 7] == pytest.approx(1.0, abs=1e-6)
    assert convolve_psf(img, psf, padding="valid").shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="padding"):
        convolve_psf(img, psf, padding="zeros")


def test_apply_constant_image_stays_constant():
    # flux is conserved up to the divergence of the PSF-centroid shifts (lateral colour is a
    # magnification): tiny on real image sizes, ~1% on this small one
    f = small_lens("lens-b", image_size=(192, 288))
    out = apply_psf_field(torch.full((3, 192, 288), 0.5), f)
    assert out.shape == (3, 192, 288)
    assert (out - 0.5).abs().max() < 0.01


def test_apply_delta_reproduces_local_psf():
    f = small_lens("lens-a")
    img = torch.zeros(3, *SIZE)
    x0, y0 = 117, 23  # between nodes, off-axis
    img[:, y0, x0] = 1.0
    out = apply_psf_field(img, f)
    r = K // 2
    assert_close(out[:, y0 - r : y0 + r + 1, x0 - r : x0 + r + 1], psf_at(f, x0, y0), atol=1e-5, rtol=0)


def test_field_scales_to_another_image_size():
    f = small_lens("lens-b")
    g = f.resized((192, 288))
    assert g.image_size == (192, 288) and g.center == (143.5, 95.5)
    assert_close(g.positions, (f.positions + 0.5) * 2 - 0.5)
    out = apply_psf_field(torch.rand(3, 192, 288), f)  # scaled on the fly
    assert out.shape == (3, 192, 288) and torch.isfinite(out).all()


def test_calibration_round_trip(tmp_path):
    f = small_lens("lens-a")
    path = tmp_path / "lens.npz"
    save_calibration(f, path)
    g = load_calibration(path)
    assert g.image_size == f.image_size and g.center == f.center and g.name == "lens.npz"
    assert_close(g.positions, f.positions)
    assert_close(g.kernels, f.kernels, atol=1e-6, rtol=0)


def _calibration(tmp_path, name="bad.npz", **override) -> str:
    f = small_lens("lens-b")
    arrays = {"positions": f.positions.numpy(), "image_size": np.array(SIZE), "kernels": f.kernels.numpy()}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / name
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return str(path)


def _bad_kernels(kind: str) -> np.ndarray:
    k = small_lens("lens-b").kernels.numpy().copy()
    k[1, 1, 0, 0, 0] = {"negative": -0.1, "nan": np.nan}[kind]
    return k


@pytest.mark.parametrize(
    "override, message",
    [
        ({"kernels": None}, "missing key 'kernels'"),
        ({"positions": None}, "missing key 'positions'"),
        ({"kernels": np.ones((5, 7, 3, 4, 4), np.float32)}, "odd"),
        ({"kernels": np.ones((4, 7, 3, 21, 21), np.float32)}, "shape"),
        ({"positions": np.zeros((5, 7, 3))}, "shape"),
        ({"image_size": np.array([96])}, "image_size"),
        ({"center": np.array([1.0, 2.0, 3.0])}, "center"),
        ("negative", "non-negative"),
        ("nan", "NaN"),
        ({"positions": np.zeros((5, 7, 2))}, "increase"),
        ({"center": np.array([500.0, 40.0])}, r"center \(500.0, 40.0\) \(x, y\) is outside the 96x144"),
        (
            {"image_size": np.array(SIZE[::-1])},
            r"beyond the 144x96 \(H x W\) image by more than .*image_size is \(H, W\): swapped\?\)$",
        ),
    ],
)
def test_bad_calibration_files_raise_one_line_errors(tmp_path, override, message):
    if isinstance(override, str):
        override = {"kernels": _bad_kernels(override)}
    path = _calibration(tmp_path, **override)
    with pytest.raises(ValueError, match=message) as err:
        load_calibration(path)
    assert str(err.value).startswith(path) and "\n" not in str(err.value)


@pytest.mark.parametrize("image_size", [[96.7, 144.9], [96, 144.5], [True, True], [np.nan, 144.0], [0, 144]])
def test_calibration_image_size_must_be_whole_positive_pixels(tmp_path, image_size):
    """A fractional size is refused rather than truncated (a whole float is fine); a bool, NaN or 0 is not a size."""
    path = _calibration(tmp_path, image_size=np.array(image_size))
    with pytest.raises(
        ValueError, match=r"image_size must be \(H, W\), two whole positive numbers of pixels, got"
    ) as err:
        load_calibration(path)
    assert str(err.value).startswith(path) and str(np.array(image_size).tolist()) in str(err.value)
    assert "\n" not in str(err.value)
    whole = load_calibration(_calibration(tmp_path, image_size=np.array([96.0, 144.0])))  # a float that is whole: fine
    assert whole.image_size == SIZE and all(type(v) is int for v in whole.image_size)


@pytest.mark.parametrize("image_size", [(96.5, 144), (96, True), (96,), (float("inf"), 144)])
def test_psf_field_refuses_a_size_it_would_truncate(image_size):
    f = small_lens("lens-b")
    with pytest.raises(ValueError, match=r"^image_size must be \(H, W\), two whole positive numbers of pixels"):
        PSFField(f.positions, image_size, f.kernels)
    with pytest.raises(ValueError, match=r"^image_size must be \(H, W\)"):
        f.resized(image_size)


def _grid(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1).astype(np.float32)


def test_calibration_nodes_may_lie_one_node_spacing_beyond_the_frame(tmp_path):
    """The documented slack: the larger of 5% of the side and the widest node spacing on that axis."""
    ys = small_lens("lens-b").node_y.numpy()
    padded = np.linspace(-35.75, 178.75, 7)  # 7 columns, spacing 35.75 (25% of 144), one node beyond each edge
    field = load_calibration(_calibration(tmp_path, positions=_grid(padded, ys)))
    assert field.image_size == SIZE and float(field.node_x[0]) == -35.75
    wide = np.linspace(-50.0, 193.0, 7)  # spacing 40.5, outer nodes 49.5 px beyond the edges
    path = _calibration(tmp_path, positions=_grid(wide, ys))
    with pytest.raises(
        ValueError,
        match=r"x -50\.\.193, .*beyond the 96x144 \(H x W\) image by more than the 40 px in x, 24 px in y allowed",
    ) as err:
        load_calibration(path)
    assert "(the larger of 5% and the widest node spacing on each axis" in str(err.value) and "\n" not in str(err.value)


def test_size_messages_say_h_x_w():
    psf = small_lens("lens-b").kernels[0, 0]
    with pytest.raises(ValueError, match=r"images of 10x40 \(H x W\) are smaller than the 21x21 PSF"):
        convolve_psf(torch.zeros(1, 3, 10, 40), psf)
    with pytest.raises(ValueError, match=r"image of 8x40 \(H x W\) is too small for the 21x21 PSF field"):
        apply_psf_field(torch.zeros(3, 8, 40), small_lens("lens-b"))


def test_not_an_npz_raises(tmp_path):
    text = tmp_path / "lens.npz"
    text.write_text("not numpy")
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    for path, message in ((text, "not a calibration .npz"), (single, "single array"), (tmp_path / "no.npz", "no such")):
        with pytest.raises(ValueError, match=message) as err:
            load_calibration(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_make_lens_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown lens"):
        make_lens("lens-z")


def test_calibration_mistakes_name_their_cause(tmp_path):
    """Kernels stored colour-last, and node positions given as fractions of the frame, are common slips."""
    field = small_lens("lens-b")
    colour_last = np.moveaxis(field.kernels.numpy(), 2, -1)
    with pytest.raises(ValueError, match=r"colour last\? the colour axis goes third"):
        load_calibration(_calibration(tmp_path, kernels=colour_last))
    fractions = field.positions.numpy() / np.array([SIZE[1], SIZE[0]])
    with pytest.raises(ValueError, match="positions are pixel coordinates .x, y., not fractions"):
        load_calibration(_calibration(tmp_path, positions=fractions))


def test_your_own_lens_design_becomes_a_calibration(tmp_path):
    """make_lens takes a LensDesign (Seidel coefficients): lateral colour pushes R out and B in at the corner."""
    from isp_collab.physics.optics import LensDesign

    design = LensDesign(
        spherical=0.0,
        coma=0.0,
        astig=(0.0, 0.0),
        curvature=(0.0, 0.0),
        lateral_color=(1.0, 0.0, -1.0),
        axial_color=(0.0, 0.0, 0.0),
    )
    field = make_lens(design, image_size=SIZE, grid=(3, 5), ksize=15)
    save_calibration(field, tmp_path / "mine.npz")
    loaded = load_calibration(tmp_path / "mine.npz")
    assert loaded.image_size == SIZE and tuple(loaded.kernels.shape) == (3, 5, 3, 15, 15)
    corner = loaded.kernels[2, 4].numpy()  # bottom-right node: outwards is +x, +y
    xs = np.arange(15) - 7
    centroid_x = [(corner[c].sum(0) * xs).sum() for c in range(3)]
    assert centroid_x[0] > 0.3 > abs(centroid_x[1]) and centroid_x[2] < -0.3, centroid_x
    with pytest.raises(ValueError, match="or a LensDesign"):
        make_lens("lens-z")
