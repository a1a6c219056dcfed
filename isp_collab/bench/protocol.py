"""The degradation protocol of the paper's §5.2, on H x W x 3 numpy images.

1. sRGB benchmark image -> pseudo-linear camera RGB with Brooks et al. 2019's unprocessing and one
   fixed camera (:func:`isp_collab.physics.unprocess.fixed_isp_params`, deterministic);
2. blur with a 33 x 33 Gaussian kernel (reflect borders): isotropic sigma in {1, 2, 3, 4} px, and an
   "anisotropic" set where image i gets its own kernel drawn by
   :func:`isp_collab.physics.kernels.sample_gaussian_kernels` (stds uniform in [0.3, 4], angle
   uniform) from ``torch.Generator().manual_seed(seed * 1000 + i)``;
3. add white Gaussian noise of std 0.5/255 (numpy generator seeded by ``[seed, code, i]``, with
   ``code`` = 10 sigma, or 999 for the anisotropic set) and clip to [0, 1].

Scores compare a restored image to the linear sharp image of step 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: The paper's isotropic evaluation blurs (px).
SIGMAS: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
#: 0.5 / 255 on [0, 1] images.
NOISE_SIGMA = 0.5 / 255
KERNEL_SIZE = 33
ANISO = "aniso"


def linearise(srgb: np.ndarray) -> np.ndarray:
    """H x W x 3 float32 sRGB in [0, 1] -> H x W x 3 float32 linear camera RGB in [0, 1]."""
    from ..physics.unprocess import fixed_isp_params, unprocess

    x = torch.from_numpy(np.ascontiguousarray(srgb, dtype=np.float32)).permute(2, 0, 1)
    with torch.no_grad():
        y = unprocess(x, fixed_isp_params())
    return np.ascontiguousarray(y.permute(1, 2, 0).numpy(), dtype=np.float32)


def to_display(linear: np.ndarray) -> np.ndarray:
    """Linear camera RGB (H x W x 3, [0, 1]) -> sRGB for figures, with the same fixed camera."""
    from ..physics.unprocess import fixed_isp_params, process

    x = torch.from_numpy(np.ascontiguousarray(linear, dtype=np.float32)).permute(2, 0, 1)
    with torch.no_grad():
        y = process(x.clamp(0, 1), fixed_isp_params())
    return np.ascontiguousarray(y.permute(1, 2, 0).numpy(), dtype=np.float32)


def degradation_names(sigmas: Sequence[float] = SIGMAS, aniso: bool = True) -> list[str]:
    """``["sigma=1", ..., "aniso"]``."""
    return [f"sigma={s:g}" for s in sigmas] + ([ANISO] if aniso else [])


def kernel_for(name: str, image_index: int, seed: int = 0) -> np.ndarray:
    """The (33, 33) float32 kernel of degradation ``name`` for image ``image_index``."""
    from ..physics.kernels import isotropic_gaussian_kernel, sample_gaussian_kernels

    if name == ANISO:
        g = torch.Generator().manual_seed(seed * 1000 + image_index)
        return sample_gaussian_kernels(1, g, size=KERNEL_SIZE)[0].numpy()
    if not name.startswith("sigma="):
        raise ValueError(f"unknown degradation {name!r}")
    return isotropic_gaussian_kernel(float(name.split("=", 1)[1]), size=KERNEL_SIZE).numpy()


def _code(name: str) -> int:
    """Stable integer of a degradation name, for seeding."""
    return 999 if name == ANISO else int(round(10 * float(name.split("=", 1)[1])))


def degrade(
    linear: np.ndarray,
    kernel: np.ndarray,
    rng: np.random.Generator,
    noise_sigma: float = NOISE_SIGMA,
) -> np.ndarray:
    """Blur (reflect borders) + Gaussian noise + clip. H x W x 3 float32 linear -> same."""
    from ..physics.kernels import blur_image

    x = torch.from_numpy(np.ascontiguousarray(linear, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = blur_image(x, torch.from_numpy(np.asarray(kernel, dtype=np.float32))[None], padding="reflect")[0]
    out = y.permute(1, 2, 0).numpy().astype(np.float32)
    out = out + rng.standard_normal(out.shape).astype(np.float32) * np.float32(noise_sigma)
    return np.clip(out, 0.0, 1.0)


@dataclass
class Case:
    """One benchmark case: image ``name`` under degradation ``degradation``; arrays H x W x 3 linear."""

    image: str
    degradation: str
    sharp: np.ndarray
    blurry: np.ndarray


def center_crop(image: np.ndarray, size: int | None) -> np.ndarray:
    """Centre ``size x size`` crop (or the image when ``size`` is None or larger)."""
    if size is None:
        return image
    h, w = image.shape[:2]
    s_h, s_w = min(size, h), min(size, w)
    y, x = (h - s_h) // 2, (w - s_w) // 2
    return image[y : y + s_h, x : x + s_w]


def cases(
    images: Sequence,
    degradations: Sequence[str],
    seed: int = 0,
    crop: int | None = None,
    noise_sigma: float = NOISE_SIGMA,
) -> Iterator[Case]:
    """Yield every (image, degradation) case. ``images``: :class:`~isp_collab.bench.data.BenchImage`.

    ``crop`` takes a centre crop of the sRGB image first (quick runs, tuning).
    """
    for i, im in enumerate(images):
        sharp = linearise(center_crop(im.srgb, crop))
        h, w = sharp.shape[:2]
        if min(h, w) <= KERNEL_SIZE // 2:  # the reflected border of the blur needs more than half a kernel
            raise ValueError(f"{im.name}: {w}x{h} px is too small for the {KERNEL_SIZE}x{KERNEL_SIZE} blurs")
        for name in degradations:
            rng = np.random.default_rng([seed, _code(name), i])
            yield Case(im.name, name, sharp, degrade(sharp, kernel_for(name, i, seed), rng, noise_sigma))
