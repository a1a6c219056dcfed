"""Black/white-level normalisation and demosaicking of a Bayer mosaic into linear camera RGB.

Methods (``method=``):

- ``"malvar"`` (default): Malvar, He & Cutler (ICASSP 2004) gradient-corrected bilinear, with OpenCV
  filters and the taps of :func:`isp_collab.physics.noise.demosaic` (the torch code that makes the
  training data's demosaicking residual): the same output to float rounding, so the networks see at
  inference the artefacts they were trained on.
- ``"opencv_ea"``: OpenCV's edge-aware demosaic (``cv2.COLOR_Bayer*2RGB_EA``) on uint16.
- ``"bilinear"``: OpenCV's bilinear demosaic on uint16.

Measured choice (``python -m isp_collab.bench.pipeline demosaic``: the 19 photos of Set5 + Set14
made linear with the sRGB curve, mosaicked with each of the 4 Bayer patterns, demosaicked, PSNR in
linear RGB against the original with an 8-px border excluded; time on a 2176x4128 mosaic - the
Blackmagic frame - with one thread, best of 3, on the shared 2-core dev machine under load):

==========  ==============  ====================  ============================  ======
method      balanced        camera mosaic         camera mosaic pre-balanced     time
            mosaic          (R / 2.2, B / 1.9)    (what :class:`Demosaic` does)
==========  ==============  ====================  ============================  ======
malvar      33.13 dB        30.97 dB              33.13 dB                       0.63-0.84 s
opencv_ea   29.83 dB        29.83 dB              29.83 dB                       0.10-0.13 s
bilinear    29.78 dB        29.78 dB              29.78 dB                       0.09-0.12 s
==========  ==============  ====================  ============================  ======

(sRGB-encoded PSNR: malvar 30.26, opencv_ea 29.27, bilinear 29.13 dB.) OpenCV's edge-aware
variant is barely better than bilinear; Malvar is +3.3 dB for about half a second more on a 9-MP
frame, so it is the default. Malvar mixes channels, so it needs a white-balanced mosaic: on a
camera mosaic it loses 2.2 dB. :class:`Demosaic` therefore scales each CFA site by the
white-balance gains divided by their maximum (every factor <= 1: nothing clips), demosaics, and
divides the factors out again - the same as white-balancing the mosaic before demosaicking, as a
camera ISP does, while :class:`~isp_collab.pipeline.stages.WhiteBalance` stays an RGB stage.
The table's Malvar times are the torch code's (in 64-row strips); the OpenCV filters now used take
0.07 s warm on the demo frame (0.19 s for the torch code, 2 threads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

from ..physics.malvar_taps import MALVAR_TAPS
from .frame import CFA_PATTERNS, CFAPattern, Frame, site_colour

DemosaicMethod = Literal["malvar", "opencv_ea", "bilinear"]
DEMOSAIC_METHODS: tuple[str, ...] = get_args(DemosaicMethod)


def normalize_mosaic(mosaic: np.ndarray, frame: Frame) -> np.ndarray:
    """Raw digital numbers -> [0, 1]: subtract each site's black level, divide by (white - black), clip.

    mosaic: (H, W) integer or float raw values laid out as ``frame.cfa_pattern``.
    Returns (H, W) float32 in [0, 1], linear camera RGB samples.
    """
    check_mosaic_shape(mosaic)
    black = np.asarray(frame.black_level, dtype=np.float32)
    if black.size != 4:
        raise ValueError(f"black_level must hold 4 values (one per 2x2 CFA site), got {frame.black_level!r}")
    black = black.reshape(2, 2)
    if not frame.white_level > black.max():
        raise ValueError(f"white_level {frame.white_level} must be above every black level ({frame.black_level!r})")
    out = np.empty(mosaic.shape, dtype=np.float32)
    for i in range(2):
        for j in range(2):
            scale = np.float32(1.0 / (frame.white_level - black[i, j]))
            np.multiply(mosaic[i::2, j::2].astype(np.float32) - black[i, j], scale, out=out[i::2, j::2])
    return np.clip(out, 0.0, 1.0, out=out)


def normalize_linear(image: np.ndarray, frame: Frame) -> np.ndarray:
    """A demosaicked RAW (a LinearRaw DNG: (H, W, 3) raw digital numbers, camera RGB) -> [0, 1]: each channel's
    black level (``frame.black_level``'s first three) subtracted, divided by (white - black), clipped."""
    black = np.asarray(frame.black_level[:3], dtype=np.float32)
    if not frame.white_level > black.max():
        raise ValueError(f"white_level {frame.white_level} must be above every black level ({frame.black_level!r})")
    out = (image.astype(np.float32) - black) * (np.float32(1.0) / (np.float32(frame.white_level) - black))
    return np.clip(out, 0.0, 1.0, out=out)


def _opencv(mosaic: np.ndarray, pattern: CFAPattern, edge_aware: bool) -> np.ndarray:
    code = getattr(cv2, f"COLOR_Bayer{pattern}2RGB" + ("_EA" if edge_aware else ""))
    u16 = np.clip(mosaic * 65535.0 + 0.5, 0, 65535).astype(np.uint16)  # EA accepts 8/16-bit only
    return cv2.cvtColor(u16, code).astype(np.float32) * np.float32(1 / 65535)


# the four Malvar-He-Cutler filters, /8 (float32, exact in binary): the training data's taps
_MALVAR = [np.asarray(k, dtype=np.float32) / np.float32(8) for k in MALVAR_TAPS]


def _malvar(mosaic: np.ndarray, pattern: CFAPattern) -> np.ndarray:
    """Malvar-He-Cutler with OpenCV: four 5x5 correlations of the whole mosaic (reflect-101 borders, as the
    torch code's reflect padding), then each CFA site takes its measured sample and the filters its
    missing colours need. Equal to :func:`isp_collab.physics.noise.demosaic` (``"malvar"``, the training
    data's demosaicker) to float rounding (tests). Measured against the torch code in 64-row strips (2 threads):
    0.09 s against 0.32 s on a 9-MP mosaic, 1.1 s against 6.4 s on 96 MP; peak memory one mosaic-sized
    float32 plane more (2.13 against 1.88 GB on 96 MP; the four planes at once took 3.25 GB)."""
    h, w = mosaic.shape
    # Even sizes keep every site's neighbours in pattern; reflecting by 1 repeats row H-2 (row H's parity).
    m = np.pad(mosaic, ((0, h % 2), (0, w % 2)), mode="reflect") if (h % 2 or w % 2) else mosaic
    m = np.ascontiguousarray(m, dtype=np.float32)
    colour = site_colour(pattern)
    out = np.empty((h, w, 3), dtype=np.float32)
    # which filter fills which (site, channel): green sites take the colour sharing their row from the row
    # filter and the other from the column one; red/blue sites take green from the cross, the other from the X
    fills: list[list[tuple[int, int, int]]] = [[] for _ in _MALVAR]  # G_AT_RB, AT_G_ROW, AT_G_COL, AT_BR
    for i in range(2):
        for j in range(2):
            c = int(colour[i, j])
            out[i:h:2, j:w:2, c] = m[i:h:2, j:w:2]  # the measured sample
            if c == 1:
                row_colour = 0 if 0 in colour[i] else 2
                fills[1].append((i, j, row_colour))
                fills[2].append((i, j, 2 - row_colour))
            else:
                fills[0].append((i, j, 1))
                fills[3].append((i, j, 2 - c))
    for taps, sites in zip(_MALVAR, fills, strict=True):  # one full-size plane at a time (memory)
        plane = cv2.filter2D(m, cv2.CV_32F, taps, borderType=cv2.BORDER_REFLECT_101)
        for i, j, c in sites:
            out[i:h:2, j:w:2, c] = plane[i:h:2, j:w:2]
        del plane
    return out


def check_mosaic_shape(mosaic: np.ndarray) -> None:
    """ValueError unless ``mosaic`` is (H, W) with H, W >= 4 (cheap: callers check before other work)."""
    if not isinstance(mosaic, np.ndarray):
        raise TypeError(f"expected a numpy (H, W) mosaic, got {type(mosaic).__name__}")
    if mosaic.ndim != 2:
        raise ValueError(f"expected a (H, W) mosaic, got shape {mosaic.shape}")
    if min(mosaic.shape) < 4:  # two CFA periods: Malvar's 5x5 filters reflect-pad by 2 on each colour plane
        raise ValueError(f"a {mosaic.shape[1]}x{mosaic.shape[0]} mosaic is too small to demosaic (at least 4x4)")


def demosaic(mosaic: np.ndarray, pattern: CFAPattern, method: DemosaicMethod = "malvar") -> np.ndarray:
    """Interpolate a Bayer mosaic to full RGB.

    mosaic: (H, W) float32 in [0, 1], linear, laid out as ``pattern`` from its top-left pixel.
    Returns (H, W, 3) float32 linear RGB (R, G, B order) in the mosaic's colour space; measured
    samples are kept as they are (OpenCV methods: except on their 1-pixel border).
    """
    check_mosaic_shape(mosaic)
    if not np.issubdtype(mosaic.dtype, np.floating):
        raise TypeError(
            f"expected a float mosaic in [0, 1], got {mosaic.dtype}: normalise raw values with normalize_mosaic"
        )
    if not np.isfinite(mosaic).all():
        raise ValueError("the mosaic contains NaN or infinity")
    if pattern not in CFA_PATTERNS:
        raise ValueError(f"CFA pattern must be one of {CFA_PATTERNS}, got {pattern!r}")
    if method == "malvar":
        return _malvar(mosaic, pattern)
    if method in ("opencv_ea", "bilinear"):
        return _opencv(mosaic, pattern, edge_aware=method == "opencv_ea")
    raise ValueError(f"demosaic method must be one of {DEMOSAIC_METHODS}, got {method!r}")


@dataclass(frozen=True)
class Demosaic:
    """Normalised mosaic + frame -> (H, W, 3) float32 linear camera RGB (not yet white-balanced).

    With ``balance`` and known ``frame.wb_gains`` the mosaic is balanced for the interpolation and
    unbalanced after it (see the module docstring: +2.2 dB for Malvar).
    """

    method: DemosaicMethod = "malvar"
    balance: bool = True

    def __post_init__(self) -> None:
        if self.method not in DEMOSAIC_METHODS:
            raise ValueError(f"demosaic method must be one of {DEMOSAIC_METHODS}, got {self.method!r}")

    def __call__(self, mosaic: np.ndarray, frame: Frame) -> np.ndarray:
        """``mosaic``: (H, W) float32 normalised to [0, 1] (black 0, white 1), CFA ``frame.cfa_pattern``."""
        if frame.cfa_pattern is None:
            raise ValueError(f"{frame.source}: no CFA pattern; not a RAW frame")
        if not (self.balance and frame.wb_gains):
            return demosaic(mosaic, frame.cfa_pattern, self.method)
        factors = np.asarray(frame.wb_gains, dtype=np.float32)
        factors = factors / factors.max()  # <= 1: balancing never clips
        per_site = factors[site_colour(frame.cfa_pattern)]
        balanced = mosaic.copy()
        for i in range(2):
            for j in range(2):
                balanced[i::2, j::2] *= per_site[i, j]
        rgb = demosaic(balanced, frame.cfa_pattern, self.method)
        rgb *= 1.0 / factors
        return rgb
