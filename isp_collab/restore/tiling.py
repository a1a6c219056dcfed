"""Tile grid, tile extraction with reflect padding, and seamless window-blended stitching.

Images here are ``H x W x 3`` float32 numpy arrays in linear RGB (any range; nothing is clipped).
A tile is a ``T x T`` square at integer position ``(y0, x0)`` that may stick out of the image: the
missing pixels are filled by reflect padding (``reflect-101``: ``dcb|abcd|cba``) so the network
sees plausible context at the borders instead of the zeros its convolutions would pad with.

The grid is the tensor product of two 1-D layouts (rows x columns). Every 1-D layout is
mirror-symmetric about a centre (default: the image centre), which the ``mirror`` gathering needs. Elsewhere
(``symmetric=False``) the centre may move half a pixel where that saves a tile: an odd length can only take the
layout with a seam at its centre, one tile more than the other for about half of them (a 999x999 image: 64
192-px tiles against 49); even lengths never gain, so their grid is the same either way. Blending multiplies each restored tile by a separable window (flat
in the middle, a Hann taper over the overlap) and divides by the accumulated window weight, so
any window and any uneven overlap gives the input back: an identity network returns it to float32
rounding (a few ulp; up to 1.8e-7 measured on [0, 1] images, 4e-8 on average where not exact).

Numpy only (no torch): an ONNX-only consumer can use this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..limits import MAX_N  # noqa: F401 (re-exported: the tools' cap on N)

DEFAULT_OVERLAP = 32  # pixels between neighbouring tiles (tiles of 128 px and more; restore's default tile: 160-256)


def default_overlap(tile: int) -> int:
    """The overlap every tool uses when none is given: 32 px, at most a quarter of the tile.

    One rule for ``restore``, ``process``, ``gather`` and the export sidecar, so they lay out the
    same grid for the same tile.
    """
    return min(DEFAULT_OVERLAP, max(0, int(tile)) // 4)


def hann_taper_window(tile: int, overlap: int) -> np.ndarray:
    """1-D blending window of length ``tile``: 1 in the middle, a Hann taper over ``overlap`` at each end.

    The taper samples are ``sin^2(pi (k + 1/2) / (2 overlap))``, strictly positive (so a pixel
    covered only by a tile's edge still has weight) and such that the falling taper of one tile
    plus the rising taper of the next sums to exactly 1 when they overlap by ``overlap`` pixels.
    Returns float64 ``(tile,)`` in (0, 1].
    """
    w = np.ones(tile, dtype=np.float64)
    o = min(overlap, tile // 2)  # a taper longer than half the tile would cross the other one
    if o > 0:  # (make_grid keeps overlap <= tile // 2 anyway)
        ramp = np.sin(np.pi * (np.arange(o) + 0.5) / (2 * o)) ** 2
        w[:o] = ramp
        w[tile - o :] = ramp[::-1]
    return w


def _axis_starts(length: int, tile: int, overlap: int, center2: int) -> list[int]:
    """Tile start positions along one axis, symmetric about the centre ``center2 / 2`` (pixel-index units).

    ``center2`` is twice the centre so that half-pixel centres stay integers. The mirror of the tile
    ``[s, s + tile)`` about c is ``[2c - s - tile + 1, 2c - s + 1)``. Two symmetric layouts exist:
    a self-mirror tile centred on c (only when ``2c - tile + 1`` is even), or a seam at c: two
    mirror tiles overlapping by ``overlap`` or ``overlap + 1`` pixels (the +1 when parity forces it).
    Outwards the stride is ``tile - overlap``, and tiles are added until the image plus a margin of
    ``overlap // 2`` is covered on each side (the margin keeps image borders away from tile edges,
    where a network is least reliable). The layout with fewer tiles wins; a tie goes to the seam
    layout, which has no self-mirror tiles and hence no wasted duplicates in ``mirror`` stacks.
    """
    stride = tile - overlap
    margin = overlap // 2
    lo, hi = -margin, length - 1 + margin  # pixel range each side must reach (inclusive)

    def layout(first_right: int) -> list[int]:
        starts = {first_right}
        s = first_right
        while s + tile - 1 < hi:  # right side
            s += stride
            starts.add(s)
        s = first_right
        while True:  # left side: mirrors of the right lattice, continued as far as needed
            m = center2 - s - tile + 1
            starts.add(m)
            if m <= lo:
                break
            s += stride
        # drop tiles that miss the image entirely (tiny images, centres near a border)
        return sorted(s for s in starts if s + tile > 0 and s < length)

    seam = layout((center2 + 1 - overlap) // 2)
    if (center2 - tile + 1) % 2 == 0:
        centred = layout((center2 - tile + 1) // 2)
        if len(centred) < len(seam):
            return centred
    return seam


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one image are.

    ``ys`` / ``xs``: sorted start rows / columns (may be negative or run past the border: reflect
    padding fills those pixels). Tile ``i`` is at ``(ys[i // len(xs)], xs[i % len(xs)])`` (row-major).
    ``center``: (x, y) in pixel-index coordinates (pixel (0, 0) is centred at (0, 0)) about which the
    grid is mirror-symmetric, rounded to half pixels.
    """

    height: int
    width: int
    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    center: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of tiles."""
        return len(self.ys), len(self.xs)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def position(self, index: int) -> tuple[int, int]:
        """(y0, x0) of tile ``index`` (row-major)."""
        r, c = divmod(index, len(self.xs))
        return self.ys[r], self.xs[c]

    def positions(self) -> np.ndarray:
        """(len, 2) int array of (y0, x0), row-major."""
        yy, xx = np.meshgrid(np.asarray(self.ys), np.asarray(self.xs), indexing="ij")
        return np.stack([yy.ravel(), xx.ravel()], axis=1)

    def index_of(self, y0: int, x0: int) -> int | None:
        """Tile index at start (y0, x0), or None if the grid has no tile there."""
        try:
            return self.ys.index(y0) * len(self.xs) + self.xs.index(x0)
        except ValueError:
            return None


def make_grid(
    height: int,
    width: int,
    tile: int = 256,
    overlap: int = 32,
    center: tuple[float, float] | None = None,
    symmetric: bool = True,
) -> TileGrid:
    """Tile grid covering an ``height x width`` image with ``tile x tile`` tiles overlapping by ``overlap``.

    ``center`` (x, y) in pixel-index coordinates (default: the image centre ``((W-1)/2, (H-1)/2)``),
    rounded to the nearest half pixel; the grid is mirror-symmetric about it (``symmetric``, what ``mirror``
    stacks need), or about a centre up to half a pixel away where that takes fewer tiles (``symmetric=False``: the
    other gatherings). Raises ValueError for an empty image, ``tile < 1``, ``overlap`` outside ``[0, tile // 2]``
    or a centre outside the image.
    """
    for key, value in (("height", height), ("width", width), ("tile", tile), ("overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{key} must be an integer, got {value!r}")
    if height < 1 or width < 1:
        raise ValueError(f"image must be at least 1x1, got {height}x{width}")
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    if not 0 <= overlap <= tile // 2:
        # more overlap would put a pixel under more than 3 tiles per axis: 9x or more the compute,
        # and float32 accumulation error grows with the count
        raise ValueError(f"overlap must be in [0, tile // 2 = {tile // 2}], got {overlap}")
    if center is None:
        cx2, cy2 = width - 1, height - 1
    else:
        cx, cy = float(center[0]), float(center[1])
        if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
            raise ValueError(f"centre ({cx:g}, {cy:g}) (x, y) is outside the {height}x{width} (H x W) image")
        cx2, cy2 = round(2 * cx), round(2 * cy)
    shifts = (0,) if symmetric else (0, -1, 1)  # the first of the fewest tiles: the centre itself on a tie
    ys, cy2 = min(((_axis_starts(height, tile, overlap, cy2 + d), cy2 + d) for d in shifts), key=lambda s: len(s[0]))
    xs, cx2 = min(((_axis_starts(width, tile, overlap, cx2 + d), cx2 + d) for d in shifts), key=lambda s: len(s[0]))
    return TileGrid(height, width, tile, overlap, tuple(ys), tuple(xs), (cx2 / 2, cy2 / 2))


def reflect_index(idx: np.ndarray, length: int) -> np.ndarray:
    """Map any integer indices into ``[0, length)`` by reflect-101 padding (``dcb|abcd|cba``), periodic.

    Works for offsets larger than the image (tiles bigger than tiny images); length 1 maps to 0.
    """
    if length == 1:
        return np.zeros_like(idx)
    period = 2 * (length - 1)
    i = np.mod(idx, period)
    return np.where(i >= length, period - i, i)


def tile_view(image: np.ndarray, y0: int, x0: int, tile: int) -> np.ndarray:
    """The ``tile x tile`` patch of ``image`` (H x W x C) at (y0, x0) as ``(C, tile, tile)``, reflect-padded
    where it leaves the image: a strided view of ``image`` when it lies inside (most tiles), else a copy."""
    h, w = image.shape[:2]
    if y0 >= 0 and x0 >= 0 and y0 + tile <= h and x0 + tile <= w:
        patch = image[y0 : y0 + tile, x0 : x0 + tile]
    else:
        rows = reflect_index(np.arange(y0, y0 + tile), h)
        cols = reflect_index(np.arange(x0, x0 + tile), w)
        patch = image[np.ix_(rows, cols)]
    return patch.transpose(2, 0, 1)


def extract_tile(image: np.ndarray, y0: int, x0: int, tile: int, out: np.ndarray | None = None) -> np.ndarray:
    """The ``tile x tile`` patch of ``image`` (H x W x C) at (y0, x0), reflect-padded where it leaves the image.

    Returns (or writes into ``out``) a contiguous ``(C, tile, tile)`` array: channels first, as networks take it.
    """
    patch = tile_view(image, y0, x0, tile)
    if out is None:
        return np.ascontiguousarray(patch)
    out[...] = patch
    return out


class Stitcher:
    """Accumulates restored tiles into a whole image with window blending.

    ``add(index, tile)`` takes a ``(3, T, T)`` restored tile (same orientation and colour space as
    extracted); ``finish()`` divides by the accumulated window weight and returns ``H x W x 3`` float32.
    The weight is separable because the grid is a tensor product and the window is separable:
    sum_ij wy_i(y) wx_j(x) = (sum_i wy_i(y)) (sum_j wx_j(x)), so no H x W weight image is stored
    (that saves 4 bytes per pixel: 96 MB at 24 MP). ``counts`` records how often each tile was added;
    ``finish`` refuses unless every tile was added exactly once.
    """

    def __init__(self, grid: TileGrid, channels: int = 3) -> None:
        self.grid = grid
        self.window = hann_taper_window(grid.tile, grid.overlap)
        self.acc = np.zeros((grid.height, grid.width, channels), dtype=np.float32)
        self.counts = np.zeros(len(grid), dtype=np.int64)
        self._win2d = np.outer(self.window, self.window).astype(np.float32)

    def _axis_weight(self, starts: tuple[int, ...], length: int) -> np.ndarray:
        acc = np.zeros(length, dtype=np.float64)
        t = self.grid.tile
        for s in starts:
            a, b = max(s, 0), min(s + t, length)
            acc[a:b] += self.window[a - s : b - s]
        return acc

    def weights(self) -> np.ndarray:
        """The accumulated window weight per pixel, ``H x W`` float64 (> 0 everywhere when covered)."""
        g = self.grid
        return np.outer(self._axis_weight(g.ys, g.height), self._axis_weight(g.xs, g.width))

    def add(self, index: int, tile: np.ndarray) -> None:
        """Blend restored tile ``index`` (``(C, T, T)``) into the accumulator."""
        g = self.grid
        y0, x0 = g.position(index)
        t = g.tile
        ya, yb = max(y0, 0), min(y0 + t, g.height)
        xa, xb = max(x0, 0), min(x0 + t, g.width)
        # weight in the tile's (C, T, T) layout, then one contiguous H x W x C copy to add: 2x faster
        # than weighting a channels-last view (the same products and sums, so the same result)
        part = tile[:, ya - y0 : yb - y0, xa - x0 : xb - x0] * self._win2d[ya - y0 : yb - y0, xa - x0 : xb - x0]
        self.acc[ya:yb, xa:xb] += np.ascontiguousarray(part.transpose(1, 2, 0))
        self.counts[index] += 1

    def finish(self) -> np.ndarray:
        """Normalise by the accumulated weights (in place) and return the ``H x W x C`` float32 image."""
        if not np.all(self.counts == 1):
            bad = np.flatnonzero(self.counts != 1)
            raise RuntimeError(f"tiles must be added exactly once; tile {bad[0]} was added {self.counts[bad[0]]} times")
        g = self.grid
        wy = self._axis_weight(g.ys, g.height)
        wx = self._axis_weight(g.xs, g.width)
        # row by row: avoids an H x W temporary for the weight image; one rounding of the weight
        for y in range(g.height):
            self.acc[y] /= (wx * wy[y]).astype(np.float32)[:, None]
        return self.acc
