"""Gathering strategies: exactly-once restoration, mirror symmetry and flips, spread vs local, permutations."""

import warnings
from itertools import pairwise

import numpy as np
import pytest
import torch

from isp_collab.models import create_model
from isp_collab.restore import TorchBackend, flip_tile, gather_stacks, gilbert_order, make_grid, restore
from isp_collab.restore.gathering import stack_cap


def random_model(n=4):
    """UNet-TX with every weight perturbed: not the identity, and the collaboration layers active."""
    model = create_model("unet-tx", n=n)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


class RecordingBackend:
    """Identity 'network' that keeps every stack it is given."""

    n = None
    tile = None
    multiple = 8

    def __init__(self):
        self.seen = []

    def run(self, stacks):
        self.seen.extend(s.copy() for s in stacks)
        return stacks.copy()


class PermutingBackend:
    """Wraps a backend: shuffles the members of every stack, runs, un-shuffles the outputs."""

    n = None
    tile = None
    multiple = 8

    def __init__(self, inner, seed=0):
        self.inner, self.rng = inner, np.random.default_rng(seed)

    def run(self, stacks):
        perm = np.stack([self.rng.permutation(stacks.shape[1]) for _ in range(len(stacks))])
        shuffled = np.take_along_axis(stacks, perm[:, :, None, None, None], axis=1)
        out = self.inner.run(shuffled)
        restored = np.empty_like(out)
        np.put_along_axis(restored, perm[:, :, None, None, None], out, axis=1)
        return restored


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (1, 7), (5, 1), (4, 4), (5, 7), (8, 8), (3, 10)])
def test_gilbert_curve_visits_every_cell_once_in_small_steps(rows, cols):
    order = gilbert_order(rows, cols)
    assert sorted(order) == [(r, c) for r in range(rows) for c in range(cols)]
    steps = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in pairwise(order)]
    assert max(steps, default=1) <= 2  # neighbours; a diagonal step only for odd sizes


GRIDS = [(1, 1), (7, 300), (257, 513), (1000, 1500), (300, 301)]


