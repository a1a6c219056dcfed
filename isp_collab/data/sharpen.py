"""Sharpening stacks: N crops sharing one anisotropic Gaussian blur (paper §5.2), in linear RGB.

For each stack: draw one kernel and one camera (Brooks et al. 2019 unprocessing parameters);
take N sRGB crops of size ``patch + k - 1`` (from different places/images, or one image with
``same_image=True``); unprocess them to linear camera RGB; blur with ``"valid"`` padding, so
the targets are exactly the crops' centres with no border effect; add noise, drawn per
patch by default; ``noise_per="stack"`` draws one noise level and one Bayer pattern per stack, as in
one photo (measured worse for training: benchmarks/RESULTS.md, *stacks-sharpen*). With mixed noise,
``noise_kind_per="stack"`` draws the noise *kind* (demosaicking residual or white) once per stack, as
in one photo, while levels and patterns stay per patch (*noise-kind-sharpen*).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Literal, Protocol

import torch

from ..physics.checks import require_sigma_range
from ..physics.kernels import blur_stacks, gaussian_kernel, sample_gaussian_params
from ..physics.noise import (
    PATTERNS,
    add_gaussian_noise,
    demosaic_residual_noise,
    random_gaussian_sigmas,
    random_noise_levels,
)
from ..physics.unprocess import random_isp_params, unprocess
from .batch import StackBatch

Noise = Literal["demosaic", "gaussian", "mixed"]
NoisePer = Literal["stack", "patch"]


class Source(Protocol):
    """Where sharpening patches come from: ``random_crops(size, count, generator, same_image)`` returns
    (count, 3, size, size) float32 sRGB-encoded crops in [0, 1] (the sampler unprocesses them to linear camera
    RGB); ``same_image``: all from one photo."""

    def random_crops(
        self, size: int, count: int, generator: torch.Generator | None = None, same_image: bool = False
    ) -> torch.Tensor:
        """(count, 3, size, size) float32 sRGB-encoded crops in [0, 1]."""
        ...


class SharpenSampler:
    """Stacks of N patches blurred by one random Gaussian kernel each.

    Args:
        source: an image source (:class:`~isp_collab.data.sources.ImageFolder` or ``DeadLeaves``).
        n: patches per stack.
        patch: output patch size P (even, for the Bayer mosaic).
        noise: ``"demosaic"`` (mosaic → Brooks shot/read noise → Malvar demosaic, random Bayer
            pattern per patch), ``"gaussian"`` (i.i.d., σ ∈ [0.5, 2]/255) or ``"mixed"`` (each
            draw is demosaicking residual or white noise with probability 1/2, so a model does not
            come to depend on one noise texture: benchmarks/RESULTS.md, *noise-sharpen*).
        sigma_range: range of the kernel's principal stds in px.
        kernel_size: odd kernel support k.
        same_image: take all N crops of a stack from one image.
        noise_per: ``"patch"`` (noise level and Bayer pattern drawn for every patch) or ``"stack"``
            (one per stack, as in one photo).
        noise_kind_per: mixed noise only: the coin demosaicking-or-white per ``"patch"`` or one per
            ``"stack"`` (every patch of a stack has the same kind of noise, as the tiles of one photo).
        blur_jitter: j >= 0: each patch's kernel is the stack's with its two stds scaled by
            ``exp(j u)`` and its angle turned by ``j u π/4`` (u uniform in [-1, 1], drawn per patch and
            parameter), so a stack shares its blur only approximately; 0: exactly (the default). A patch's
            stds may leave ``sigma_range`` by that factor (j = 0.25: 4 px up to 5.1 px, 0.3 px down to 0.23 px).
    """

    def __init__(
        self,
        source: Source,
        n: int,
        patch: int = 64,
        noise: Noise = "demosaic",
        sigma_range: tuple[float, float] = (0.3, 4.0),
        kernel_size: int = 33,
        same_image: bool = False,
        noise_per: NoisePer = "patch",
        noise_kind_per: NoisePer = "patch",
        blur_jitter: float = 0.0,
    ) -> None:
        if noise not in ("demosaic", "gaussian", "mixed"):
            raise ValueError(f"noise must be 'demosaic', 'gaussian' or 'mixed', got {noise!r}")
        for key, value in (("noise_per", noise_per), ("noise_kind_per", noise_kind_per)):
            if value not in ("stack", "patch"):
                raise ValueError(f"{key} must be 'stack' or 'patch', got {value!r}")
        if not 0.0 <= blur_jitter < 1.0:
            raise ValueError(f"blur_jitter must be in [0, 1), got {blur_jitter}")
        if n < 1 or patch < 2 or patch % 2 or kernel_size % 2 == 0:
            raise ValueError(
                f"need n >= 1, an even patch and an odd kernel_size; got n={n}, patch={patch}, kernel_size={kernel_size}"
            )
        require_sigma_range(sigma_range)
        if kernel_size < 6 * sigma_range[1] + 1:  # the support cuts the widest blurs: they are milder than drawn
            warnings.warn(
                f"kernel_size {kernel_size} cuts Gaussians of sigma up to {sigma_range[1]:g} px (needs "
                f"{math.ceil(6 * sigma_range[1] + 1) | 1}): the widest blurs are milder than info['sigmas'] says",
                stacklevel=2,
            )
        self.source, self.n, self.patch, self.noise = source, n, patch, noise
        self.sigma_range, self.kernel_size, self.same_image = sigma_range, kernel_size, same_image
        self.noise_per, self.noise_kind_per = noise_per, noise_kind_per
        self.blur_jitter = blur_jitter

    def sample_clean(self, batch: int, generator: torch.Generator | None = None) -> StackBatch:
        """Draw ``batch`` noise-free stacks: ``blurry`` is the blurred linear image without noise.

        Returns:
            :class:`StackBatch` with ``blurry``/``sharp`` ``(B, N, 3, P, P)`` float32 linear camera
            RGB and ``info``: ``kernels (B, k, k)``, ``sigmas (B, 2)`` and ``theta (B,)`` of the
            kernels, ``isp`` (B :class:`~isp_collab.physics.unprocess.ISPParams`); with ``blur_jitter``
            the kernels each patch was blurred with, ``patch_kernels (B, N, k, k)``.
        """
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
        B, N, P, k = batch, self.n, self.patch, self.kernel_size
        sigmas, theta = sample_gaussian_params(B, generator, self.sigma_range)
        kernels = gaussian_kernel(sigmas[:, 0], sigmas[:, 1], theta, k)
        crops, isp = [], []
        for _ in range(B):
            crops.append(self.source.random_crops(P + k - 1, N, generator, self.same_image))
            isp.append(random_isp_params(generator))
        linear = torch.stack([unprocess(c, p) for c, p in zip(crops, isp, strict=True)])
        info = {"kernels": kernels, "sigmas": sigmas, "theta": theta, "isp": isp}
        if self.blur_jitter:  # one kernel per patch, near the stack's
            u = 2 * torch.rand(B, N, 3, generator=generator) - 1
            scaled = sigmas[:, None] * torch.exp(self.blur_jitter * u[..., :2])
            turned = theta[:, None] + self.blur_jitter * u[..., 2] * math.pi / 4
            own = gaussian_kernel(scaled[..., 0].flatten(), scaled[..., 1].flatten(), turned.flatten(), k)
            flat = linear.reshape(B * N, 1, *linear.shape[2:])
            blurred = blur_stacks(flat, own, padding="valid").reshape(B, N, 3, P, P)
            info["patch_kernels"] = own.reshape(B, N, k, k)
        else:
            blurred = blur_stacks(linear, kernels, padding="valid")
        h = (k - 1) // 2
        sharp = linear[..., h : h + P, h : h + P].contiguous()
        return StackBatch(blurred, sharp, info)

    def sample(self, batch: int, generator: torch.Generator | None = None) -> StackBatch:
        """Draw ``batch`` stacks: :meth:`sample_clean` plus noise drawn per patch.

        Returns:
            :class:`StackBatch` with ``blurry`` (blurred + noise, not clipped) and ``sharp``
            ``(B, N, 3, P, P)`` float32 linear camera RGB; ``info`` as in :meth:`sample_clean`
            plus ``noise_sigma (B, N)`` (gaussian) or ``shot``/``read (B, N)`` and ``patterns``
            (B lists of N Bayer patterns) (demosaic); mixed: ``demosaic (B, N)`` bool and
            ``noise_sigma``/``shot``/``read (B, N)``, zero where that kind was not drawn.
        """
        clean = self.sample_clean(batch, generator)
        B, N, P = batch, self.n, self.patch
        flat = clean.blurry.reshape(B * N, 3, P, P)
        info = clean.info
        draws = B if self.noise_per == "stack" else B * N  # one draw per photo-like stack, or per patch
        spread = N if self.noise_per == "stack" else 1

        def per_patch(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(spread)

        if self.noise == "gaussian":
            sigma = per_patch(random_gaussian_sigmas(draws, generator))
            noisy = add_gaussian_noise(flat, sigma, generator)
            info["noise_sigma"] = sigma.reshape(B, N)
        elif self.noise == "demosaic":
            shot, read = (per_patch(t) for t in random_noise_levels(draws, generator))
            picks = per_patch(torch.randint(4, (draws,), generator=generator)).tolist()
            patterns = [PATTERNS[i] for i in picks]
            noisy = demosaic_residual_noise(flat, generator, shot, read, patterns, method="malvar")
            info.update(
                shot=shot.reshape(B, N),
                read=read.reshape(B, N),
                patterns=[patterns[b * N : (b + 1) * N] for b in range(B)],
            )
        else:
            noisy = self._mixed_noise(flat, draws, per_patch, generator, info)
        return StackBatch(noisy.reshape(B, N, 3, P, P), clean.sharp, info)

    def _mixed_noise(
        self,
        flat: torch.Tensor,
        draws: int,
        per_patch: Callable[[torch.Tensor], torch.Tensor],
        generator: torch.Generator | None,
        info: dict,
    ) -> torch.Tensor:
        """Demosaicking residual noise or white noise, one coin per draw; fills ``info`` for ``(B, N)``."""
        B, N = flat.shape[0] // self.n, self.n
        if self.noise_kind_per == "stack":  # one coin per stack (at N=1 the same stream as per patch)
            demosaic = (torch.rand(B, generator=generator) < 0.5).repeat_interleave(N)
        else:
            demosaic = per_patch((torch.rand(draws, generator=generator) < 0.5).float()).bool()
        sigma = per_patch(random_gaussian_sigmas(draws, generator))
        shot, read = (per_patch(t) for t in random_noise_levels(draws, generator))
        picks = per_patch(torch.randint(4, (draws,), generator=generator)).tolist()
        noisy, white = flat.clone(), ~demosaic
        if white.any():
            noisy[white] = add_gaussian_noise(flat[white], sigma[white], generator)
        if demosaic.any():
            idx = demosaic.nonzero().flatten()
            patterns = [PATTERNS[picks[i]] for i in idx.tolist()]
            noisy[idx] = demosaic_residual_noise(flat[idx], generator, shot[idx], read[idx], patterns, method="malvar")
        zero = torch.zeros_like(sigma)
        info.update(
            demosaic=demosaic.reshape(B, N),
            noise_sigma=torch.where(white, sigma, zero).reshape(B, N),
            shot=torch.where(demosaic, shot, zero).reshape(B, N),
            read=torch.where(demosaic, read, zero).reshape(B, N),
        )
        return noisy
