"""Lens-aberration PSF fields: a grid of local RGB point-spread functions over the image plane.

A :class:`PSFField` is data: node positions ``(R, C, 2)`` (x, y) in pixels of an image of size
``image_size = (H, W)``, one RGB kernel ``(3, k, k)`` per node, and the optical centre ``(x, y)``.
Kernel convention: ``kernels[i, j, c, ky, kx]`` is the fraction of the light of colour ``c`` from a
point source at node (i, j) that lands at offset ``(kx - k//2, ky - k//2)`` pixels (x right, y down);
each channel sums to 1. Blurring is a true convolution, so a delta image reproduces the PSF.

:func:`make_lens` builds a field for a named lens from the Fourier-optics model of
:mod:`isp_collab.physics.optics` (designs in :data:`~isp_collab.physics.optics.LENSES`).

:func:`apply_psf_field` blurs a whole image with the field (product-convolution, as deepinv's
``SpaceVaryingBlur``: each node's PSF applied to the image weighted by the bilinear interpolation
weight of that node, so a point source at any position is blurred by :func:`psf_at` there).
:func:`save_calibration` / :func:`load_calibration` read and write a measured lens as ``.npz``.

Each local PSF conserves energy, but their centroids move with the field position (lateral colour, up to
±2.2 px for ``lens-a``), so a flat field comes out slightly darker where they spread apart (up to 3.6% in
red, 2.1% in blue for ``lens-a`` at 192x256; 1.2% for ``lens-b``): the Jacobian of that displacement, as
a real lens's. Kernels keep their size in pixels when a field is :meth:`~PSFField.resized`, so the effect
grows on smaller images, and lens networks learn this slight flat-field colour change with the blur (the
pipeline's lens stage then takes it out again with ``keep_level``, on by default: docs/pipeline.md).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, replace
from dataclasses import field as dc_field

import numpy as np
import torch

from .checks import check_psf_field, pixel_size, require_float_tensor
from .optics import LENSES, LensDesign, _fast_len, _lens_kernels, _node_axes


@dataclass
class PSFField:
    """A spatially varying RGB blur given on a rectilinear grid of nodes.

    positions: (R, C, 2) float32 (x, y) pixel coordinates (pixel centres at integers), x increasing
        along columns and y along rows. image_size: (H, W) of the image the positions refer to.
    kernels: (R, C, 3, k, k) float32 >= 0, k odd, each (node, channel) summing to 1 (linear RGB).
    center: optical centre (x, y) in pixels; None means the image centre ((W-1)/2, (H-1)/2).
    """

    positions: torch.Tensor
    image_size: tuple[int, int]
    kernels: torch.Tensor
    center: tuple[float, float] | None = None
    name: str = dc_field(default="calibration", compare=False)

    def __post_init__(self) -> None:
        self.positions = torch.as_tensor(self.positions).detach().to("cpu", torch.float32)
        self.kernels = torch.as_tensor(self.kernels).detach().to("cpu", torch.float32)
        self.image_size = pixel_size(self.image_size)
        h, w = self.image_size
        if self.center is None:
            self.center = ((w - 1) / 2, (h - 1) / 2)
        self.center = (float(self.center[0]), float(self.center[1]))
        check_psf_field(self.positions, self.image_size, self.kernels, self.center)

    @property
    def grid(self) -> tuple[int, int]:
        """(R, C): rows and columns of nodes."""
        return tuple(self.kernels.shape[:2])

    @property
    def ksize(self) -> int:
        """k: the side of every kernel in pixels (odd)."""
        return int(self.kernels.shape[-1])

    @property
    def node_x(self) -> torch.Tensor:
        """(C,) x coordinates of the node columns."""
        return self.positions[0, :, 0]

    @property
    def node_y(self) -> torch.Tensor:
        """(R,) y coordinates of the node rows."""
        return self.positions[:, 0, 1]

    def field_radius(self, x: torch.Tensor | float, y: torch.Tensor | float) -> torch.Tensor:
        """Normalised field height of pixel positions: 0 at the optical centre, 1 at the farthest corner."""
        h, w = self.image_size
        cx, cy = self.center
        r_max = np.hypot(max(cx, w - 1 - cx), max(cy, h - 1 - cy))
        return torch.hypot(torch.as_tensor(x) - cx, torch.as_tensor(y) - cy) / max(r_max, 1e-9)

    def resized(self, image_size: tuple[int, int]) -> PSFField:
        """The same field for an image of another size: node positions and centre scaled, kernels kept (pixels)."""
        h0, w0 = self.image_size
        h, w = pixel_size(image_size)
        scale = torch.tensor([w / w0, h / h0])
        pos = (self.positions + 0.5) * scale - 0.5  # scale about the image's outer edge, pixel centres at integers
        cx, cy = self.center
        center = ((cx + 0.5) * w / w0 - 0.5, (cy + 0.5) * h / h0 - 0.5)
        return replace(self, positions=pos, image_size=(h, w), center=center)


# --------------------------------------------------------------------------- physics: named lenses


def make_lens(
    name: str | LensDesign,
    image_size: tuple[int, int] = (1024, 1536),
    seed: int = 0,
    grid: tuple[int, int] = (9, 13),
    ksize: int = 31,
    perturbation: float = 1.0,
) -> PSFField:
    """A named lens (``lens-a`` strong, ``lens-b`` mild), or your own :class:`~.optics.LensDesign` (Seidel
    coefficients in waves), as a PSF field for an image of ``image_size`` (H, W); write it with
    :func:`save_calibration` for a recipe's ``task.lens``.

    Nodes form a ``grid = (rows, cols)`` spanning the image corner to corner, symmetric about the centre.
    ``seed`` draws the manufacturing perturbation; ``perturbation`` scales it (0 gives an exactly
    mirror-symmetric lens). Returns kernels (R, C, 3, ksize, ksize) float32, linear RGB, each channel
    summing to 1. Deterministic; results are cached, so repeated calls are cheap.
    """
    if not isinstance(name, LensDesign) and name not in LENSES:
        raise ValueError(f"unknown lens {name!r} (known: {', '.join(LENSES)}, or a LensDesign)")
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"ksize must be a positive odd number, got {ksize}")
    h, w, grid = int(image_size[0]), int(image_size[1]), (int(grid[0]), int(grid[1]))
    kernels = _lens_kernels(name, h, w, int(seed), grid, int(ksize), float(perturbation))
    xs, ys = _node_axes(h, w, grid)
    positions = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1)
    return PSFField(positions, (h, w), kernels.copy(), name=name if isinstance(name, str) else "design")


# --------------------------------------------------------------------------- interpolation and blurring


def _axis_weights(nodes: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """(n_nodes, L) linear-interpolation weights of 1-D ``coords`` (L,) on increasing ``nodes``; clamped outside."""
    coords = coords.to(nodes.dtype)
    weights = torch.zeros(nodes.numel(), coords.numel(), dtype=nodes.dtype)
    if nodes.numel() == 1:
        return weights + 1
    j = torch.searchsorted(nodes.contiguous(), coords.contiguous(), right=True).clamp(1, nodes.numel() - 1) - 1
    t = ((coords - nodes[j]) / (nodes[j + 1] - nodes[j])).clamp(0, 1)
    cols = torch.arange(coords.numel())
    weights[j, cols] = 1 - t
    weights[j + 1, cols] += t
    return weights


def psf_at(field: PSFField, x: float | torch.Tensor, y: float | torch.Tensor) -> torch.Tensor:
    """The local PSF at pixel position (x, y), bilinear between the four surrounding nodes.

    x, y: scalars -> (3, k, k), or tensors of shape (M,) -> (M, 3, k, k); positions in the field's
    pixel coordinates, clamped to the node grid outside it. A convex combination, so still normalised.
    """
    scalar = torch.as_tensor(x).ndim == 0 and torch.as_tensor(y).ndim == 0
    xs = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
    ys = torch.as_tensor(y, dtype=torch.float32).reshape(-1)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(xs.shape)} and {tuple(ys.shape)}")
    wx = _axis_weights(field.node_x, xs)  # (C, M)
    wy = _axis_weights(field.node_y, ys)  # (R, M)
    out = torch.einsum("im,jm,ijcab->mcab", wy, wx, field.kernels)
    return out[0] if scalar else out


def convolve_psf(images: torch.Tensor, psfs: torch.Tensor, padding: str = "valid") -> torch.Tensor:
    """Blur each image with its own RGB PSF (true convolution, via FFT).

    images: (B, 3, H, W) float32 linear RGB. psfs: (B, 3, k, k) (or (3, k, k), shared), k odd.
    padding: "valid" -> (B, 3, H-k+1, W-k+1) (only pixels whose whole support is inside);
    "reflect" -> (B, 3, H, W) with the borders reflected.
    """
    require_float_tensor("images", images)
    require_float_tensor("psfs", psfs)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    psfs = psfs.to(images)
    if psfs.ndim == 3:
        psfs = psfs.expand(images.shape[0], *psfs.shape)
    if (
        psfs.ndim != 4
        or psfs.shape[:2] != images.shape[:2]
        or psfs.shape[-1] % 2 == 0
        or psfs.shape[-1] != psfs.shape[-2]
    ):
        raise ValueError(f"psfs must have shape ({images.shape[0]}, 3, k, k) with k odd, got {tuple(psfs.shape)}")
    k = psfs.shape[-1]
    r = k // 2
    if padding == "reflect":
        images = torch.nn.functional.pad(images, (r, r, r, r), mode="reflect")
    elif padding != "valid":
        raise ValueError(f"padding must be 'valid' or 'reflect', got {padding!r}")
    h, w = images.shape[-2:]
    if h < k or w < k:
        raise ValueError(f"images of {h}x{w} (H x W) are smaller than the {k}x{k} PSF")
    # a circular convolution of any size >= (h, w) equals the linear one on the valid region
    size = (_fast_len(h), _fast_len(w))
    spec = torch.fft.rfft2(images, s=size) * torch.fft.rfft2(psfs, s=size)
    return torch.fft.irfft2(spec, s=size)[..., k - 1 : h, k - 1 : w]


def apply_psf_field(image: torch.Tensor, field: PSFField) -> torch.Tensor:
    """Blur an image with a spatially varying PSF field (product-convolution, borders reflected).

    image: (3, H, W) float32 linear RGB. Returns (3, H, W). A point source at (x, y) is spread by
    exactly ``psf_at(field, x, y)``: out = sum_n k_n * (w_n . image), with w_n the bilinear weight map
    of node n (nonzero only between its neighbours, so only that neighbourhood is convolved).
    A field made for another image size is scaled to this one (:meth:`PSFField.resized`).
    """
    require_float_tensor("image", image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    if (h, w) != field.image_size:
        field = field.resized((h, w))
    k = field.ksize
    r = k // 2
    if min(h, w) <= r:
        raise ValueError(f"image of {h}x{w} (H x W) is too small for the {k}x{k} PSF field")
    work = image.float()
    padded = torch.nn.functional.pad(work[None], (r, r, r, r), mode="reflect")[0]
    wx = _axis_weights(field.node_x.double(), torch.arange(-r, w + r, dtype=torch.float64)).float()  # (C, W+2r)
    wy = _axis_weights(field.node_y.double(), torch.arange(-r, h + r, dtype=torch.float64)).float()  # (R, H+2r)
    kernels = field.kernels.to(work.device)
    canvas = torch.zeros(3, h + 4 * r, w + 4 * r, dtype=work.dtype, device=work.device)
    for i in range(wy.shape[0]):
        rows = torch.nonzero(wy[i]).ravel()
        if rows.numel() == 0:
            continue
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        for j in range(wx.shape[0]):
            cols = torch.nonzero(wx[j]).ravel()
            if cols.numel() == 0:
                continue
            x0, x1 = int(cols[0]), int(cols[-1]) + 1
            weight = (wy[i, y0:y1, None] * wx[j, None, x0:x1]).to(work.device)
            region = padded[:, y0:y1, x0:x1] * weight
            size = (_fast_len(y1 - y0 + k - 1), _fast_len(x1 - x0 + k - 1))
            full = torch.fft.irfft2(torch.fft.rfft2(region, s=size) * torch.fft.rfft2(kernels[i, j], s=size), s=size)
            canvas[:, y0 : y1 + k - 1, x0 : x1 + k - 1] += full[:, : y1 - y0 + k - 1, : x1 - x0 + k - 1]
    return canvas[:, 2 * r : 2 * r + h, 2 * r : 2 * r + w].to(image.dtype)


# --------------------------------------------------------------------------- calibration files


def save_calibration(field: PSFField, path: str | os.PathLike) -> None:
    """Write a field as a calibration ``.npz`` (the format :func:`load_calibration` reads; written to ``path`` as is)."""
    with open(path, "wb") as f:
        np.savez(
            f,
            positions=field.positions.numpy().astype(np.float32),
            image_size=np.asarray(field.image_size, dtype=np.int64),
            kernels=field.kernels.numpy().astype(np.float32),
            center=np.asarray(field.center, dtype=np.float64),
        )


def load_calibration(path: str | os.PathLike) -> PSFField:
    """Read a measured lens from a calibration ``.npz`` (numpy ``np.savez``), the way a camera maker brings a lens.

    Keys:
      ``positions``  (R, C, 2) float, (x, y) pixel coordinates of the nodes (pixel centres at integers,
                     x right, y down); a rectilinear grid: x increasing along columns, y along rows. Nodes
                     may lie beyond the frame's edge by the larger of 5% of its width (height) and the grid's
                     widest column (row) spacing, so a grid padded by one node beyond the frame loads.
      ``image_size`` (2,) int, (H, W) of the image the positions refer to (any other size is scaled); floats
                     are accepted only when whole (600.0).
      ``kernels``    (R, C, 3, k, k) float, k odd, linear-RGB PSF of each node: ``kernels[i, j, c, ky, kx]``
                     is the light of channel c from a point at node (i, j) landing at offset
                     (kx - k//2, ky - k//2) pixels. Non-negative, finite; each channel is normalised
                     to sum 1 on load.
      ``center``     optional (2,) float, optical centre (x, y) in pixels; default the image centre.
    Every problem raises ValueError with a one-line message naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such calibration file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a calibration .npz ({e.__class__.__name__})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a calibration .npz (a single array, expected an archive of named arrays)")
    with archive:
        for key in ("positions", "image_size", "kernels"):
            if key not in archive.files:
                raise ValueError(
                    f"{path}: missing key {key!r} (expected positions, image_size, kernels, optional center)"
                )
        try:
            raw = {key: archive[key] for key in archive.files}
            arrays = {key: np.asarray(value, dtype=np.float64) for key, value in raw.items()}
        except (ValueError, TypeError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: unreadable array ({e.__class__.__name__}: {e})") from None
    positions, image_size, kernels = arrays["positions"], arrays["image_size"], arrays["kernels"]
    if (
        image_size.shape != (2,)
        or raw["image_size"].dtype.kind not in "iuf"  # not bool (True would read as 1 px)
        or not np.isfinite(image_size).all()
        or (image_size < 1).any()
        or (image_size != np.round(image_size)).any()  # 600.7 is refused, not truncated; 600.0 is 600
    ):
        raise ValueError(
            f"{path}: image_size must be (H, W), two whole positive numbers of pixels, got {raw['image_size'].tolist()}"
        )
    if np.isnan(kernels).any() or not np.isfinite(kernels).all():
        raise ValueError(f"{path}: kernels contain NaN or infinite values")
    if kernels.size and kernels.min() < 0:
        raise ValueError(f"{path}: kernels must be non-negative (min {kernels.min():.3g})")
    if positions.ndim != 3 or positions.shape[-1] != 2:
        raise ValueError(f"{path}: positions must have shape (R, C, 2), got {positions.shape}")
    r, c = positions.shape[:2]
    if kernels.ndim != 5 or kernels.shape[:3] != (r, c, 3) or kernels.shape[3] != kernels.shape[4]:
        last = " (colour last? the colour axis goes third)" if kernels.ndim == 5 and kernels.shape[-1] == 3 else ""
        raise ValueError(
            f"{path}: kernels must have shape ({r}, {c}, 3, k, k) to match positions, got {kernels.shape}{last}"
        )
    if kernels.size:
        sums = kernels.sum(axis=(-2, -1), keepdims=True)
        if (sums <= 0).any():
            raise ValueError(f"{path}: a kernel channel is all zero")
        kernels = kernels / sums
    center = arrays.get("center")
    if center is not None and center.shape != (2,):
        raise ValueError(f"{path}: center must be (x, y), got shape {center.shape}")
    try:
        return PSFField(
            positions,
            (int(image_size[0]), int(image_size[1])),
            kernels,
            None if center is None else (center[0], center[1]),
            name=os.path.basename(path),
        )
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
