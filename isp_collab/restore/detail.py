"""After the network: which part of a restoration to keep (``luma`` or ``rgb``), per task.

A sharpening network's per-channel output can over/undershoot differently on R, G and B; once
white balance scales R and B by ~2 that becomes a colour fringe on thin edges (seen on the bundled
Blackmagic DNG). ``luma`` keeps only the luminance of the change, measured in white-balanced space.
Lens correction is per channel by nature (lateral chromatic aberration), so it keeps ``rgb``.
The export sidecar records the step (``postprocess``) so that runtimes can do the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Detail = Literal["luma", "rgb"]
DETAILS: tuple[str, ...] = ("luma", "rgb")

# Rec. 709 luma weights, applied to white-balanced camera RGB (close enough to linear sRGB for detail transfer).
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


#: The low-pass the ``keep_level`` step takes out of a sharpening change: ``KEEP_LEVEL_PASSES`` normalised box
#: filters of ``KEEP_LEVEL_BOX`` px, about a Gaussian of sigma sqrt(3 * (33**2 - 1) / 12) = 16.5 px.
KEEP_LEVEL_BOX = 33
KEEP_LEVEL_PASSES = 3


def default_detail(task: str | None) -> Detail:
    """``rgb`` for lens-correction tasks (``lens``, ``lens-a`` ...), ``luma`` for sharpening and anything else."""
    return "rgb" if str(task or "").startswith("lens") else "luma"


def transfer_luma_detail(before: np.ndarray, after: np.ndarray, wb_gains: Sequence[float] | None = None) -> np.ndarray:
    """Keep only the luminance part of a restoration: ``before + dY`` in white-balanced space.

    before, after: (H, W, 3) float32 linear camera RGB (before white balance); wb_gains: (R, G, B)
    gains or None (= 1, 1, 1). The change ``after - before`` is white-balanced, reduced to its luma
    ``dY`` and added equally to the three balanced channels, then un-balanced: sharpening then
    cannot tint edges.
    """
    g = np.asarray(wb_gains if wb_gains is not None else (1.0, 1.0, 1.0), dtype=np.float32)
    d_luma = ((after - before) * g) @ LUMA_WEIGHTS
    return np.ascontiguousarray(before + d_luma[..., None] / g, dtype=np.float32)


def keep_local_level(
    before: np.ndarray, after: np.ndarray, box: int = KEEP_LEVEL_BOX, passes: int = KEEP_LEVEL_PASSES
) -> np.ndarray:
    """Take the low frequencies out of a restoration's change: ``after - L(after - before)``.

    before, after: (H, W, 3) float32 linear RGB, any size (1 x 1 included). ``L`` is ``passes`` normalised
    ``box`` x ``box`` box filters (OpenCV ``blur``, reflect-101 borders, repeated reflection on images
    smaller than the box), close to a Gaussian of sigma 16.5 px. A sharpening network undoes blurs a few
    pixels wide, which keep an image's local mean (the kernel sums to 1); but the shipped networks lose
    4-11% of the level of dark textured areas (the bundled DNG's grass), darkening shadows and shifting
    their hue. This step keeps the local level the input had and costs the networks nothing: measured on
    10 validation photos (Gaussian blur sigma 1-4, white noise 0.5/255) it gains +0.02 to +0.05 dB per sigma.
    """
    import cv2

    if box < 1 or box % 2 == 0 or passes < 1:
        raise ValueError(f"keep_local_level: box must be odd and >= 1 and passes >= 1, got {box} and {passes}")
    change = np.ascontiguousarray(after - before, dtype=np.float32)
    low = np.empty_like(change)  # two full-size buffers in all, whatever the number of passes
    cv2.blur(change, (box, box), dst=low, borderType=cv2.BORDER_REFLECT_101)
    for _ in range(passes - 1):
        cv2.blur(low, (box, box), dst=change, borderType=cv2.BORDER_REFLECT_101)
        low, change = change, low
    return np.subtract(after, low, out=low, dtype=np.float32)


def postprocess_spec(task: str | None) -> dict[str, Any]:
    """The sidecar's ``postprocess`` entry: what ``isp-collab process`` does after stitching (sharpening models:
    ``detail`` ``luma``, ``keep_level``, then a numeric default ``strength``; lens models: ``detail`` ``rgb``,
    then ``keep_level``)."""
    if default_detail(task) == "rgb":
        return {
            "detail": "rgb",
            "description": "use the stitched network output as it is (per channel)",
            **_KEEP_LEVEL_SPEC,
        }
    return {
        "strength": 1.0,
        "strength_rule": "after the detail step: result = before + strength * (result - before); a tuning knob in "
        "[0, 2], 1 keeps the restoration as it is (`isp-collab process --strength`, `consume_onnx.py --strength`)",
        "detail": "luma",
        "luma_weights": [round(float(w), 6) for w in LUMA_WEIGHTS],  # as written, not float32 noise
        "description": "keep the luminance of the change only: with before / after as before_after says (H x W x 3 "
        "linear camera RGB) and g the frame's white-balance gains (R, G, B; 1, 1, 1 when unknown), "
        "d = ((after - before) * g) @ luma_weights; result = before + d[..., None] / g (only the ratios of g "
        "matter: gains normalised to min 1, as a DNG's, give the same result as to G = 1)",
        **_KEEP_LEVEL_SPEC,
    }


_KEEP_LEVEL_SPEC = {
    "keep_level": {"box": KEEP_LEVEL_BOX, "passes": KEEP_LEVEL_PASSES},
    "keep_level_rule": "after the detail step (and before the strength, where there is one): "
    "result = result - L(result - before) (before as before_after says: the frame given to pre-processing), L "
    "being `passes` normalised box x box box filters (mean over the box centred on each pixel, borders "
    "reflected without repeating the edge pixel, i.e. OpenCV's BORDER_REFLECT_101, reflected again where the "
    "image is smaller than the box), each channel alone: the change keeps no local mean. Accumulate the box sums "
    "in float64 (or sum the box's taps directly): float32 running sums drift by about 2e-5 per pass on a 4032-px row",
}
