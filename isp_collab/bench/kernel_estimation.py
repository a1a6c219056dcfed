"""The kernel-estimation experiment of the paper's §3 (Fig. 1): one blur, N sharp/blurry pairs.

Eboli, Morel & Facciolo motivate collaboration by a least-squares experiment: when N patches share
one blur kernel k, observed as ``y_n = k * x_n + noise`` with the sharp ``x_n`` known, the
minimiser of ``sum_n ||k * x_n - y_n||^2 + eps ||k||^2`` has the closed form of their Eq. 2 in the
Fourier domain (2-D DFT, circular convolution, per frequency)::

    K = sum_n conj(X_n) Y_n / (sum_n |X_n|^2 + eps)

and the estimate improves with N until it saturates (near N = 8 in the paper). Here: grey-level
crops of the benchmark images, the 8 kernels of Levin et al. 2009, 1 % Gaussian noise on the blurry
crops, N in {1, 2, 4, ..., 64}, the mean over seeds of the kernel similarity KSIM of Hu & Yang 2012
as used by Xu, Zheng & Jia 2013 ("Unnatural L0 sparse representation for natural image
deblurring"): the maximum over integer shifts of the normalised cross-correlation.

All images here are grey-level float64 arrays in [0, 1] (the mean of the sRGB channels); kernels are
(k, k) float64 with odd k, centred at (k // 2, k // 2), summing to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import correlate, fftconvolve
from scipy.signal.windows import tukey

#: The paper's stack sizes.
DEFAULT_NS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
#: Crop size of the pairs (the networks' training patch size).
DEFAULT_PATCH = 64
#: 1 % Gaussian noise on images in [0, 1].
DEFAULT_NOISE = 0.01
BOUNDARIES = ("circular", "linear")


def psf2otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Kernel (k, k) centred at (k//2, k//2) -> its DFT on an (H, W) grid (complex128).

    Zero-pads the kernel to ``shape`` and rolls its centre to the origin, so that
    ``ifft2(fft2(x) * psf2otf(k, x.shape))`` is the circular convolution ``k * x``.
    """
    kh, kw = kernel.shape
    if kh > shape[0] or kw > shape[1]:
        raise ValueError(f"kernel {kernel.shape} larger than the grid {shape}")
    pad = np.zeros(shape, dtype=np.float64)
    pad[:kh, :kw] = kernel
    pad = np.roll(pad, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.fft2(pad)


def blur_circular(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution of ``x`` (..., H, W) with ``kernel`` (k, k): the model of Eq. 1 exactly."""
    otf = psf2otf(kernel, x.shape[-2:])
    return np.real(np.fft.ifft2(np.fft.fft2(x, axes=(-2, -1)) * otf, axes=(-2, -1)))


def estimate_kernel(
    sharp: np.ndarray,
    blurry: np.ndarray,
    ksize: int,
    eps: float = 1e-8,
    project: bool = True,
) -> np.ndarray:
    """Closed-form least-squares kernel from N pairs (Eq. 2 of the paper).

    Args:
        sharp: (N, P, P) or (P, P) sharp crops.
        blurry: same shape, the blurry observations.
        ksize: odd support size of the returned kernel (the true kernel's size in the experiment).
        eps: Tikhonov weight, in the units of the unnormalised DFT (``sum |X|^2`` grows like
            N P^2 times the signal power); :func:`wiener_eps` gives the value matched to the noise.
        project: clip negative taps and renormalise to sum 1 (blur kernels are non-negative and
            preserve the mean), as blind-deblurring methods do after a kernel update.

    Returns:
        (ksize, ksize) float64 kernel centred at (ksize // 2, ksize // 2).
    """
    if sharp.shape != blurry.shape:
        raise ValueError(f"sharp {sharp.shape} and blurry {blurry.shape} differ")
    if ksize % 2 != 1:
        raise ValueError(f"ksize must be odd, got {ksize}")
    if sharp.ndim == 2:
        sharp, blurry = sharp[None], blurry[None]
    X = np.fft.fft2(sharp, axes=(-2, -1))
    Y = np.fft.fft2(blurry, axes=(-2, -1))
    K = (np.conj(X) * Y).sum(0) / ((np.abs(X) ** 2).sum(0) + eps)
    k = np.real(np.fft.ifft2(K))
    k = np.roll(k, (ksize // 2, ksize // 2), axis=(0, 1))[:ksize, :ksize]
    if project:
        k = np.clip(k, 0.0, None)
        s = k.sum()
        k = k / s if s > 0 else np.full_like(k, 1.0 / k.size)
    return k


def wiener_eps(patch: int, noise_sigma: float) -> float:
    """``eps = P^2 sigma^2``: the noise power per DFT coefficient over a unit prior on ``|K|^2``.

    With this value Eq. 2 is the posterior mean of K under ``Y_n = K X_n + N_n`` with white noise of
    std ``sigma`` and a zero-mean prior of variance 1 on each Fourier coefficient of the kernel
    (``|K| <= 1`` for a non-negative kernel summing to 1). A tiny floor keeps noiseless runs defined.
    """
    return float(patch * patch * max(noise_sigma**2, 1e-12))


def ksim(kernel: np.ndarray, estimate: np.ndarray) -> float:
    """Kernel similarity: max over integer shifts of the normalised cross-correlation, in [0, 1].

    ``max_g sum_t k(t) k_hat(t + g) / (||k|| ||k_hat||)`` (Hu & Yang 2012; Xu et al. 2013), over
    every shift where the supports overlap; the kernels may have different sizes. 1 means equal up
    to a translation (and a positive scale).
    """
    a = np.asarray(kernel, dtype=np.float64)
    b = np.asarray(estimate, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(correlate(a, b, mode="full", method="auto").max() / (na * nb))


def grey(srgb: np.ndarray) -> np.ndarray:
    """H x W x 3 sRGB in [0, 1] -> H x W float64 grey level (mean of the channels)."""
    return srgb.astype(np.float64).mean(axis=-1)


def make_pairs(
    images: Sequence[np.ndarray],
    kernel: np.ndarray,
    n: int,
    rng: np.random.Generator,
    patch: int = DEFAULT_PATCH,
    noise_sigma: float = DEFAULT_NOISE,
    boundary: str = "circular",
    blurred: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """N sharp/blurry (P, P) pairs sharing ``kernel``, from random crops of grey ``images``.

    ``boundary="circular"``: each blurry crop is the circular blur of its sharp crop (Eq. 1 holds
    exactly, only the noise perturbs Eq. 2). ``boundary="linear"``: the whole image is blurred
    (``blurred`` may hold those images, precomputed with :func:`blur_linear`) and co-located crops
    are taken, as a camera would see them: content outside the sharp crop leaks into the blurry
    one, an error Eq. 2 does not model. Noise: i.i.d. Gaussian of std ``noise_sigma`` on the
    blurry crops. Returns ``(sharp, blurry)``, each (N, P, P) float64.
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    usable = [i for i, im in enumerate(images) if min(im.shape) >= patch + 2 * kernel.shape[0]]
    if not usable:
        raise ValueError(f"no image larger than {patch + 2 * kernel.shape[0]} px for {patch}-px crops")
    if boundary == "linear" and blurred is None:
        blurred = [blur_linear(im, kernel) for im in images]
    margin = kernel.shape[0]
    sharp = np.empty((n, patch, patch))
    blurry = np.empty((n, patch, patch))
    for j in range(n):
        i = usable[int(rng.integers(len(usable)))]
        h, w = images[i].shape
        y = int(rng.integers(margin, h - patch - margin + 1))
        x = int(rng.integers(margin, w - patch - margin + 1))
        sharp[j] = images[i][y : y + patch, x : x + patch]
        if boundary == "linear":
            blurry[j] = blurred[i][y : y + patch, x : x + patch]  # type: ignore[index]
    if boundary == "circular":
        blurry = blur_circular(sharp, kernel)
    blurry = blurry + noise_sigma * rng.standard_normal(blurry.shape)
    return sharp, blurry


def taper_pairs(sharp: np.ndarray, blurry: np.ndarray, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray, float]:
    """Edge taper for crops cut from a linearly blurred image (``boundary="linear"``).

    Subtracts each sharp crop's mean from both crops (a kernel summing to 1 maps a constant to
    itself, so the pair stays consistent) and multiplies both by a separable Tukey window of
    parameter ``alpha`` (Harris 1978). Windowing commutes with the blur only approximately, but it
    removes most of the leakage of out-of-crop content that breaks the circular model of Eq. 2.
    Returns ``(sharp_w, blurry_w, mean_w2)`` where ``mean_w2`` (mean squared window value) rescales
    the noise term of :func:`wiener_eps`.
    """
    w = np.outer(tukey(sharp.shape[-2], alpha), tukey(sharp.shape[-1], alpha))
    m = sharp.mean(axis=(-2, -1), keepdims=True)
    return (sharp - m) * w, (blurry - m) * w, float((w**2).mean())


def blur_linear(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Linear ("same"-size) convolution of a grey H x W image with a (k, k) kernel."""
    return fftconvolve(image, kernel, mode="same")


@dataclass
class KernelExperiment:
    """KSIM of Eq. 2's estimate: ``ksim[kernel, n, seed]``, plus the settings that produced it."""

    kernel_names: list[str]
    ns: list[int]
    seeds: int
    patch: int
    noise_sigma: float
    boundary: str
    eps: float
    ksim: np.ndarray  # (K, len(ns), seeds)
    n_images: int = 0
    extra: dict = field(default_factory=dict)

    def mean_per_kernel(self) -> np.ndarray:
        """(K, len(ns)) mean over seeds."""
        return self.ksim.mean(axis=2)

    def mean(self) -> np.ndarray:
        """(len(ns),) mean over kernels and seeds."""
        return self.ksim.mean(axis=(0, 2))

    def std_of_mean(self) -> np.ndarray:
        """(len(ns),) standard error of :meth:`mean` over seeds (kernel-averaged per seed)."""
        per_seed = self.ksim.mean(axis=0)  # (len(ns), seeds)
        return per_seed.std(axis=1, ddof=1) / np.sqrt(max(self.seeds, 1)) if self.seeds > 1 else 0 * per_seed[:, 0]

    def saturation_n(self, tol: float = 0.01) -> int | None:
        """Smallest N from which doubling N raises the mean KSIM by less than ``tol`` (diminishing returns).

        Assumes ``ns`` are successive doublings; None when every doubling still gains ``tol`` (not saturated
        by the largest N run: what a larger one would gain is not known).
        """
        m = self.mean()
        for i in range(len(self.ns) - 1):
            if m[i + 1] - m[i] < tol:
                return int(self.ns[i])
        return None

    def saturation_text(self, tol: float = 0.01) -> str:
        """``"saturates at N=8"``, or ``"not saturated by N=64 (32->64 still gains 0.0102)"``."""
        n = self.saturation_n(tol)
        if n is not None:
            return f"saturates at N={n}"
        m = self.mean()
        gain = f" ({self.ns[-2]}->{self.ns[-1]} still gains {m[-1] - m[-2]:.4f})" if len(self.ns) > 1 else ""
        return f"not saturated by N={self.ns[-1]}{gain}"

    def within_best_n(self, tol: float = 0.01) -> int:
        """Smallest N whose mean KSIM is within ``tol`` of the best mean KSIM over all N."""
        m = self.mean()
        best = float(m.max())
        for n, v in zip(self.ns, m, strict=True):
            if v >= best - tol:
                return int(n)
        return int(self.ns[-1])


def run_experiment(
    images: Sequence[np.ndarray],
    kernels: dict[str, np.ndarray],
    ns: Sequence[int] = DEFAULT_NS,
    seeds: int = 10,
    patch: int = DEFAULT_PATCH,
    noise_sigma: float = DEFAULT_NOISE,
    boundary: str = "circular",
    eps: float | None = None,
) -> KernelExperiment:
    """Run the §3 experiment: for each kernel and seed draw max(ns) pairs, estimate from the first N.

    ``images``: grey H x W float64 in [0, 1] (see :func:`grey`). The same pairs are nested across
    N (the N = 8 estimate uses the pairs of N = 4 plus four more), which makes the curve smooth at a
    fixed cost. Seeding: ``numpy.random.default_rng([seed, kernel_index])``. ``eps=None`` uses
    :func:`wiener_eps`. ``boundary="linear"`` crops a linearly blurred image and applies
    :func:`taper_pairs` before Eq. 2.
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    ns = sorted(int(n) for n in ns)
    if eps is None:
        eps = wiener_eps(patch, noise_sigma)
        if boundary == "linear":
            eps *= taper_pairs(np.zeros((1, patch, patch)), np.zeros((1, patch, patch)))[2]
    eps = float(eps)
    names = list(kernels)
    out = np.zeros((len(names), len(ns), seeds))
    for ki, name in enumerate(names):
        k = kernels[name]
        blurred = [blur_linear(im, k) for im in images] if boundary == "linear" else None
        for s in range(seeds):
            rng = np.random.default_rng([s, ki])
            sharp, blurry = make_pairs(images, k, ns[-1], rng, patch, noise_sigma, boundary, blurred)
            if boundary == "linear":
                sharp, blurry, _ = taper_pairs(sharp, blurry)
            for ni, n in enumerate(ns):
                est = estimate_kernel(sharp[:n], blurry[:n], k.shape[0], eps=eps)
                out[ki, ni, s] = ksim(k, est)
    sizes = {name: int(kernels[name].shape[0]) for name in names}
    return KernelExperiment(names, ns, seeds, patch, noise_sigma, boundary, eps, out, len(images), {"sizes": sizes})
