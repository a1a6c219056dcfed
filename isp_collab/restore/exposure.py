"""Bring a dark frame up to the exposure the networks were trained at before restoring it, and back after.

The networks learned on photos unprocessed to linear camera RGB at their usual exposure: the 99th percentile
of a frame's brightest channel is near 0.5 on the benchmark photos. On frames much darker than that they
restore less (noise-free, 4 stops down, worse than the blurry input: benchmarks/RESULTS.md, *exposure*).
Restoring ``image * g`` and dividing by ``g`` keeps the frame's own exposure while the network sees one it
knows. Frames at least as bright as ``target`` are left alone (g = 1), so usual exposures are unchanged.
"""

from __future__ import annotations

import numpy as np

#: 99th percentile of the brightest channel a frame is brought up to: half the training photos' median (0.49),
#: so frames within a stop of the usual exposure are untouched.
EXPOSURE_TARGET = 0.25
#: Largest gain (4 stops): darker frames are mostly noise, which a larger gain would only amplify.
MAX_GAIN = 16.0


def exposure_level(image: np.ndarray) -> float:
    """99th percentile of the brightest channel of an ``H x W x 3`` linear image (on a 1-in-16 subsample)."""
    sample = image[::4, ::4] if min(image.shape[:2]) >= 64 else image
    return float(np.percentile(sample.max(axis=2), 99))


def exposure_gain(image: np.ndarray, target: float = EXPOSURE_TARGET, max_gain: float = MAX_GAIN) -> float:
    """The gain in [1, ``max_gain``] that brings ``image``'s :func:`exposure_level` up to ``target``
    (1 for a frame at least that bright, or black, or ``target`` 0: off)."""
    level = exposure_level(image)
    if not target > 0 or not level > 0 or not np.isfinite(level):
        return 1.0
    return float(np.clip(target / level, 1.0, max_gain))
