"""After the network: which part of a restoration to keep (``luma`` or ``rgb``), per task.

A sharpening network's per-channel output can over/undershoot differently on R, G and B; once
white balance scales R and B by ~2 that becomes a colour fringe on thin edges (seen on the bundled
Blackmagic DNG). ``luma`` keeps only the luminance of the change, measured in white-balanced space.
Lens correction is per channel by nature (lateral chromatic aberration), so it keeps ``rgb``.
The export sidecar records the step (``postprocess``) so that runtimes can do the same.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Detail = Literal["luma", "rgb"]
DETAILS: tuple[str, ...] = ("luma", "rgb")

# Rec. 709 luma weights, applied to white-balanced camera RGB (close enough to linear sRGB for detail transfer).
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def default_detail(task: str | None) -> Detail:
    """``rgb`` for lens-correction tasks (``lens``, ``lens-a`` ...), ``luma`` for sharpening and anything else."""
    return "rgb" if str(task or "").startswith("lens") else "luma"


def transfer_luma_detail(before: np.ndarray, after: np.ndarray, wb_gains: Any = None) -> np.ndarray:
    """Keep only the luminance part of a restoration: ``before + dY`` in white-balanced space.

    before, after: (H, W, 3) float32 linear camera RGB (before white balance); wb_gains: (R, G, B)
    gains or None (= 1, 1, 1). The change ``after - before`` is white-balanced, reduced to its luma
    ``dY`` and added equally to the three balanced channels, then un-balanced: sharpening then
    cannot tint edges.
    """
    g = np.asarray(wb_gains if wb_gains is not None else (1.0, 1.0, 1.0), dtype=np.float32)
    d_luma = ((after - before) * g) @ LUMA_WEIGHTS
    return np.ascontiguousarray(before + d_luma[..., None] / g, dtype=np.float32)


def postprocess_spec(task: str | None) -> dict[str, Any]:
    """The sidecar's ``postprocess`` entry: what ``isp-collab process`` does after stitching (sharpening models:
    ``detail`` ``luma``, then a numeric default ``strength``; lens models: ``detail`` ``rgb``, no strength)."""
    if default_detail(task) == "rgb":
        return {"detail": "rgb", "description": "use the stitched network output as it is (per channel)"}
    return {
        "strength": 1.0,
        "strength_rule": "after the detail step: result = before + strength * (result - before); a tuning knob in "
        "[0, 2], 1 keeps the restoration as it is (`isp-collab process --strength`, `consume_onnx.py --strength`)",
        "detail": "luma",
        "luma_weights": [round(float(w), 6) for w in LUMA_WEIGHTS],  # as written, not float32 noise
        "description": "keep the luminance of the change only: with before/after the stitched H x W x 3 linear "
        "camera RGB and g the frame's white-balance gains (R, G, B; 1, 1, 1 when unknown), "
        "d = ((after - before) * g) @ luma_weights; result = before + d[..., None] / g",
    }