@pytest.mark.parametrize("size", GRIDS)
@pytest.mark.parametrize("strategy", ["spread", "local", "mirror"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
def test_every_tile_is_kept_exactly_once_and_stacks_have_n_members(size, strategy, n):
    grid = make_grid(*size, tile=32 if size[0] < 1000 else 256, overlap=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stacks = gather_stacks(grid, n, strategy)
    # mirror orbits hold 4 tiles: N = 3 splits them 3 + 1, N = 5 only repeats tiles; both say so
    assert len(caught) == (strategy == "mirror" and n in (3, 5))
    kept = np.zeros(len(grid), int)
    for s in stacks:
        assert len(s.tiles) == len(s.flips) == len(s.keep) == n
        assert any(s.keep)  # no stack of discarded members only
        for t, k in zip(s.tiles, s.keep, strict=True):
            kept[t] += k
    assert np.array_equal(kept, np.ones(len(grid)))
    if strategy != "mirror" or n == 1:
        assert len(stacks) == -(-len(grid) // n)  # the fewest possible stacks
        assert all(f == (False, False) for s in stacks for f in s.flips)


def _tile_centre2(grid, idx):
    """Twice the (x, y) centre of tile idx in pixel-index coordinates (integers)."""
    y0, x0 = grid.position(idx)
    return 2 * x0 + grid.tile - 1, 2 * y0 + grid.tile - 1


@pytest.mark.parametrize(
    ("size", "center"),
    [((1000, 1500), None), ((1200, 1600), None), ((1200, 1600), (500, 400)), ((900, 700), (650.5, 3))],
)
def test_mirror_quadruplets_are_symmetric_about_the_centre(size, center):
    grid = make_grid(*size, tile=256, overlap=32, center=center)
    c2x, c2y = round(2 * grid.center[0]), round(2 * grid.center[1])
    if center is not None:
        assert grid.center == (round(2 * center[0]) / 2, round(2 * center[1]) / 2)
    stacks = gather_stacks(grid, 4, "mirror")
    full = 0
    for s in stacks:
        rx, ry = _tile_centre2(grid, s.tiles[0])
        assert s.flips[0] == (rx < c2x, ry < c2y)  # flags bring the tile to the first (+x, +y) quadrant
        for t, (fx, fy) in zip(s.tiles, s.flips, strict=True):
            x, y = _tile_centre2(grid, t)
            # relative to the first member, a flipped axis means the mirror position, else the same
            assert (x + rx == 2 * c2x) if fx != s.flips[0][0] else (x == rx)
            assert (y + ry == 2 * c2y) if fy != s.flips[0][1] else (y == ry)
            # canonical orientation (as LensSampler trains): every member's flipped centre lies right of
            # and below the centre (y down)
            assert (2 * c2x - x if fx else x) >= c2x and (2 * c2y - y if fy else y) >= c2y
        full += len(set(s.tiles)) == 4
    assert full > 0


def test_central_row_and_column_tiles_get_their_flipped_copy_discarded():
    grid = make_grid(1000, 1500, tile=256, overlap=32)  # 5 x 7 tiles: a central row and column
    assert grid.shape == (5, 7)
    stacks = gather_stacks(grid, 4, "mirror")
    centre = 2 * 7 + 3
    (s,) = [s for s in stacks if centre in s.tiles]
    assert s.tiles == (centre,) * 4
    assert s.flips == ((False, False), (True, False), (False, True), (True, True))
    assert s.keep == (True, False, False, False)
    on_column = [s for s in stacks if s.tiles[0] % 7 == 3 and s.tiles[0] != centre]
    assert on_column and all(len(set(s.tiles)) == 2 and sum(s.keep) == 2 for s in on_column)


@pytest.mark.parametrize("size", [(200, 300), (97, 131), (1, 1)])
def test_mirror_stacks_of_a_symmetric_image_are_identical_after_flipping(size):
    """Positions and flips are right iff the network sees N equal tiles for an image symmetric about its centre."""
    h, w = size
    a = np.random.default_rng(0).integers(0, 64, (h, w, 3)).astype(np.float32) / 256  # exact float sums
    img = a + a[::-1] + a[:, ::-1] + a[::-1, ::-1]  # symmetric about the image centre
    rec = RecordingBackend()
    out = restore(img, rec, n=4, strategy="mirror", tile=32, overlap=8)
    assert np.abs(out - img).max() <= 1e-6  # flipped back correctly
    for stack in rec.seen:
        for member in stack[1:]:
            assert np.array_equal(member, stack[0])


def test_spread_stacks_span_different_regions_and_local_stacks_are_compact():
    grid = make_grid(180, 180, tile=32, overlap=8)  # 8 x 8 tiles
    assert grid.shape == (8, 8)

    def quadrant(i):
        r, c = divmod(i, 8)
        return (r >= 4, c >= 4)

    def spread_of(stacks):
        d = []
        for s in stacks:
            rc = np.array([divmod(t, 8) for t in s.tiles], float)
            d.append(np.mean([np.hypot(*(p - q)) for p in rc for q in rc]))
        return np.mean(d)

    spread = gather_stacks(grid, 4, "spread")
    local = gather_stacks(grid, 4, "local")
    assert all(len({quadrant(t) for t in s.tiles}) == 4 for s in spread)  # one tile per quadrant
    assert all(max(np.ptp([divmod(t, 8) for t in s.tiles], axis=0)) <= 1 for s in local)  # 2x2 blocks
    assert spread_of(spread) > 3 * spread_of(local)


def test_incomplete_last_stack_is_padded_with_discarded_repeats():
    grid = make_grid(100, 130, tile=32, overlap=8)  # 5 x 6 = 30 tiles, N = 4: 2 padding slots
    stacks = gather_stacks(grid, 4, "local")
    assert len(grid) == 30 and len(stacks) == 8
    padded = [s for s in stacks if not all(s.keep)]
    assert len(padded) == 1 and padded[0].keep == (True, True, False, False)
    assert set(padded[0].tiles[2:]) <= set(padded[0].tiles[:2])


def test_flip_tile_is_an_involution():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    for fx in (False, True):
        for fy in (False, True):
            assert np.array_equal(flip_tile(flip_tile(x, fx, fy), fx, fy), x)
    assert np.array_equal(flip_tile(x, True, False), x[..., ::-1])
    assert np.array_equal(flip_tile(x, False, True), x[:, ::-1, :])


def test_permuting_stack_members_and_batching_do_not_change_the_result():
    img = np.random.default_rng(5).random((70, 90, 3), dtype=np.float32)
    backend = TorchBackend(random_model(), "cpu")
    ref = restore(img, backend, n=4, strategy="spread", tile=32, overlap=8, batch_size=4)
    assert np.abs(ref - img).max() > 1e-3  # the network does something
    shuffled = restore(img, PermutingBackend(backend), n=4, strategy="spread", tile=32, overlap=8, batch_size=3)
    assert np.abs(shuffled - ref).max() <= 1e-5


def test_mirror_restoration_commutes_with_flipping_the_image():
    """Flipping the image about the optical centre permutes each quadruplet: the output is flipped too.

    (Exact only without self-mirror tiles, whose kept view is not flip-equivariant: 4 x 6 tiles here.)
    """
    img = np.random.default_rng(6).random((80, 130, 3), dtype=np.float32)
    backend = TorchBackend(random_model(), "cpu")
    assert all(len(set(s.tiles)) == 4 for s in gather_stacks(make_grid(80, 130, 32, 8), 4, "mirror"))
    ref = restore(img, backend, n=4, strategy="mirror", tile=32, overlap=8)
    for axis in (0, 1):
        out = restore(np.flip(img, axis).copy(), backend, n=4, strategy="mirror", tile=32, overlap=8)
        assert np.abs(np.flip(out, axis) - ref).max() <= 1e-5


def test_gather_rejects_bad_arguments():
    grid = make_grid(100, 100, tile=32, overlap=8)
    with pytest.raises(ValueError, match="strategy"):
        gather_stacks(grid, 4, "diagonal")
    with pytest.raises(ValueError, match=">= 1"):
        gather_stacks(grid, 0, "spread")
    with pytest.raises(ValueError, match="centre"):
        gather_stacks(grid, 4, "mirror", center=(10, 10))


def test_a_stack_never_exceeds_the_tile_count():
    """N larger than the image's tiles would only repeat tiles: restore caps it (same output, less work)."""
    image = np.random.default_rng(0).random((40, 72, 3)).astype(np.float32)
    rec = RecordingBackend()
    out = restore(image, rec, n=64, tile=32, overlap=8)
    tiles = len(make_grid(40, 72, 32, 8))
    assert {s.shape[0] for s in rec.seen} == {tiles} and tiles < 64
    np.testing.assert_allclose(out, image, atol=1e-6)  # the identity 'network', stitched
    model = TorchBackend(random_model())
    np.testing.assert_allclose(
        restore(image, model, n=64, tile=32, overlap=8), restore(image, model, n=tiles, tile=32, overlap=8), atol=1e-6
    )


def test_a_mirror_stack_never_exceeds_four_tiles_per_orbit():
    """--stages lens --n 64 on a small crop gave the output of n=16 at twice the time and memory."""
    image = np.random.default_rng(0).random((40, 72, 3)).astype(np.float32)
    rec = RecordingBackend()
    restore(image, rec, n=64, tile=32, overlap=8, strategy="mirror")
    grid = make_grid(40, 72, 32, 8)
    orbits = {s.shape[0] for s in rec.seen}
    assert orbits == {stack_cap(grid, 64, "mirror")} and orbits.pop() < 64
    model = TorchBackend(random_model())
    kw = {"tile": 32, "overlap": 8, "strategy": "mirror"}
    np.testing.assert_allclose(restore(image, model, n=64, **kw), restore(image, model, n=16, **kw), atol=1e-6)


def test_gilbert_curve_steps_diagonally_only_where_it_must():
    """Every size up to 16 x 16: the curve starts at the top-left cell and takes unit steps, except that a
    longer side of odd length next to an even shorter side forces diagonal steps (Cervený's gilbert2d)."""
    for rows in range(1, 17):
        for cols in range(1, 17):
            order = gilbert_order(rows, cols)
            assert order[0] == (0, 0) and len(set(order)) == rows * cols
            steps = {abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in pairwise(order)}
            long, short = max(rows, cols), min(rows, cols)
            assert steps <= ({1, 2} if long % 2 and not short % 2 else {1}), (rows, cols, steps)
    assert gilbert_order(0, 5) == [] and gilbert_order(5, 0) == []  # an empty grid has no curve


def test_mirror_gathering_accepts_the_grids_own_centre_to_half_a_pixel():
    grid = make_grid(100, 90, tile=32, overlap=8, center=(40.5, 60.0))
    same = gather_stacks(grid, 4, "mirror")
    for center in ((40.5, 60.0), (40.6, 59.9)):  # both round to the grid's half-pixel centre
        assert gather_stacks(grid, 4, "mirror", center=center) == same
    for center in ((41.0, 60.0), (40.5, 60.5)):
        with pytest.raises(ValueError, match="centre"):
            gather_stacks(grid, 4, "mirror", center=center)


def test_stack_cap_is_the_tile_count_or_four_per_mirror_orbit():
    from isp_collab.restore.gathering import Stack, _check_exactly_once

    grid = make_grid(40, 72, 32, 8)
    orbits = len(gather_stacks(grid, 4, "mirror"))  # at N = 4 a mirror stack holds one orbit
    assert stack_cap(grid, 2, "spread") == 2 and stack_cap(grid, 999, "local") == len(grid)
    assert stack_cap(grid, 3, "mirror") == 3 and stack_cap(grid, 4, "mirror") == 4
    assert stack_cap(grid, 999, "mirror") == 4 * orbits < 999
    # the last guard: a tile kept twice (or never) is a gathering bug, not a stitching surprise
    with pytest.raises(RuntimeError, match="kept 2 times"):
        _check_exactly_once([Stack((0, 0), ((False, False),) * 2, (True, True))], 1)
    with pytest.raises(RuntimeError, match="tile 1 is kept 0 times"):
        _check_exactly_once([Stack((0,), ((False, False),), (True,))], 2)
