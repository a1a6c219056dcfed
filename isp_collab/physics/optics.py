"""Fourier optics of the named lenses: Seidel lens designs and their RGB PSFs at field points.

The PSFs come from Fourier optics (Goodman, *Introduction to Fourier Optics*,
3rd ed., §6.4): the generalised pupil ``P(u, v) exp(i 2π W(u, v))`` of a circular aperture, with a
wavefront error ``W`` made of the Seidel aberrations and their field-height dependence (Born & Wolf,
*Principles of Optics*, 7th ed., §5.3 and §9.2; Welford, *Aberrations of Optical Systems*, 1986):

    W = W040 ρ⁴ + W020 ρ² + W131 H ρ³cosφ + W222(H) ρ²cos²φ + W220(H) ρ² + W111(λ) H ρcosφ + W020(λ) ρ²

(spherical + best-focus balance, coma, astigmatism, field curvature, lateral and axial colour), with φ
measured from the radial direction of the field point and H the field height (0 at the optical
centre, 1 at the image corner). The PSF of a wavelength is ``|FFT(pupil)|²`` (Fraunhofer), sampled
finely, integrated over the pixel area, and averaged over three wavelengths per R/G/B band. Lateral
colour is the wavelength-dependent tilt W111: the R and B images shift radially against G. Because
every term depends only on (H, φ), the field is mirror-symmetric about the centre,
PSF(-x, y) = hflip PSF(x, y); a seeded perturbation from manufacturing tolerances (sensor tilt, a
decentred element giving field-constant coma and astigmatism; Thompson, JOSA A 22(7), 2005, nodal
aberration theory) breaks the symmetry slightly, as in a real lens.

:func:`~isp_collab.physics.psf_field.make_lens` turns these PSFs into a :class:`~isp_collab.physics.psf_field.PSFField`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

LAMBDA_G = 0.55  # reference wavelength (µm) in which the Seidel coefficients are given
# three wavelengths (µm) per colour band, a coarse sampling of a Bayer sensor's R/G/B responses
BANDS = ((0.59, 0.62, 0.65), (0.51, 0.54, 0.57), (0.44, 0.465, 0.49))
OVERSAMPLE = 3  # fine PSF samples per pixel (odd, so the binning stays centred)


# --------------------------------------------------------------------------- physics: named lenses


@dataclass(frozen=True)
class LensDesign:
    """Seidel coefficients in waves at 550 nm, at full field H=1 (the image corner), plus tolerances.

    ``pixel`` is the pixel pitch in units of λF# at 550 nm (1.0: the Airy radius is 1.22 px, so a
    perfect lens is just sharp; at most 1.2, or the blue PSF would be sampled below Nyquist). Field dependence: coma ∝ H, astigmatism and field curvature
    ∝ H² (Seidel) plus an H⁴ fifth-order term (Welford 1986) so the corners degrade fast, as in
    wide-angle designs. The ``tilt``/``coma0``/``astig0`` maxima scale the seeded perturbation.
    """

    spherical: float  # W040; balanced by an equal and opposite defocus (best focus)
    coma: float  # W131 H
    astig: tuple[float, float]  # W222: coefficients of H², H⁴
    curvature: tuple[float, float]  # W220: coefficients of H², H⁴
    lateral_color: tuple[float, float, float]  # W111 H per band (R, G, B): >0 shifts outwards
    axial_color: tuple[float, float, float]  # extra W020 per band (R, G, B)
    pixel: float = 1.0
    tilt: float = 0.0  # W020 varying linearly across the field (tilted sensor)
    coma0: float = 0.0  # field-constant coma (decentred element)
    astig0: float = 0.0  # field-constant astigmatism (decentred element)


LENSES: dict[str, LensDesign] = {
    # a wide-open standard zoom: strong coma and astigmatism in the corners, visible lateral colour
    "lens-a": LensDesign(
        spherical=0.3,
        coma=0.9,
        astig=(1.0, 1.0),
        curvature=(-0.5, -0.5),
        lateral_color=(0.55, 0.0, -0.45),
        axial_color=(0.2, 0.0, 0.3),
        tilt=0.15,
        coma0=0.06,
        astig0=0.08,
    ),
    # a good prime: about three times milder
    "lens-b": LensDesign(
        spherical=0.15,
        coma=0.3,
        astig=(0.35, 0.3),
        curvature=(-0.15, -0.15),
        lateral_color=(0.2, 0.0, -0.15),
        axial_color=(0.08, 0.0, 0.12),
        tilt=0.06,
        coma0=0.025,
        astig0=0.03,
    ),
}


# --------------------------------------------------------------------------- physics: PSFs from the pupil


def _node_axes(h: int, w: int, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Node x (C,) and y (R,) coordinates: evenly spaced from edge pixel to edge pixel (one node: the centre)."""
    xs = np.linspace(0, w - 1, grid[1]) if grid[1] > 1 else np.array([(w - 1) / 2])
    ys = np.linspace(0, h - 1, grid[0]) if grid[0] > 1 else np.array([(h - 1) / 2])
    return xs, ys


