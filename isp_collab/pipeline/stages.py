"""Pipeline stages: ``stage(image, frame) -> image`` on (H, W, 3) float32 linear RGB.

Every stage is a small dataclass with ``enabled``; a disabled stage returns its input unchanged.
Order in :class:`~isp_collab.pipeline.pipeline.Pipeline` (camera-ISP order)::

    [Linearize]  ->  LensCorrect -> Sharpen -> UnsharpMask  ->  WhiteBalance -> ColorCorrect -> Tone
     sRGB input      collaborative networks on linear camera RGB      camera RGB -> linear sRGB -> sRGB-encoded

The restoration stages run where the blur was made: on linear camera RGB right after
demosaicking, before white balance (the networks are trained on unprocessed camera RGB, whose
white-balance gains are inverted), before the colour matrix mixes channels and before the tone
curve bends values.
``Tone`` is the last stage; its output is sRGB-encoded in [0, 1], ready for :mod:`.encode`.
The two network stages (``LensCorrect``, ``Sharpen``) are in :mod:`.collaborative`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import cv2
import numpy as np

from .frame import Frame, site_colour


class Stage(Protocol):
    """What the pipeline needs of a stage (user stages only have to match this).

    ``stage(image, frame) -> image``: ``image`` (H, W, 3) float32, in the colour space and range of the stage's
    place in the pipeline (module docstring of :mod:`.pipeline`), ``frame`` its :class:`~.frame.Frame`; the result
    the same shape and dtype. A disabled stage (``enabled`` false) returns its input.
    """

    enabled: bool

    def __call__(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """The stage's output for ``image`` (see the class)."""
        ...


def check_stage_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is (H, W, 3) float32."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.float32:
        what = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) float32 image, got a {what}")


