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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import cv2
import numpy as np

from .frame import Frame, site_colour

LENS_MODEL = "lens-a-unet-tx-n4"


class Stage(Protocol):
    """What the pipeline needs of a stage (user stages only have to match this)."""

    enabled: bool

    def __call__(self, image: np.ndarray, frame: Frame) -> np.ndarray: ...


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is (H, W, 3) float32."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.float32:
        what = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) float32 image, got a {what}")


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear (IEC 61966-2-1 piecewise curve); any shape, float32 out.

    Written with in-place OpenCV ``pow``: on a 9-MP frame the temporaries of the NumPy one-liner
    cost more than the arithmetic.
    """
    y = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    low = y <= 0.04045
    low_values = y[low] * np.float32(1 / 12.92)
    y += np.float32(0.055)
    y *= np.float32(1 / 1.055)
    cv2.pow(y, 2.4, dst=y)
    y[low] = low_values
    return y


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded (inverse of :func:`srgb_to_linear`); clips to [0, 1] first."""
    y = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    low = y <= 0.0031308
    low_values = y[low] * np.float32(12.92)
    cv2.pow(y, 1 / 2.4, dst=y)
    y *= np.float32(1.055)
    y -= np.float32(0.055)
    y[low] = low_values
    return y


@dataclass
class StageBase:
    """``__call__`` checks the image and returns it untouched when ``enabled`` is false."""

    name: ClassVar[str] = "stage"
    enabled: bool = True

    def __call__(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        if not self.enabled:
            return image
        check_image(image)
        return self.apply(image, frame)

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        raise NotImplementedError


@dataclass
class Linearize(StageBase):
    """Ordinary images: sRGB-encoded [0, 1] -> linear sRGB. RAW frames (already linear) pass through."""

    name: ClassVar[str] = "linearize"

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        return image if frame.kind == "raw" else srgb_to_linear(image)


def gray_world_gains(mosaic: np.ndarray, pattern: str) -> tuple[float, float, float]:
    """(R, G, B) gains that make the mean of each channel equal to green's (gray-world assumption).

    mosaic: (H, W) float32 normalised to [0, 1]; nearly saturated samples (>= 0.98) are ignored.
    """
    colour = site_colour(pattern)  # type: ignore[arg-type]
    sums, counts = np.zeros(3), np.zeros(3)
    for i in range(2):
        for j in range(2):
            s = mosaic[i::2, j::2]
            s = s[s < 0.98]
            sums[colour[i, j]] += float(s.sum())
            counts[colour[i, j]] += s.size
    means = sums / np.maximum(counts, 1)
    if np.any(means <= 1e-6):
        return (1.0, 1.0, 1.0)
    return (float(means[1] / means[0]), 1.0, float(means[1] / means[2]))


@dataclass
class WhiteBalance(StageBase):
    """Multiply camera RGB by ``frame.wb_gains`` and clip to [0, 1] (sensor saturation stays white).

    ``mode`` says where the gains come from (see :meth:`resolve`, run by the pipeline before
    demosaicking): ``"as_shot"`` (the file's; gray world when it has none), ``"gray_world"``,
    ``"none"`` (unit gains), or explicit ``gains`` (R, G, B) that override the mode.
    Ordinary sRGB images are already balanced: the stage passes them through.
    """

    name: ClassVar[str] = "white_balance"
    mode: Literal["as_shot", "gray_world", "none"] = "as_shot"
    gains: tuple[float, float, float] | None = None
    clip: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("as_shot", "gray_world", "none"):
            raise ValueError(f"white_balance.mode must be 'as_shot', 'gray_world' or 'none', got {self.mode!r}")
        if self.gains is not None:
            if len(self.gains) != 3 or min(self.gains) <= 0:
                raise ValueError(f"white_balance.gains must be 3 positive numbers, got {self.gains!r}")
            self.gains = tuple(float(g) for g in self.gains)  # type: ignore[assignment]

    def resolve(self, frame: Frame, mosaic: np.ndarray) -> Frame:
        """The frame with the gains this stage will apply (mosaic: (H, W) normalised to [0, 1])."""
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
                f"{frame.source}: no white balance in the file; using gray world", PipelineWarning, stacklevel=2
            )
        return frame.replace(wb_gains=gray_world_gains(mosaic, frame.cfa_pattern), wb_source="gray_world")

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        if frame.kind != "raw" or frame.wb_gains is None:
            return image
        out = image * np.asarray(frame.wb_gains, dtype=np.float32)
        return np.clip(out, 0.0, 1.0, out=out) if self.clip else out