@functools.lru_cache(maxsize=16)
def _lens_kernels(
    name: str | LensDesign, h: int, w: int, seed: int, grid: tuple[int, int], k: int, perturbation: float
) -> np.ndarray:
    design = LENSES[name] if isinstance(name, str) else name
    # a named lens's perturbation stream is its own (as shipped); a user's design draws from the seed alone
    rng = np.random.default_rng([seed, list(LENSES).index(name)] if isinstance(name, str) else [seed])
    # perturbation: magnitudes in [0.5, 1] x the design maximum, random orientations
    amp = perturbation * rng.uniform(0.5, 1.0, size=3) * np.array([design.tilt, design.coma0, design.astig0])
    ang = rng.uniform(0, 2 * np.pi, size=3)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    r_max = max(np.hypot(cx, cy), 1e-9)  # field height H = 1 at the corners
    xs, ys = _node_axes(h, w, grid)
    hx, hy = (a.ravel() for a in np.meshgrid((xs - cx) / r_max, (ys - cy) / r_max, indexing="xy"))
    chunks = [_node_psfs(design, hx[i : i + 32], hy[i : i + 32], amp, ang, k) for i in range(0, hx.size, 32)]
    return np.concatenate(chunks, 0).reshape(grid[0], grid[1], 3, k, k)


def _node_psfs(d: LensDesign, hx: np.ndarray, hy: np.ndarray, amp: np.ndarray, ang: np.ndarray, k: int) -> np.ndarray:
    """PSFs (n, 3, k, k) at normalised field points (hx, hy) (n,), via |FFT(pupil)|² per wavelength."""
    n_fine = OVERSAMPLE * k
    # FFT size: the k-pixel window plus a margin against wrap-around of the PSF tails. The pupil sits at
    # offsets -c..c around index 0 and the window is cropped symmetrically, so mirroring stays exact.
    m = _fast_len(OVERSAMPLE * (k + k // 4 + 2))
    c = m // 2 - 1
    crop = (np.arange(n_fine) - n_fine // 2) % m  # fine samples around the centre, in unshifted FFT order
    hh, psi = np.hypot(hx, hy)[:, None], np.arctan2(hy, hx)[:, None]  # field height and azimuth, (n, 1)
    cos_psi, sin_psi = np.cos(psi), np.sin(psi)
    tilt = amp[0] * (hx * np.cos(ang[0]) + hy * np.sin(ang[0]))[:, None]
    out = np.zeros((hx.size, 3, k, k))
    for band, lambdas in enumerate(BANDS):
        for lam in lambdas:
            # pupil radius in samples so that one fine PSF sample is pixel/OVERSAMPLE (Goodman §4.2-4.3: the
            # Fraunhofer pattern of a pupil of D samples in an M-sample grid is sampled every λF#·D/M)
            half = 0.5 * m * d.pixel * LAMBDA_G / (OVERSAMPLE * lam)
            iy, ix = np.nonzero(np.hypot(*np.meshgrid(np.arange(2 * c + 1) - c, np.arange(2 * c + 1) - c)) <= half + 1)
            u, v = (ix - c) / half, (iy - c) / half  # pupil coordinates (x, y) of the samples inside the aperture
            rho2 = u**2 + v**2
            # anti-aliased edge (about one sample wide): a staircase edge would add square-aperture spikes
            aperture = np.clip((1.0 - np.sqrt(rho2)) * half + 0.5, 0.0, 1.0)
            t = u * cos_psi + v * sin_psi  # (n, P): ρ cosφ, the pupil coordinate along the field point's radius
            wave = (
                d.spherical * (rho2**2 - rho2)
                + d.coma * hh * rho2 * t
                + (d.astig[0] * hh**2 + d.astig[1] * hh**4) * t**2
                + (d.curvature[0] * hh**2 + d.curvature[1] * hh**4 + d.axial_color[band] + tilt) * rho2
                + d.lateral_color[band] * hh * t
                # decentring: field-constant coma and astigmatism in fixed orientations (break the mirror symmetry)
                + amp[1] * rho2 * (u * np.cos(ang[1]) + v * np.sin(ang[1]))
                + amp[2] * (u * np.cos(ang[2]) + v * np.sin(ang[2])) ** 2
            )
            pupil = torch.zeros(hx.size, m, m, dtype=torch.complex64)
            # W is an optical path difference given in green waves; placed in FFT order (centre at index 0)
            values = aperture * np.exp((2j * np.pi * LAMBDA_G / lam) * wave)
            pupil[:, (iy - c) % m, (ix - c) % m] = torch.from_numpy(values.astype(np.complex64))
            fine = torch.fft.fft2(pupil)[:, crop[:, None], crop[None, :]].abs().square().numpy()
            # integrate over the pixel area (box of OVERSAMPLE x OVERSAMPLE fine samples)
            binned = fine.reshape(-1, k, OVERSAMPLE, k, OVERSAMPLE).sum(axis=(2, 4), dtype=np.float64)
            out[:, band] += binned / binned.sum(axis=(-2, -1), keepdims=True)
    out /= out.sum(axis=(-2, -1), keepdims=True)
    return out.astype(np.float32)


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer >= n (a fast FFT size)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1