def check_number(value: object, name: str) -> None:
    """Raise ValueError naming the setting unless ``value`` is a real number (numpy scalars included, bool not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")


def _unit_float_copy(x: np.ndarray) -> np.ndarray:
    """A C-ordered float32 copy of float values clipped to [0, 1] (OpenCV's in-place ``pow`` needs C order).

    Raises TypeError for integer codes (uint8 128 would clip to 1.0): scale them to [0, 1] first.
    """
    if isinstance(x, np.ndarray) and x.dtype.kind in "uib":  # image codes (Python numbers and lists are values)
        raise TypeError(f"expected float values in [0, 1], got {x.dtype} (divide integer codes by their maximum first)")
    y = np.array(x, dtype=np.float32, order="C", copy=True)
    return np.clip(y, 0.0, 1.0, out=y)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear (IEC 61966-2-1 piecewise curve); any shape, float32 out.

    Written with in-place OpenCV ``pow``: on a 9-MP frame the temporaries of the NumPy one-liner
    cost more than the arithmetic.
    """
    y = _unit_float_copy(x)
    low = y <= 0.04045
    low_values = y[low] * np.float32(1 / 12.92)
    y += np.float32(0.055)
    y *= np.float32(1 / 1.055)
    cv2.pow(y, 2.4, dst=y)
    y[low] = low_values
    return y


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded (inverse of :func:`srgb_to_linear`); clips to [0, 1] first."""
    y = _unit_float_copy(x)
    low = y <= 0.0031308
    low_values = y[low] * np.float32(12.92)
    cv2.pow(y, 1 / 2.4, dst=y)
    y *= np.float32(1.055)
    y -= np.float32(0.055)
    y[low] = low_values
    return y


@dataclass
class StageBase:
    """``__call__`` checks the image and returns it untouched when ``enabled`` is false; other float dtypes
    (float64, float16) are taken as float32, as :func:`isp_collab.restore.restore` takes them.

    A subclass implements ``apply(image, frame) -> image``: (H, W, 3) float32 in, the same shape out.
    """

    name: ClassVar[str] = "stage"
    enabled: bool = True

    def __call__(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """``image`` (H, W, 3) float; ValueError for another shape or dtype (see the class)."""
        if not self.enabled:
            return image
        if isinstance(image, np.ndarray) and image.dtype != np.float32 and np.issubdtype(image.dtype, np.floating):
            image = image.astype(np.float32)
        check_stage_image(image)
        return self.apply(image, frame)

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """The stage's work on a checked (H, W, 3) float32 image; subclasses implement it."""
        raise NotImplementedError


@dataclass
class Linearize(StageBase):
    """Ordinary images: sRGB-encoded [0, 1] -> linear sRGB. RAW frames (already linear) pass through."""

    name: ClassVar[str] = "linearize"

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """sRGB-encoded -> linear sRGB; a RAW frame's image as it is."""
        return image if frame.kind == "raw" else srgb_to_linear(image)


# How far apart white-balance gains given by hand may be (they are relative: only their ratios matter; a camera's
# run from about 1 to 4, an underwater or sodium-lamp scene past 10).
MAX_GAIN_RATIO = 100.0


def gray_world_gains(mosaic: np.ndarray, pattern: str | None) -> tuple[float, float, float]:
    """(R, G, B) gains that make the mean of each channel equal to green's (gray-world assumption).

    mosaic: (H, W) float32 normalised to [0, 1]. Averages run over the 2x2 CFA cells none of whose
    samples is nearly saturated (>= 0.98): dropping samples channel by channel would drop more green
    (it clips first) than red or blue and turn neutrals green. Unit gains when no cell is usable.
    A demosaicked frame (a LinearRaw DNG: (H, W, 3), ``pattern`` None) averages its pixels with no clipped channel.
    """
    if mosaic.ndim == 3:
        usable = (mosaic < 0.98).all(axis=2)
        means = mosaic[usable].mean(axis=0) if usable.any() else np.zeros(3)
        if np.any(means <= 1e-6):
            return (1.0, 1.0, 1.0)
        return (float(means[1] / means[0]), 1.0, float(means[1] / means[2]))
    colour = site_colour(pattern)  # type: ignore[arg-type]
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    cells = mosaic[:h, :w].reshape(h // 2, 2, w // 2, 2)
    usable = (cells < 0.98).all(axis=(1, 3))  # (H/2, W/2): cells with no clipped sample
    sums, counts = np.zeros(3), np.zeros(3)
    for i in range(2):
        for j in range(2):
            sums[colour[i, j]] += float(cells[:, i, :, j][usable].sum())
            counts[colour[i, j]] += int(usable.sum())
    means = sums / np.maximum(counts, 1)
    if np.any(means <= 1e-6):
        return (1.0, 1.0, 1.0)
    return (float(means[1] / means[0]), 1.0, float(means[1] / means[2]))


def highlight_safe_gains(gains: tuple[float, float, float]) -> tuple[float, float, float]:
    """(R, G, B) white-balance gains scaled so that the smallest is at least 1 (unchanged when it is).

    dcraw's ``scale_colors`` (``pre_mul[c] /= dmin`` when highlights are clipped): every channel's
    sensor white then maps to >= 1, so clipping at 1 leaves saturated pixels neutral white
    (see :class:`WhiteBalance`). The balance (the ratios) is kept.
    """
    low = min(gains)
    return tuple(float(g) for g in gains) if low >= 1 else tuple(float(g) / low for g in gains)  # type: ignore[return-value]


@dataclass
class WhiteBalance(StageBase):
    """Multiply camera RGB by ``frame.wb_gains`` and clip to [0, 1]; sensor saturation comes out white.

    ``mode`` says where the gains come from (see :meth:`resolve`, run by the pipeline before
    demosaicking): ``"as_shot"`` (the file's; gray world when it has none), ``"gray_world"``,
    ``"none"`` (unit gains), or explicit ``gains`` (R, G, B) that override the mode.
    Ordinary sRGB images are already balanced: the stage passes them through.

    The gains applied are :func:`highlight_safe_gains`: scaled so that none is below 1, as dcraw and
    LibRaw do (``scale_colors`` with highlight mode 0, clip). Gains normalised to G = 1 can put R or B
    below 1 (gray world on a green-poor scene, a tungsten-lit file's blue...); the sensor's clip level
    in that channel then lands below output white and a blown highlight keeps that channel's deficit
    (a cream or cyan cast instead of white). With every gain >= 1 a channel at the sensor's white
    level reaches 1 and clips there, so saturated areas come out neutral white. The cost is a uniform
    brightening by 1 / min(gain) when a gain is below 1 (0.26 EV for gains 1.16, 1, 0.836, such as a tungsten-lit file might carry);
    this is the smallest change that can make sensor white output white with a per-channel linear
    map, and it leaves the usual case (G = 1 the smallest gain, e.g. daylight) unchanged. A per-pixel
    fix of clipped pixels only would need the exact clip level (the shared chart dump's description
    says 1023; its sensor clips at 1020) and leaves tinted rings where a highlight fades into its
    surroundings. ``frame.wb_gains`` keeps the gains as found (G = 1). Explicit ``gains`` are scaled
    the same way when one is below 1 (to darken, use ``tone.exposure_ev``); gains all >= 1 apply as given.
    """

    name: ClassVar[str] = "white_balance"
    mode: Literal["as_shot", "gray_world", "none"] = "as_shot"
    gains: tuple[float, float, float] | None = None
    clip: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("as_shot", "gray_world", "none"):
            raise ValueError(f"white_balance.mode must be 'as_shot', 'gray_world' or 'none', got {self.mode!r}")
        if self.gains is not None:
            g = self.gains
            if isinstance(g, (str, bytes)) or not hasattr(g, "__len__") or len(g) != 3:
                raise ValueError(f"white_balance.gains must be 3 positive finite numbers, got {g!r}")
            for value in g:
                check_number(value, "white_balance.gains")
            if not all(0 < g < math.inf for g in self.gains):  # NaN fails too
                raise ValueError(f"white_balance.gains must be 3 positive finite numbers, got {self.gains!r}")
            if max(self.gains) > MAX_GAIN_RATIO * min(self.gains):  # 1e-300,1,1: every pixel overflowed
                raise ValueError(
                    f"white_balance.gains must be within {MAX_GAIN_RATIO:g}x of each other, got {self.gains!r}"
                )
            self.gains = tuple(float(g) for g in self.gains)  # type: ignore[assignment]

    def resolve(self, frame: Frame, mosaic: np.ndarray) -> Frame:
        """The frame with the gains this stage will apply (mosaic: (H, W) normalised to [0, 1], or (H, W, 3) for a
        demosaicked RAW)."""
        import warnings

        from .io import PipelineWarning

        if frame.kind != "raw":
            return frame
        if self.gains is not None:
            return frame.replace(wb_gains=self.gains, wb_source="user")
        if self.mode == "none" or not self.enabled:
            return frame.replace(wb_gains=None, wb_source="none")
        if self.mode == "as_shot" and frame.wb_gains is not None:
            return frame
        if self.mode == "as_shot":
            warnings.warn(
                f"{frame.source}: {_no_white_balance(frame)}; using gray world", PipelineWarning, stacklevel=2
            )
        return frame.replace(wb_gains=gray_world_gains(mosaic, frame.cfa_pattern), wb_source="gray_world")

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """Camera RGB times the highlight-safe ``frame.wb_gains``, clipped to [0, 1] with ``clip``."""
        if frame.kind != "raw" or frame.wb_gains is None:
            return image
        out = image * np.asarray(highlight_safe_gains(frame.wb_gains), dtype=np.float32)
        return np.clip(out, 0.0, 1.0, out=out) if self.clip else out


def _no_white_balance(frame: Frame) -> str:
    """What lacks the gains: the RAW file, or a headerless dump's description (named as the colour warning names it)."""
    desc = frame.description
    if desc is None:
        return "no white balance in the file"
    shown = desc.name if desc.parent == frame.source.parent else str(desc)
    return f"no white balance (wb_gains_rgb) in {shown}"


@dataclass
class UnsharpMask(StageBase):
    """Classical baseline: ``x + amount * (x - GaussianBlur(x, sigma))``, on linear RGB.

    Detail smaller than ``threshold`` (linear units) is left alone so flat noise is not amplified.
    """

    name: ClassVar[str] = "unsharp"
    amount: float = 0.6
    sigma: float = 1.2
    threshold: float = 0.0

    def __post_init__(self) -> None:
        for key in ("sigma", "amount", "threshold"):
            check_number(getattr(self, key), f"unsharp.{key}")
        if not (0 < self.sigma <= 100 and 0 <= self.amount < math.inf and 0 <= self.threshold < math.inf):
            raise ValueError(f"unsharp needs 0 < sigma <= 100, finite amount >= 0 and threshold >= 0; got {self}")

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """The sharpened image (not clipped)."""
        detail = image - cv2.GaussianBlur(image, (0, 0), self.sigma, borderType=cv2.BORDER_REFLECT)
        if self.threshold > 0:
            detail[np.abs(detail) < self.threshold] = 0.0
        return image + np.float32(self.amount) * detail


@dataclass
class ColorCorrect(StageBase):
    """White-balanced camera RGB -> linear sRGB with ``frame.cam_to_srgb`` (identity when absent)."""

    name: ClassVar[str] = "color"

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """Each pixel multiplied by the 3x3 ``frame.ccm``; unchanged without a matrix; not clipped."""
        if frame.cam_to_srgb is None:
            return image
        return cv2.transform(np.ascontiguousarray(image), frame.ccm)  # per pixel: ccm @ rgb


@dataclass
class Tone(StageBase):
    """Linear sRGB -> sRGB-encoded [0, 1]: exposure (EV), clip, optional tone curve, sRGB transfer.

    ``curve="smoothstep"`` is the global S-curve 3x^2 - 2x^3 (Brooks et al., CVPR 2019). With the
    defaults (0 EV, no curve) it is the exact inverse of :class:`Linearize`.
    """

    name: ClassVar[str] = "tone"
    exposure_ev: float = 0.0
    curve: Literal["none", "smoothstep"] = "none"

    def __post_init__(self) -> None:
        if self.curve not in ("none", "smoothstep"):
            raise ValueError(f"tone.curve must be 'none' or 'smoothstep', got {self.curve!r}")
        check_number(self.exposure_ev, "tone.exposure_ev")
        if not -16 <= self.exposure_ev <= 16:  # NaN fails too
            raise ValueError(f"tone.exposure_ev must be between -16 and 16, got {self.exposure_ev!r}")

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """Linear sRGB -> sRGB-encoded in [0, 1] (see the class)."""
        x = image * np.float32(2.0**self.exposure_ev) if self.exposure_ev else image
        x = np.clip(x, 0.0, 1.0)
        if self.curve == "smoothstep":
            x = x * x * (3.0 - 2.0 * x)
        return linear_to_srgb(x)
