"""The algorithm around an exported isp-collab network, numpy only: no I/O, no runtime, no isp_collab import.

``consume_onnx.py`` wraps it with file I/O and an ONNX Runtime session; a C++ port follows this file and
``export/README.md`` ("Whole image"). One frame, in the order a C++ loop runs it:

1. exposure: g = exposure_gain(frame, target, max_gain) from the sidecar's ``preprocess``; work on frame * g;
2. grid: per axis, axis_starts(length, T, overlap, c2) with c2 = twice the centre (W - 1 by default);
3. gather: gather_stacks(grid, N, strategy) -> stacks of exactly N members (tile index, flips, keep);
4. per stack: extract_tile (reflect-101, periodic) and flip_tile each member into a [1, N, 3, T, T] buffer,
   run the network, flip each output back and add each kept output times the 2-D window into an accumulator;
5. normalise: divide the accumulator by the window weight, separable: Wy(y) * Wx(x);
6. divide by g (steps 1-6: restore());
7. detail: ``luma`` keeps the luminance of the change only (transfer_luma_detail), ``rgb`` keeps it all;
8. keep_level (the sidecar's ``postprocess.keep_level``, box B, passes P): result - L(result - before),
   L = P normalised B x B box filters, reflect-101 borders repeated periodically (keep_local_level);
9. strength s: before + s * (result - before) (steps 7-9: postprocess()).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("spread", "local", "mirror")
DETAILS = ("luma", "rgb")
REC709_LUMA = (0.2126, 0.7152, 0.0722)


def exposure_gain(image: np.ndarray, target: float, max_gain: float) -> float:
    """clip(target / level, 1, max_gain), level = 99th percentile (linear interpolation) of max(R, G, B) over
    ``image[::4, ::4]`` (all pixels when a side is under 64); 1 when target <= 0 or level <= 0."""
    if not target > 0:
        return 1.0
    sample = image[::4, ::4] if min(image.shape[:2]) >= 64 else image
    level = float(np.percentile(sample.max(axis=2), 99))
    if not level > 0 or not np.isfinite(level):
        return 1.0
    return float(np.clip(target / level, 1.0, max_gain))


# --------------------------------------------------------------------------------------- tiling
def hann_taper_window(tile: int, overlap: int) -> np.ndarray:
    """(tile,) float64: 1 in the middle, ``sin^2(pi (k + 1/2) / (2 o))`` over o = min(overlap, tile // 2) at each end."""
    w = np.ones(tile, dtype=np.float64)
    o = min(overlap, tile // 2)
    if o > 0:
        ramp = np.sin(np.pi * (np.arange(o) + 0.5) / (2 * o)) ** 2
        w[:o] = ramp
        w[tile - o :] = ramp[::-1]
    return w


def axis_starts(length: int, tile: int, overlap: int, center2: int) -> list[int]:
    """Tile starts along one axis, symmetric about the centre ``center2 / 2`` (integers; // is floor division).

    The mirror of the tile starting at s starts at ``center2 - s - tile + 1``. A layout from its first tile
    right of the centre f: f + k (tile - overlap) for k = 0, 1, ... until a tile's last pixel reaches
    ``length - 1 + overlap // 2``, plus the mirrors of f, f + stride, ... until a mirror starts at or before
    ``-(overlap // 2)``; tiles touching no pixel are dropped. Seam layout: f = (center2 + 1 - overlap) // 2
    (the two centre tiles overlap by overlap, or overlap + 1 when center2 + 1 - overlap is odd). Centred
    layout (one tile on the centre): f = (center2 - tile + 1) / 2, only when center2 - tile + 1 is even, used only when
    it has strictly fewer tiles.
    """
    stride = tile - overlap
    lo, hi = -(overlap // 2), length - 1 + overlap // 2

    def layout(first_right: int) -> list[int]:
        starts, s = {first_right}, first_right
        while s + tile - 1 < hi:
            s += stride
            starts.add(s)
        s = first_right
        while True:
            m = center2 - s - tile + 1  # the mirror of the tile starting at s
            starts.add(m)
            if m <= lo:
                break
            s += stride
        return sorted(s for s in starts if s + tile > 0 and s < length)

    seam = layout((center2 + 1 - overlap) // 2)
    if (center2 - tile + 1) % 2 == 0:
        centred = layout((center2 - tile + 1) // 2)
        if len(centred) < len(seam):
            return centred
    return seam


@dataclass(frozen=True)
class Grid:
    """Tile starts ``ys`` x ``xs`` (tile i at ``(ys[i // len(xs)], xs[i % len(xs)])``), centre (x, y)."""

    height: int
    width: int
    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    center: tuple[float, float]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def position(self, index: int) -> tuple[int, int]:
        r, c = divmod(index, len(self.xs))
        return self.ys[r], self.xs[c]

    def index_of(self, y0: int, x0: int) -> int | None:
        if y0 in self.ys and x0 in self.xs:
            return self.ys.index(y0) * len(self.xs) + self.xs.index(x0)
        return None


def make_grid(
    height: int, width: int, tile: int, overlap: int, center: tuple[float, float] | None = None, symmetric: bool = True
) -> Grid:
    """The grid of an ``height x width`` image; ``center`` (x, y) in pixels, default the image centre;
    doubled and rounded half to even: c2 = round(2 x). ``symmetric=False`` (every gathering but ``mirror``): per
    axis, of the centres c2, c2 - 1, c2 + 1 the first whose layout has the fewest tiles."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile={tile}), got {overlap}")
    if center is None:
        cx2, cy2 = width - 1, height - 1
    else:
        cx, cy = float(center[0]), float(center[1])
        if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
            raise ValueError(f"centre ({cx:g}, {cy:g}) (x, y) is outside the {height}x{width} (H x W) image")
        cx2, cy2 = round(2 * cx), round(2 * cy)
    shifts = (0,) if symmetric else (0, -1, 1)
    ys, cy2 = min(((axis_starts(height, tile, overlap, cy2 + d), cy2 + d) for d in shifts), key=lambda s: len(s[0]))
    xs, cx2 = min(((axis_starts(width, tile, overlap, cx2 + d), cx2 + d) for d in shifts), key=lambda s: len(s[0]))
    return Grid(height, width, tile, overlap, tuple(ys), tuple(xs), (cx2 / 2, cy2 / 2))


def reflect_index(idx: np.ndarray, length: int) -> np.ndarray:
    """Indices folded into [0, length) by reflect-101 (``dcb|abcd|cba``), periodic with period 2 (length - 1)."""
    if length == 1:
        return np.zeros_like(idx)
    period = 2 * (length - 1)
    i = np.mod(idx, period)
    return np.where(i >= length, period - i, i)


def extract_tile(image: np.ndarray, y0: int, x0: int, tile: int) -> np.ndarray:
    """(3, tile, tile) patch of the H x W x 3 image at (y0, x0), reflect-padded outside the image."""
    rows = reflect_index(np.arange(y0, y0 + tile), image.shape[0])
    cols = reflect_index(np.arange(x0, x0 + tile), image.shape[1])
    return np.ascontiguousarray(image[np.ix_(rows, cols)].transpose(2, 0, 1))


def flip_tile(tile: np.ndarray, flip_x: bool, flip_y: bool) -> np.ndarray:
    """Flip (..., H, W) horizontally / vertically; its own inverse."""
    if flip_x:
        tile = tile[..., ::-1]
    if flip_y:
        tile = tile[..., ::-1, :]
    return tile


# ------------------------------------------------------------------------------------ gathering
def gilbert_order(rows: int, cols: int) -> list[tuple[int, int]]:
    """All (row, col) cells along Cerveny's gilbert2d curve: from (0, 0), along the longer axis (columns on ties)."""

    def sgn(v: int) -> int:
        return (v > 0) - (v < 0)

    def gen(x, y, ax, ay, bx, by):  # noqa: ANN001, ANN202 - direct port of the recursive algorithm
        w, h = abs(ax + ay), abs(bx + by)
        dax, day, dbx, dby = sgn(ax), sgn(ay), sgn(bx), sgn(by)
        if h == 1:
            for _ in range(w):
                yield x, y
                x, y = x + dax, y + day
            return
        if w == 1:
            for _ in range(h):
                yield x, y
                x, y = x + dbx, y + dby
            return
        ax2, ay2, bx2, by2 = ax // 2, ay // 2, bx // 2, by // 2
        w2, h2 = abs(ax2 + ay2), abs(bx2 + by2)
        if 2 * w > 3 * h:
            if w2 % 2 and w > 2:
                ax2, ay2 = ax2 + dax, ay2 + day
            yield from gen(x, y, ax2, ay2, bx, by)
            yield from gen(x + ax2, y + ay2, ax - ax2, ay - ay2, bx, by)
        else:
            if h2 % 2 and h > 2:
                bx2, by2 = bx2 + dbx, by2 + dby
            yield from gen(x, y, bx2, by2, ax2, ay2)
            yield from gen(x + bx2, y + by2, ax, ay, bx - bx2, by - by2)
            yield from gen(
                x + (ax - dax) + (bx2 - dbx), y + (ay - day) + (by2 - dby), -bx2, -by2, -(ax - ax2), -(ay - ay2)
            )

    if rows < 1 or cols < 1:
        return []
    cells = gen(0, 0, cols, 0, 0, rows) if cols >= rows else gen(0, 0, 0, rows, cols, 0)
    return [(y, x) for x, y in cells]


# A stack member: (tile index, (flip_x, flip_y), keep its output)
Member = tuple[int, tuple[bool, bool], bool]


def pad_stack(members: list[Member], n: int) -> list[Member]:
    """Complete to n members with repeats of the kept members, cycling from the first; repeats are not kept."""
    kept = [m for m in members if m[2]] or members
    out = list(members)
    i = 0
    while len(out) < n:
        t, f, _ = kept[i % len(kept)]
        out.append((t, f, False))
        i += 1
    return out


def mirror_orbits(grid: Grid) -> list[list[Member]]:
    """The tiles grouped by their four mirror positions about the centre, ordered along gilbert_order over the
    grid of first-quadrant (right of and below the centre) starts; in an orbit: no flip, x, y, both."""
    t = grid.tile
    c2x, c2y = round(2 * grid.center[0]), round(2 * grid.center[1])
    orbits: dict[tuple[int, int], list[Member]] = {}
    for y0 in grid.ys:
        for x0 in grid.xs:
            rx = x0 if 2 * x0 + t - 1 >= c2x else c2x - x0 - t + 1
            ry = y0 if 2 * y0 + t - 1 >= c2y else c2y - y0 - t + 1  # (+x, +y) quadrant, y down: as trained
            if (ry, rx) in orbits:
                continue
            members, seen = [], set()
            for fx, fy in ((False, False), (True, False), (False, True), (True, True)):
                idx = grid.index_of(c2y - ry - t + 1 if fy else ry, c2x - rx - t + 1 if fx else rx)
                if idx is None:  # a mirror position that is not in the grid
                    continue
                members.append((idx, (fx, fy), idx not in seen))  # a self-mirror tile runs again, not kept
                seen.add(idx)
            orbits[(ry, rx)] = members
    rys, rxs = sorted({k[0] for k in orbits}), sorted({k[1] for k in orbits})
    rank = {cell: i for i, cell in enumerate(gilbert_order(len(rys), len(rxs)))}
    return [orbits[k] for k in sorted(orbits, key=lambda k: rank[(rys.index(k[0]), rxs.index(k[1]))])]


def gather_stacks(grid: Grid, n: int, strategy: str) -> list[list[Member]]:
    """Stacks of exactly n members; every tile is kept in exactly one stack."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown gathering strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if n == 1:
        return [[(i, (False, False), True)] for i in range(len(grid))]
    if strategy in ("spread", "local"):
        cols = len(grid.xs)
        order = [r * cols + c for r, c in gilbert_order(len(grid.ys), cols)]
        if strategy == "local":
            groups = [order[i : i + n] for i in range(0, len(order), n)]
        else:  # regions of k = ceil(tiles / n) along the curve; stack i: the i-th tile of every region
            k = -(-len(order) // n)
            groups = [order[i::k] for i in range(k)]
        return [pad_stack([(t, (False, False), True) for t in g], n) for g in groups]
    orbits = mirror_orbits(grid)
    stacks = []
    if n < 4:  # each orbit cut into consecutive chunks of n
        for orbit in orbits:
            for i in range(0, len(orbit), n):
                chunk = orbit[i : i + n]
                if any(m[2] for m in chunk):
                    stacks.append(pad_stack(chunk, n))
    else:  # n // 4 consecutive orbits per stack
        per = n // 4
        for i in range(0, len(orbits), per):
            stacks.append(pad_stack([m for o in orbits[i : i + per] for m in o], n))
    return stacks


# ----------------------------------------------------------------------------------- restoring
def restore(
    image: np.ndarray,
    run_stack: Callable[[np.ndarray], np.ndarray],
    n: int,
    tile: int,
    overlap: int,
    strategy: str = "spread",
    center: tuple[float, float] | None = None,
    exposure_target: float = 0.0,
    max_gain: float = 1.0,
) -> np.ndarray:
    """Steps 1-6: H x W x 3 float32 linear RGB -> restored, the same. ``run_stack`` maps one (N, 3, T, T)
    float32 stack to its restored (N, 3, T, T); ``center`` (x, y) is used by ``mirror`` only."""
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0 or n < 1:
        raise ValueError(f"need a non-empty H x W x 3 image and n >= 1, got shape {image.shape} and n={n}")
    gain = exposure_gain(image, exposure_target, max_gain)
    if gain != 1.0:
        image = image * np.float32(gain)
    h, w = image.shape[:2]
    t = tile
    grid = make_grid(h, w, t, overlap, center if strategy == "mirror" else None, symmetric=strategy == "mirror")
    win = hann_taper_window(t, overlap)
    win2d = np.outer(win, win).astype(np.float32)[..., None]
    acc = np.zeros((h, w, 3), dtype=np.float32)
    stack = np.empty((n, 3, t, t), dtype=np.float32)
    for members in gather_stacks(grid, n, strategy):
        for m, (idx, (fx, fy), _) in enumerate(members):
            stack[m] = flip_tile(extract_tile(image, *grid.position(idx), t), fx, fy)
        out = run_stack(stack)
        for m, (idx, (fx, fy), keep) in enumerate(members):
            if not keep:
                continue
            y0, x0 = grid.position(idx)
            ya, yb, xa, xb = max(y0, 0), min(y0 + t, h), max(x0, 0), min(x0 + t, w)
            part = flip_tile(out[m], fx, fy)[:, ya - y0 : yb - y0, xa - x0 : xb - x0].transpose(1, 2, 0)
            acc[ya:yb, xa:xb] += part * win2d[ya - y0 : yb - y0, xa - x0 : xb - x0]
    # normalise by the accumulated window weight, separable: (sum_i wy_i(y)) * (sum_j wx_j(x))
    wy, wx = np.zeros(h), np.zeros(w)
    for weights, starts, length in ((wy, grid.ys, h), (wx, grid.xs, w)):
        for s in starts:
            a, b = max(s, 0), min(s + t, length)
            weights[a:b] += win[a - s : b - s]
    inv_x = (1.0 / wx).astype(np.float32)
    for y in range(h):
        acc[y] *= (inv_x * np.float32(1.0 / wy[y]))[:, None]
    return acc / np.float32(gain) if gain != 1.0 else acc


def transfer_luma_detail(
    before: np.ndarray,
    after: np.ndarray,
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
    weights: tuple[float, float, float] = REC709_LUMA,
) -> np.ndarray:
    """H x W x 3 linear camera RGB: ``before`` plus only the luma of ``after - before``, in white-balanced space."""
    g = np.asarray(wb_gains, dtype=np.float32)
    d_luma = ((after - before) * g) @ np.asarray(weights, dtype=np.float32)
    return np.ascontiguousarray(before + d_luma[..., None] / g, dtype=np.float32)


def box_mean_rows(plane: np.ndarray, box: int) -> np.ndarray:
    """(H, W) float64: the mean over ``box`` (odd) rows centred on each row, reflect-101 borders (reflect_index:
    reflected again where H <= box // 2), from float64 running sums (cumulative, then differenced)."""
    r, length = box // 2, plane.shape[0]
    sums = np.zeros((length + 2 * r + 1, *plane.shape[1:]), dtype=np.float64)
    np.cumsum(plane[reflect_index(np.arange(-r, length + r), length)], axis=0, out=sums[1:])
    return (sums[box:] - sums[:-box]) / box


def keep_local_level(before: np.ndarray, after: np.ndarray, box: int, passes: int) -> np.ndarray:
    """H x W x 3 float32 (any size, 1 x 1 included): ``after - L(after - before)``, L being ``passes`` normalised
    ``box`` x ``box`` box filters, each channel alone (OpenCV's ``blur``, BORDER_REFLECT_101), in float64. The
    vertical and horizontal passes commute: all ``passes`` down the columns, then all along the rows."""
    if box < 1 or box % 2 == 0 or passes < 1:
        raise ValueError(f"keep_local_level: box must be odd and >= 1 and passes >= 1, got {box} and {passes}")
    low = np.empty(after.shape, dtype=np.float32)
    for c in range(after.shape[2]):  # a channel at a time: float64 planes, not a float64 copy of the image
        plane = after[..., c].astype(np.float64) - before[..., c]
        for _ in range(passes):
            plane = box_mean_rows(plane, box)
        plane = plane.T
        for _ in range(passes):
            plane = box_mean_rows(plane, box)
        low[..., c] = plane.T
    return np.ascontiguousarray(after - low, dtype=np.float32)


def postprocess(
    before: np.ndarray,
    after: np.ndarray,
    detail: str = "rgb",
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
    luma_weights: tuple[float, float, float] = REC709_LUMA,
    strength: float = 1.0,
    keep_level: tuple[int, int] | None = None,
) -> np.ndarray:
    """Steps 7-9: the detail step (``luma`` or ``rgb``), then ``keep_level`` ((box, passes), or None: off),
    then ``before + strength * (result - before)``."""
    if detail not in DETAILS:
        raise ValueError(f"unknown detail {detail!r}: choose from {', '.join(DETAILS)}")
    out = after if detail == "rgb" else transfer_luma_detail(before, after, wb_gains, luma_weights)
    if keep_level is not None:
        out = keep_local_level(before, out, *keep_level)
    if strength != 1:
        out = before + np.float32(strength) * (out - before)
    return out