@dataclass
class CollaborativeStage(StageBase):
    """A collaborative network run over the whole image with :func:`isp_collab.restore.restore`.

    model: a shipped model name or a model folder; n: stack size (None = the model's trained N,
    or the ONNX file's static N); tile/overlap: restore tiling in pixels (tile None = the ONNX
    file's static tile, else 256; overlap None = restore's 32, at most tile / 4); backend: ``"torch"`` or ``"onnx"`` (needs ``onnx_path``, an
    exported model); device: torch device (None = best available). The backend is built once and
    reused for every image of a batch.
    """

    strategy: ClassVar[str] = "spread"
    model: str = ""
    n: int | None = None
    tile: int | None = None
    overlap: int | None = None
    backend: Literal["torch", "onnx"] = "torch"
    onnx_path: str | None = None
    device: str | None = None
    _runner: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.backend not in ("torch", "onnx"):
            raise ValueError(f"{self.name}.backend must be 'torch' or 'onnx', got {self.backend!r}")
        if self.n is not None and self.n < 1:
            raise ValueError(f"{self.name}.n must be >= 1, got {self.n}")
        self.model = os.fspath(self.model)

    def network(self) -> Any:
        """The :class:`~isp_collab.restore.Backend` running the model (built on first use)."""
        if self._runner is None:
            from ..restore import OnnxBackend, TorchBackend

            if self.backend == "onnx":
                if not self.onnx_path:
                    raise ValueError(f"{self.name}: backend 'onnx' needs onnx_path (an exported .onnx file)")
                self._runner = OnnxBackend(self.onnx_path)
            else:
                from ..models import load_model

                self._runner = TorchBackend(load_model(self.model), self.device)
        return self._runner

    def restore_kwargs(self, frame: Frame) -> dict[str, Any]:
        kw: dict[str, Any] = dict(n=self.n, strategy=self.strategy, tile=self.tile)
        if self.overlap is not None:
            kw["overlap"] = self.overlap
        elif self.tile is not None:
            kw["overlap"] = min(32, self.tile // 4)  # restore's default 32 only fits tiles >= 64
        return kw

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        from ..restore import restore

        out = restore(image, self.network(), **self.restore_kwargs(frame))
        return np.ascontiguousarray(out, dtype=np.float32)


# Rec. 709 luma weights, applied to white-balanced camera RGB (close enough to linear sRGB for detail transfer).
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def transfer_luma_detail(before: np.ndarray, after: np.ndarray, wb_gains: Any = None) -> np.ndarray:
    """Keep only the luminance part of a restoration: ``before + dY`` in white-balanced space.

    before, after: (H, W, 3) float32 linear camera RGB (before white balance); wb_gains: (R, G, B)
    gains or None. The change ``after - before`` is white-balanced, reduced to its luma ``dY`` and
    added equally to the three balanced channels, then un-balanced: sharpening then cannot tint
    edges (a per-channel over/undershoot becomes a colour fringe once white balance amplifies R, B).
    """
    g = np.asarray(wb_gains if wb_gains is not None else (1.0, 1.0, 1.0), dtype=np.float32)
    d_luma = ((after - before) * g) @ LUMA_WEIGHTS
    return np.ascontiguousarray(before + d_luma[..., None] / g, dtype=np.float32)


@dataclass
class Sharpen(CollaborativeStage):
    """Blind sharpening with a collaborative network; ``spread`` stacks (tiles far apart share one blur).

    detail: ``"luma"`` (default) keeps the network's luminance change only (see
    :func:`transfer_luma_detail`) — on the real Blackmagic DNG the shipped models' per-channel output
    put green/magenta fringes on thin dark branches once white balance scaled R and B by ~2;
    ``"rgb"`` keeps the network's three channels as they are.
    """

    name: ClassVar[str] = "sharpen"
    strategy: ClassVar[str] = "spread"
    model: str = "sharpen-unet-tx-n4"
    detail: Literal["luma", "rgb"] = "luma"

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        if self.detail not in ("luma", "rgb"):
            raise ValueError(f"sharpen.detail must be 'luma' or 'rgb', got {self.detail!r}")
        out = super().apply(image, frame)
        return out if self.detail == "rgb" else transfer_luma_detail(image, out, frame.wb_gains)


@dataclass
class LensCorrect(CollaborativeStage):
    """Lens-aberration correction; ``mirror`` stacks about the optical centre (``center`` (x, y) or the frame's)."""

    name: ClassVar[str] = "lens"
    strategy: ClassVar[str] = "mirror"
    model: str = LENS_MODEL
    center: tuple[float, float] | None = None

    def restore_kwargs(self, frame: Frame) -> dict[str, Any]:
        kw = super().restore_kwargs(frame)
        kw["center"] = tuple(self.center) if self.center is not None else frame.center
        return kw


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
        if self.sigma <= 0 or self.amount < 0 or self.threshold < 0:
            raise ValueError(f"unsharp needs sigma > 0, amount >= 0, threshold >= 0; got {self}")

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        detail = image - cv2.GaussianBlur(image, (0, 0), self.sigma, borderType=cv2.BORDER_REFLECT)
        if self.threshold > 0:
            detail[np.abs(detail) < self.threshold] = 0.0
        return image + np.float32(self.amount) * detail


@dataclass
class ColorCorrect(StageBase):
    """White-balanced camera RGB -> linear sRGB with ``frame.cam_to_srgb`` (identity when absent)."""

    name: ClassVar[str] = "color"

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
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

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        x = image * np.float32(2.0**self.exposure_ev) if self.exposure_ev else image
        x = np.clip(x, 0.0, 1.0)
        if self.curve == "smoothstep":
            x = x * x * (3.0 - 2.0 * x)
        return linear_to_srgb(x)
