"""Before/after comparison: the same crop of an image without and with the restoration stages, side by side."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def detail_window(image: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(y, x, h, w) of the ``size`` x ``size`` window with the most detail (mean gradient energy).

    image: (H, W, 3) float32 linear RGB. Searched on a downscaled copy so it costs milliseconds
    on a 50-MP frame; windows smaller than the image are clamped to it.
    """
    h, w = image.shape[:2]
    ch, cw = min(size, h), min(size, w)
    f = max(1, max(h, w) // 512)
    small = cv2.resize(image[..., 1], (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    small = np.sqrt(np.clip(small, 0, 1))  # perceptual-ish: detail in shadows counts too
    energy = np.abs(cv2.Sobel(small, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(small, cv2.CV_32F, 0, 1))
    kh, kw = max(1, ch // f), max(1, cw // f)
    score = cv2.boxFilter(energy, -1, (kw, kh), normalize=True, borderType=cv2.BORDER_CONSTANT)
    # Only centres whose window lies inside the image; index (i, j) of ``valid`` = window top-left.
    sh, sw = score.shape
    valid = score[kh // 2 : sh - kh + kh // 2 + 1, kw // 2 : sw - kw + kw // 2 + 1]
    iy, ix = np.unravel_index(int(np.argmax(valid)), valid.shape)
    y = int(np.clip(iy * f, 0, h - ch))
    x = int(np.clip(ix * f, 0, w - cw))
    return y, x, ch, cw


def side_by_side(
    before: np.ndarray,
    after: np.ndarray,
    finish: Callable[[np.ndarray], np.ndarray],
    size: int = 512,
    labels: tuple[str, str] = ("before", "after"),
) -> np.ndarray:
    """(h, 2w + gap, 3) float32 sRGB-encoded: the most detailed ``size`` crop of ``before`` | ``after``.

    before, after: (H, W, 3) float32 linear RGB at the same place in the pipeline (just before and
    just after the restoration stages); finish: the rest of the pipeline (colour, tone, orientation)
    applied to each crop.
    """
    if before.shape != after.shape:
        raise ValueError(f"before and after differ in shape: {before.shape} vs {after.shape}")
    y, x, h, w = detail_window(before, size)
    a = finish(np.ascontiguousarray(before[y : y + h, x : x + w]))
    b = finish(np.ascontiguousarray(after[y : y + h, x : x + w]))
    gap = np.ones((a.shape[0], 8, 3), dtype=np.float32)
    out = np.concatenate([a, gap, b], axis=1)
    scale = max(0.4, a.shape[1] / 512)
    # OpenCV draws text on 8-bit images only: draw masks, then blend a dark outline and a white fill.
    outline = np.zeros(out.shape[:2], dtype=np.uint8)
    fill = np.zeros(out.shape[:2], dtype=np.uint8)
    for text, x0 in zip(labels, (6, a.shape[1] + 8 + 6), strict=True):
        org, font, fs = (int(x0), int(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale
        cv2.putText(outline, text, org, font, fs, 255, max(2, int(4 * scale)), cv2.LINE_AA)
        cv2.putText(fill, text, org, font, fs, 255, max(1, int(1.5 * scale)), cv2.LINE_AA)
    out *= 1.0 - outline[..., None].astype(np.float32) / 255
    out += fill[..., None].astype(np.float32) / 255 * (1.0 - out)
    return out
