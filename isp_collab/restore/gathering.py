"""Stack gathering: which tiles of a grid are restored together in one stack of N.

This is the heart of the method ("attention without attention"): the network's collaboration
layers pool features across the stack, which helps only when the stacked tiles share a blur.

- ``spread``: blur that is the same everywhere (sharpening, mild defocus, camera shake). The tiles
  are ordered along a generalised Hilbert curve and the curve is cut into N compact regions; stack
  k takes the k-th tile of every region, so each stack sees N far-apart parts of the frame (many
  edge orientations, the same blur).
- ``local``: blur that drifts slowly across the frame. Stacks are N consecutive tiles along the
  same curve, i.e. compact neighbourhoods.
- ``mirror``: lens aberrations, whose PSF is mirror-symmetric about the optical centre. The
  tiles at the four mirror positions (x, y), (2cx - x, y), (x, 2cy - y), (2cx - x, 2cy - y) form a
  quadruplet; each is flipped into the orientation of the first-quadrant member (right of and
  below the centre in pixel coordinates, y down: the (+x, +y) quadrant that
  :class:`~isp_collab.data.lens.LensSampler` aligns training stacks to) so all four share one blur. A tile on the central column is its own
  horizontal mirror: its flipped copy joins the stack as the mirror observation but its output is
  discarded (likewise for the central row and the centre tile). Mirror positions outside the
  image (off-centre optics) are simply absent.

N = 1 means no gathering. A stack with fewer than N real members is completed with repeats of
its own members whose outputs are discarded (with max pooling a repeat changes nothing). Every
tile is restored exactly once: exactly one member across all stacks has ``keep`` set for it.

Numpy only (no torch).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .tiling import TileGrid

STRATEGIES: tuple[str, ...] = ("spread", "local", "mirror")


@dataclass(frozen=True)
class Stack:
    """One network input: N tile indices, how each is flipped, and whose output is kept.

    ``tiles[m]``: index into the grid (row-major). ``flips[m]``: (flip_x, flip_y), applied to the
    tile before the network and again (it is an involution) to the output. ``keep[m]``: False for
    padding repeats and self-mirror duplicates, whose outputs are discarded.
    """

    tiles: tuple[int, ...]
    flips: tuple[tuple[bool, bool], ...]
    keep: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.tiles)


def flip_tile(tile: np.ndarray, flip_x: bool, flip_y: bool) -> np.ndarray:
    """Flip a ``(..., H, W)`` array horizontally and/or vertically (a view; its own inverse)."""
    if flip_x:
        tile = tile[..., ::-1]
    if flip_y:
        tile = tile[..., ::-1, :]
    return tile


def gilbert_order(rows: int, cols: int) -> list[tuple[int, int]]:
    """All (row, col) cells of a ``rows x cols`` grid along a generalised Hilbert curve.

    Consecutive cells are neighbours (a diagonal step can occur only for odd sizes), and any
    contiguous run of the curve is a compact region. Any rectangle, not only powers of two
    (after J. Cervený's "gilbert" algorithm).
    """

    def sgn(v: int) -> int:
        return (v > 0) - (v < 0)

    def gen(x: int, y: int, ax: int, ay: int, bx: int, by: int) -> Iterator[tuple[int, int]]:
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
            if w2 % 2 and w > 2:  # prefer even steps
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


def _pad(members: list[tuple[int, tuple[bool, bool], bool]], n: int) -> Stack:
    """Complete a stack to n members with repeats of its own kept members (outputs discarded)."""
    kept = [m for m in members if m[2]] or members
    out = list(members)
    i = 0
    while len(out) < n:
        t, f, _ = kept[i % len(kept)]
        out.append((t, f, False))
        i += 1
    return Stack(tuple(m[0] for m in out), tuple(m[1] for m in out), tuple(m[2] for m in out))


def _mirror_orbits(grid: TileGrid) -> list[list[tuple[int, tuple[bool, bool], bool]]]:
    """Group the tiles into mirror orbits: lists of (tile, (flip_x, flip_y), keep), first-quadrant first."""
    t = grid.tile
    c2x, c2y = round(2 * grid.center[0]), round(2 * grid.center[1])

    def mx(x0: int) -> int:  # start of the tile mirrored about the vertical axis x = cx
        return c2x - x0 - t + 1

    def my(y0: int) -> int:
        return c2y - y0 - t + 1

    orbits: dict[tuple[int, int], list[tuple[int, tuple[bool, bool], bool]]] = {}
    for y0 in grid.ys:
        for x0 in grid.xs:
            # the orbit's representative: the mirror position right of and below the centre (y down),
            # the orientation the lens models were trained in (data/lens.py, training LensTask)
            rx = x0 if 2 * x0 + t - 1 >= c2x else mx(x0)
            ry = y0 if 2 * y0 + t - 1 >= c2y else my(y0)
            if (ry, rx) in orbits:
                continue
            members, seen = [], set()
            for fx, fy in ((False, False), (True, False), (False, True), (True, True)):
                idx = grid.index_of(my(ry) if fy else ry, mx(rx) if fx else rx)
                if idx is None:  # mirror position outside the image
                    continue
                members.append((idx, (fx, fy), idx not in seen))
                seen.add(idx)
            orbits[(ry, rx)] = members
    # order the orbits along a Hilbert curve over their representatives so that consecutive
    # orbits (packed together when N > 4) are neighbours
    rys = sorted({k[0] for k in orbits})
    rxs = sorted({k[1] for k in orbits})
    rank = {cell: i for i, cell in enumerate(gilbert_order(len(rys), len(rxs)))}
    keys = sorted(orbits, key=lambda k: rank[(rys.index(k[0]), rxs.index(k[1]))])
    return [orbits[k] for k in keys]


def gather_stacks(
    grid: TileGrid, n: int, strategy: str = "spread", center: tuple[float, float] | None = None
) -> list[Stack]:
    """Split the tiles of ``grid`` into stacks of ``n`` for the given strategy.

    ``center`` (mirror only): (x, y) in pixel-index coordinates; None uses ``grid.center``. The grid
    must have been built about that centre (``make_grid(..., center=center)``), since mirror
    positions must be grid positions. Returns stacks of exactly ``n`` members; every tile is kept
    in exactly one of them.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"stack size n must be an integer >= 1, got {n!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown gathering strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if center is not None and (round(2 * center[0]), round(2 * center[1])) != (
        round(2 * grid.center[0]),
        round(2 * grid.center[1]),
    ):
        raise ValueError(
            f"centre {tuple(center)} differs from the grid's centre {grid.center}; build the grid with that centre"
        )
    n = int(n)
    no_flip = (False, False)
    if n == 1:
        stacks = [Stack((i,), (no_flip,), (True,)) for i in range(len(grid))]
    elif strategy in ("spread", "local"):
        cols = grid.shape[1]
        order = [r * cols + c for r, c in gilbert_order(*grid.shape)]
        if strategy == "local":
            groups = [order[i : i + n] for i in range(0, len(order), n)]
        else:
            k = -(-len(order) // n)  # number of stacks; the curve is cut into n regions of k tiles
            groups = [order[i::k] for i in range(k)]
        stacks = [_pad([(t, no_flip, True) for t in g], n) for g in groups]
    else:
        if n == 3 or (n > 4 and n % 4):
            warnings.warn(mirror_size_note(n), stacklevel=2)
        orbits = _mirror_orbits(grid)
        stacks = []
        if n < 4:  # split each orbit; [id, flip-x] pairs stay together for n = 2
            for orbit in orbits:
                for i in range(0, len(orbit), n):
                    chunk = orbit[i : i + n]
                    if any(m[2] for m in chunk):  # a chunk of discarded duplicates only is pure waste
                        stacks.append(_pad(chunk, n))
        else:  # n // 4 neighbouring orbits per stack
            per = n // 4
            for i in range(0, len(orbits), per):
                stacks.append(_pad([m for o in orbits[i : i + per] for m in o], n))
    _check_exactly_once(stacks, len(grid))
    return stacks


def stack_cap(grid: TileGrid, n: int, strategy: str = "spread") -> int:
    """The largest stack size below ``n`` that gives the same stacks less their repeats: the tile count for
    ``spread`` / ``local``, 4 per mirror orbit for ``mirror`` (for n >= 4; below 4 the orbits are split)."""
    if strategy != "mirror":
        return min(n, len(grid))
    return n if n < 4 else min(n, 4 * len(_mirror_orbits(grid)))


def mirror_size_note(n: int) -> str:
    """Why a stack size that is not 1, 2 or a multiple of 4 wastes mirror gathering."""
    if n == 3:
        return (
            "stack size 3 with mirror gathering: each orbit of 4 mirror tiles is split 3 + 1, so one tile in "
            "four is restored without its mirror partners; use N = 2 or a multiple of 4"
        )
    return (
        f"stack size {n} with mirror gathering: a stack holds {n // 4} orbit(s) of 4 mirror tiles plus repeats "
        f"(under max pooling, the result of N = {4 * (n // 4)} for more work); use a multiple of 4"
    )


def _check_exactly_once(stacks: list[Stack], count: int) -> None:
    """Every tile must be kept exactly once: the stitcher would double or miss it otherwise."""
    kept = np.zeros(count, dtype=np.int64)
    for s in stacks:
        for t, k in zip(s.tiles, s.keep, strict=True):
            kept[t] += k
    if not np.all(kept == 1):
        bad = int(np.flatnonzero(kept != 1)[0])
        raise RuntimeError(f"gathering bug: tile {bad} is kept {kept[bad]} times")
