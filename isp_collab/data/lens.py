"""Lens-aberration stacks: patches at the four mirror positions about the optical centre (Eboli et al.).

A lens is nearly symmetric under mirroring about its optical centre, so the PSF at (-x, y) is about
the horizontal flip of the PSF at (x, y) (:mod:`isp_collab.physics.psf_field`). For a stack of N=4,
draw one field offset (x, y) >= 0 from the centre (the "first quadrant": right of and below the centre
in pixel coordinates, y down), take the four positions (x, y), (-x, y), (x, -y), (-x, -y), and blur one
random crop per position with the field's local PSF there. With ``align=True`` the patches from the
other quadrants are flipped (blurry and sharp alike) into the first quadrant's orientation, so all four
share almost one PSF, as the restoration gathers and flips tiles at inference. N=1: one position
anywhere in the image, no flip (the single-patch baseline).

Per stack: one camera (Brooks et al. 2019 unprocessing parameters) and one noise level (the four
patches come from one photo); per patch: an sRGB crop of ``patch + k - 1``, unprocessed to linear
camera RGB, blurred with ``"valid"`` padding (targets are the crops' centres, no border effect),
noise added in the sensor's orientation (before any flip, so a flip also flips the Bayer phase).
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch

from ..physics.noise import (
    PATTERNS,
    add_gaussian_noise,
    demosaic_residual_noise,
    random_gaussian_sigmas,
    random_noise_levels,
)
from ..physics.psf_field import PSFField, convolve_psf, psf_at
from ..physics.unprocess import random_isp_params, unprocess
from .batch import StackBatch

Noise = Literal["demosaic", "gaussian", "none"]
# (sign of x, sign of y) of the four mirror positions, in stack order
MIRRORS = ((1, 1), (-1, 1), (1, -1), (-1, -1))


class CropSource(Protocol):
    """Where lens patches come from: ``random_crop(size, generator)`` returns one (3, size, size) float32
    sRGB-encoded crop in [0, 1] (the sampler unprocesses it to linear camera RGB)."""

    def random_crop(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """One (3, size, size) float32 sRGB-encoded crop in [0, 1]."""
        ...


class LensSampler:
    """Stacks of N patches blurred by a PSF field at (mirror) field positions.

    Args:
        source: an image source with ``random_crop(size, generator) -> (3, size, size)`` sRGB in [0, 1]
            (:class:`~isp_collab.data.sources.ImageFolder`, ``DeadLeaves``).
        field: the lens (:func:`~isp_collab.physics.psf_field.make_lens` or a loaded calibration);
            positions are drawn in its pixel coordinates (``field.image_size``) about ``field.center``.
        n: 4 (mirror positions) or 1 (one position).
        patch: output patch size P (even, for the Bayer mosaic), at most the field's image size.
        align: flip the patches of the other quadrants into the first quadrant's orientation.
        noise: ``"demosaic"`` (mosaic → Brooks shot/read noise → Malvar demosaic), ``"gaussian"``
            (i.i.d., σ ∈ [0.5, 2]/255), or ``"none"``.
        same_image: take the N crops of a stack from one photo (as the mirror tiles of one picture
            at inference), when the source supports it; else from N random photos.
    """

    def __init__(
        self,
        source: CropSource,
        field: PSFField,
        n: int = 4,
        patch: int = 64,
        align: bool = True,
        noise: Noise = "demosaic",
        same_image: bool = False,
    ) -> None:
        if n not in (1, 4):
            raise ValueError(f"n must be 4 (mirror positions) or 1, got {n}")
        if noise not in ("demosaic", "gaussian", "none"):
            raise ValueError(f"noise must be 'demosaic', 'gaussian' or 'none', got {noise!r}")
        if patch < 2 or patch % 2 or patch > min(field.image_size):
            raise ValueError(f"patch must be even and fit in the field's {field.image_size} image, got {patch}")
        self.source, self.field, self.n, self.patch, self.align, self.noise = source, field, n, patch, align, noise
        self.same_image = same_image

    def sample_positions(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Patch centres ``(B, N, 2)`` float32 (x, y) in the field's pixel coordinates.

        N=4: offsets (x, y) uniform over the first quadrant's area (so the field radius has density
        growing with the radius, out to the corners), mirrored to the four quadrants; every patch lies
        inside the image. N=1: a centre uniform over the image.
        """
        h, w = self.field.image_size
        cx, cy = self.field.center
        lo = (self.patch - 1) / 2  # the centre of a patch at the image's top-left corner
        u = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
        if self.n == 1:
            pos = torch.stack([lo + u[:, 0] * (w - 1 - 2 * lo), lo + u[:, 1] * (h - 1 - 2 * lo)], dim=-1)
            return pos[:, None].float()
        # largest offset for which both mirror patches stay inside the image
        reach = torch.tensor([min(cx - lo, w - 1 - lo - cx), min(cy - lo, h - 1 - lo - cy)], dtype=torch.float64)
        offset = u * reach.clamp_min(0)
        signs = torch.tensor(MIRRORS, dtype=torch.float64)
        return (torch.tensor([cx, cy], dtype=torch.float64) + offset[:, None] * signs).float()

    def _crops(self, size: int, count: int, generator: torch.Generator | None) -> torch.Tensor:
        crops = getattr(self.source, "random_crops", None)  # the sources' batched form, when they have it
        if crops is not None:
            return crops(size, count, generator, self.same_image)
        return torch.stack([self.source.random_crop(size, generator) for _ in range(count)])

    def sample_clean(self, batch: int, generator: torch.Generator | None = None) -> StackBatch:
        """Draw ``batch`` noise-free stacks (``blurry`` without noise, in the sensor's orientation).

        Returns:
            :class:`StackBatch` with ``blurry``/``sharp`` ``(B, N, 3, P, P)`` float32 linear camera RGB
            (not yet flipped) and ``info``: ``positions (B, N, 2)`` (x, y) px, ``offsets (B, N, 2)``
            from the optical centre, ``radius (B, N)`` normalised field radius (0 centre, 1 corner),
            ``psf (B, N, 3, k, k)`` the local PSFs, ``isp`` (B ISPParams).
        """
        B, N, P, k = batch, self.n, self.patch, self.field.ksize
        positions = self.sample_positions(B, generator)
        psf = psf_at(self.field, positions[..., 0].reshape(-1), positions[..., 1].reshape(-1))  # (B*N, 3, k, k)
        crops, isp = [], []
        for _ in range(B):
            crops.append(self._crops(P + k - 1, N, generator))
            isp.append(random_isp_params(generator))
        linear = torch.stack([unprocess(c, p) for c, p in zip(crops, isp, strict=True)])  # (B, N, 3, S, S)
        blurry = convolve_psf(linear.reshape(B * N, 3, P + k - 1, P + k - 1), psf, padding="valid")
        r = k // 2
        sharp = linear[..., r : r + P, r : r + P].contiguous()
        info = {
            "positions": positions,
            "offsets": positions - torch.tensor(self.field.center),
            "radius": self.field.field_radius(positions[..., 0], positions[..., 1]).float(),
            "psf": psf.reshape(B, N, 3, k, k),
            "isp": isp,
        }
        return StackBatch(blurry.reshape(B, N, 3, P, P), sharp, info)

    def sample(self, batch: int, generator: torch.Generator | None = None) -> StackBatch:
        """Draw ``batch`` stacks: :meth:`sample_clean`, noise, then the alignment flips.

        Returns:
            :class:`StackBatch` with ``blurry`` (blurred + noise, not clipped) and ``sharp``
            ``(B, N, 3, P, P)`` float32 linear camera RGB; ``info`` as in :meth:`sample_clean` (``psf``
            flipped like its patch, i.e. the blur each aligned patch shows) plus ``flips (B, N, 2)`` bool
            (horizontal, vertical) and ``shot``/``read (B,)`` and ``patterns`` (B lists of N Bayer
            patterns) for ``"demosaic"`` or ``noise_sigma (B,)`` for ``"gaussian"``.
        """
        clean = self.sample_clean(batch, generator)
        B, N, P = batch, self.n, self.patch
        flat = clean.blurry.reshape(B * N, 3, P, P)
        info = clean.info
        if self.noise == "gaussian":
            sigma = random_gaussian_sigmas(B, generator)  # one photo per stack: one noise level
            flat = add_gaussian_noise(flat, sigma.repeat_interleave(N), generator)
            info["noise_sigma"] = sigma
        elif self.noise == "demosaic":
            shot, read = random_noise_levels(B, generator)
            # the Bayer phase of a patch depends on where it starts on the sensor: random per patch
            patterns = [PATTERNS[i] for i in torch.randint(4, (B * N,), generator=generator).tolist()]
            flat = demosaic_residual_noise(
                flat, generator, shot.repeat_interleave(N), read.repeat_interleave(N), patterns, method="malvar"
            )
            info.update(shot=shot, read=read, patterns=[patterns[b * N : (b + 1) * N] for b in range(B)])
        blurry, sharp, psf = flat.reshape(B, N, 3, P, P), clean.sharp, info["psf"]
        flips = torch.zeros(B, N, 2, dtype=torch.bool)
        if self.align and N == 4:
            for j, (sx, sy) in enumerate(MIRRORS):
                dims = [d for d, s in ((-1, sx), (-2, sy)) if s < 0]
                if dims:
                    blurry[:, j] = blurry[:, j].flip(dims)
                    sharp[:, j] = sharp[:, j].flip(dims)
                    psf[:, j] = psf[:, j].flip(dims)
                flips[:, j] = torch.tensor([sx < 0, sy < 0])
        info["flips"] = flips
        return StackBatch(blurry, sharp, info)
