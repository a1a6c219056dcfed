"""Picture of a gathering: the tile grid over the image, each stack in its own colour and number.

So a user sees which regions of the frame collaborate. Numpy + OpenCV only (no torch).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from .gathering import Stack
from .tiling import TileGrid

_GOLDEN = 0.618033988749895


def stack_colour(k: int) -> tuple[int, int, int]:
    """A saturated RGB colour for stack ``k``; consecutive stacks get far-apart hues (golden-ratio steps)."""
    r, g, b = colorsys.hsv_to_rgb((k * _GOLDEN) % 1.0, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def to_display(image: np.ndarray) -> np.ndarray:
    """uint8 RGB for drawing: uint8 is taken as display-ready sRGB, uint16 scaled down, float as linear RGB
    (clipped to [0, 1] and sRGB-encoded)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.copy()
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    x = np.clip(image.astype(np.float32), 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)


def _cells(starts: tuple[int, ...], tile: int, length: int) -> list[tuple[int, int]]:
    """Per tile, the part of the axis it dominates: cut at the middle of each overlap; clipped to the image."""
    cuts = [0] + [(starts[i + 1] + starts[i] + tile) // 2 for i in range(len(starts) - 1)] + [length]
    return [(max(0, min(a, length)), max(0, min(b, length))) for a, b in pairwise(cuts)]


@dataclass(frozen=True)
class Label:
    """A stack number to write in a tile's cell: ``text``, the cell ``box`` (x0, y0, x1, y1; x1, y1
    exclusive) and the stack's ``colour`` (RGB)."""

    text: str
    box: tuple[int, int, int, int]
    colour: tuple[int, int, int]


def gathering_labels(grid: TileGrid, stacks: list[Stack]) -> list[Label]:
    """One :class:`Label` per tile, in the stack that restores it (its kept copy): the stack index, with
    ``'`` marks for the axes the tile is flipped along before the network; cells as :func:`draw_gathering`
    tints them (empty cells left out)."""
    rows = _cells(grid.ys, grid.tile, grid.height)
    cols = _cells(grid.xs, grid.tile, grid.width)
    ncols = len(grid.xs)
    labels = []
    for k, stack in enumerate(stacks):
        for idx, (fx, fy), keep in zip(stack.tiles, stack.flips, stack.keep, strict=True):
            (y0, y1), (x0, x1) = rows[idx // ncols], cols[idx % ncols]
            if keep and y1 > y0 and x1 > x0:  # each tile once, in the stack that restores it
                labels.append(Label(f"{k}" + "'" * (int(fx) + int(fy)), (x0, y0, x1, y1), stack_colour(k)))
    return labels


def line_width(height: int, width: int) -> int:
    """Outline thickness for a picture of this size (1 px per 500 px of its short side)."""
    return max(1, round(min(height, width) / 500))


def draw_labels(canvas: np.ndarray, labels: list[Label]) -> np.ndarray:
    """Write each label centred in its box on ``canvas`` (``H x W x 3`` uint8 RGB, in place; returned),
    in its colour with a black outline; a box too small for readable text is left bare."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = line_width(*canvas.shape[:2])
    for label in labels:
        x0, y0, x1, y1 = label.box
        (tw, th), _ = cv2.getTextSize(label.text, font, 1.0, 1)
        scale = min(0.6 * (x1 - x0) / max(tw, 1), 0.4 * (y1 - y0) / max(th, 1))
        if scale < 0.25:  # unreadable: the cell is too small for text
            continue
        weight = max(1, round(2 * scale))
        (tw, th), _ = cv2.getTextSize(label.text, font, scale, weight)
        org = ((x0 + x1 - tw) // 2, (y0 + y1 + th) // 2)
        cv2.putText(canvas, label.text, org, font, scale, (0, 0, 0), weight + 2 * thick, cv2.LINE_AA)  # outline
        cv2.putText(canvas, label.text, org, font, scale, label.colour, weight, cv2.LINE_AA)
    return canvas


def draw_gathering(
    image: np.ndarray,
    grid: TileGrid,
    stacks: list[Stack],
    *,
    numbers: bool = True,
    alpha: float = 0.35,
    show_center: bool = False,
) -> np.ndarray:
    """Draw the gathering over ``image`` and return ``H x W x 3`` uint8 RGB.

    image: ``H x W x 3`` (uint8 sRGB, uint16, or float linear RGB; see :func:`to_display`) of the
    grid's size. Each tile's cell (the area where it dominates the blend) is tinted with its
    stack's colour (``alpha``) and outlined; ``numbers`` writes the stack index in it, with ``'``
    marks for tiles flipped before the network (one per flipped axis; :func:`gathering_labels`).
    ``show_center`` draws the axes through the grid centre (the optical centre of the ``mirror``
    strategy). To show a picture turned (a RAW file's orientation), draw it with ``numbers=False``,
    turn it, then :func:`draw_labels` with the labels' boxes turned too: the text stays upright.
    """
    canvas = to_display(image)
    h, w = canvas.shape[:2]
    if (h, w) != (grid.height, grid.width):
        raise ValueError(f"image is {w}x{h} but the grid is for {grid.width}x{grid.height}")
    thick = line_width(h, w)
    labels = gathering_labels(grid, stacks)
    for label in labels:
        x0, y0, x1, y1 = label.box
        cell = canvas[y0:y1, x0:x1]
        cell[...] = np.round((1 - alpha) * cell + alpha * np.asarray(label.colour, np.float32)).astype(np.uint8)
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), label.colour, thick)
    if show_center:
        cx, cy = round(grid.center[0]), round(grid.center[1])
        cv2.line(canvas, (cx, 0), (cx, h - 1), (255, 255, 255), thick)
        cv2.line(canvas, (0, cy), (w - 1, cy), (255, 255, 255), thick)
    return draw_labels(canvas, labels) if numbers else canvas
