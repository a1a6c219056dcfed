"""Tiling and stitching: reflect padding, windows, grids, and exactness of whole-image restoration."""

from itertools import pairwise

import numpy as np
import pytest

from isp_collab.models import create_model
from isp_collab.restore import (
    Stitcher,
    extract_tile,
    gather_stacks,
    hann_taper_window,
    make_grid,
    reflect_index,
    restore,
)


class FakeBackend:
    """A 'network' given by a numpy function on (S, N, 3, T, T) stacks; counts the stacks it saw."""

    n = None
    tile = None
    multiple = 8

    def __init__(self, fn=lambda x: x.copy()):
        self.fn = fn
        self.stacks_seen = 0

    def run(self, stacks):
        self.stacks_seen += len(stacks)
        return self.fn(stacks).astype(np.float32)


SIZES = [(1, 1), (1, 2), (3, 2), (7, 300), (300, 7), (31, 33), (257, 513), (32, 32), (64, 96), (96, 64), (128, 128)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("strategy", ["spread", "local", "mirror"])
def test_identity_network_returns_the_input(size, strategy):
    img = np.random.default_rng(sum(size)).random((*size, 3), dtype=np.float32)
    out = restore(img, FakeBackend(), n=4, strategy=strategy, tile=32, overlap=8)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.abs(out - img).max() <= 1e-6


@pytest.mark.parametrize("tile_overlap", [(64, 16), (32, 0), (64, 32), (8, 2)])
@pytest.mark.parametrize("n", [1, 3, 4])
@pytest.mark.filterwarnings("ignore:stack size 3 with mirror gathering")  # tested in test_restore_gathering
def test_identity_for_other_tiles_overlaps_and_n(tile_overlap, n):
    tile, overlap = tile_overlap
    img = np.random.default_rng(1).random((75, 130, 3), dtype=np.float32) * 4 - 1  # any range
    out = restore(img, FakeBackend(), n=n, strategy="mirror", tile=tile, overlap=overlap, center=(20, 60))
    assert np.abs(out - img).max() <= 1e-6


def test_untrained_unet_is_identity_through_restore():
    img = np.random.default_rng(2).random((45, 70, 3), dtype=np.float32)
    out = restore(img, create_model("unet-tx", n=4), n=4, strategy="mirror", tile=32, overlap=8)
    assert np.abs(out - img).max() <= 1e-6


@pytest.mark.parametrize("size", [(1, 1), (7, 300), (257, 513)])
def test_constant_stays_constant_under_a_pointwise_network(size):
    img = np.full((*size, 3), 0.37, dtype=np.float32)
    out = restore(img, FakeBackend(lambda x: x**2 + 0.1), n=4, tile=32, overlap=8)
    assert np.abs(out - (0.37**2 + 0.1)).max() <= 1e-6


def test_pointwise_network_gives_pointwise_result_for_every_strategy():
    img = np.random.default_rng(3).random((100, 77, 3), dtype=np.float32)
    for strategy in ("spread", "local", "mirror"):
        out = restore(img, FakeBackend(lambda x: np.sqrt(x)), n=4, strategy=strategy, tile=32, overlap=8)
        assert np.abs(out - np.sqrt(img)).max() <= 1e-6


@pytest.mark.parametrize("length", [1, 2, 3, 10])
def test_reflect_index_matches_numpy_reflect_padding(length):
    a = np.arange(length)
    pad = 3 * length + 5  # padding larger than the signal: tiles bigger than tiny images
    expected = np.pad(a, pad, mode="reflect") if length > 1 else np.zeros(length + 2 * pad, int)
    assert np.array_equal(reflect_index(np.arange(-pad, length + pad), length), expected)


def test_extract_tile_reflect_pads_and_is_channels_first():
    img = np.random.default_rng(4).random((10, 12, 3), dtype=np.float32)
    padded = np.pad(img, ((20, 20), (20, 20), (0, 0)), mode="reflect")
    tile = extract_tile(img, -5, 7, 16)
    assert tile.shape == (3, 16, 16)
    assert np.array_equal(tile, padded[15:31, 27:43].transpose(2, 0, 1))
    assert np.array_equal(extract_tile(img, 1, 2, 8), img[1:9, 2:10].transpose(2, 0, 1))


@pytest.mark.parametrize("overlap", [1, 2, 16])
def test_window_is_positive_and_a_partition_of_unity_over_the_overlap(overlap):
    w = hann_taper_window(64, overlap)
    assert w.min() > 0 and w.max() == 1
    assert np.allclose(w[-overlap:] + w[:overlap], 1.0)  # falling taper + next tile's rising taper
    assert (w[overlap:-overlap] == 1).all() and (w[:overlap] < 1).all()
    assert (np.diff(w[:overlap]) > 0).all() and np.array_equal(w, w[::-1])  # a rising taper, mirrored
    assert np.array_equal(hann_taper_window(8, 0), np.ones(8))


@pytest.mark.parametrize("size", [(1, 1), (7, 300), (257, 513), (1000, 1500), (224, 256), (999, 101)])
@pytest.mark.parametrize("center", [None, (0, 0), (5.5, 0.5)])
@pytest.mark.parametrize("symmetric", [True, False])
def test_grid_covers_the_image_with_a_margin_and_is_mirror_symmetric(size, center, symmetric):
    h, w = size
    if center is not None:  # keep it inside tiny images
        center = (min(center[0], w - 1), min(center[1], h - 1))
    tile, overlap = 32, 8
    g = make_grid(h, w, tile, overlap, center, symmetric=symmetric)  # (about the centre it reports)
    for starts, length, c in ((g.ys, h, g.center[1]), (g.xs, w, g.center[0])):
        assert list(starts) == sorted(set(starts))
        covered = np.zeros(length + 2 * (overlap // 2), bool)
        for s in starts:
            assert s + tile > 0 and s < length  # no tile misses the image
            covered[max(0, s + overlap // 2) : max(0, s + tile + overlap // 2)] = True
        assert covered.all()  # the image and a margin of overlap // 2 on both sides
        assert all(b - a <= tile - overlap for a, b in pairwise(starts))  # overlaps >= overlap
        for s in starts:  # mirror of every tile is a tile, or lies (partly) outside the image
            m = round(2 * c) - s - tile + 1
            assert m in starts or m < 0 or m + tile > length


@pytest.mark.parametrize(
    ("size", "symmetric", "asymmetric"), [((999, 999), 64, 49), ((101, 101), 4, 1), ((1, 1), 4, 1)]
)
def test_a_grid_that_need_not_be_symmetric_takes_fewer_tiles_on_odd_sizes(size, symmetric, asymmetric):
    """An odd length could only take the layout with a seam at its centre: 999x999 in 64 192-px tiles against 49
    (1x1 in 4). Spread and local stacks need no symmetry; even lengths are laid out as before."""
    assert len(make_grid(*size, 192, 32)) == symmetric and len(make_grid(*size, 192, 32, symmetric=False)) == asymmetric
    for length in range(2, 2000, 2):
        assert make_grid(length, 7, 192, 32, symmetric=False).ys == make_grid(length, 7, 192, 32).ys


def test_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        make_grid(10, 10, 32, 17)
    with pytest.raises(ValueError, match="outside"):
        make_grid(10, 10, 32, 8, center=(10, 3))
    with pytest.raises(ValueError, match="at least 1x1"):
        make_grid(0, 10, 32, 8)


def test_stitcher_weights_count_every_tile_exactly_once():
    g = make_grid(70, 90, 32, 8)
    st = Stitcher(g)
    for stack in gather_stacks(g, 4, "spread"):
        for t, k in zip(stack.tiles, stack.keep, strict=True):
            if k:
                st.add(t, np.ones((3, 32, 32), np.float32))
    assert np.array_equal(st.counts, np.ones(len(g)))
    # the separable weight equals the brute-force sum of the tiles' 2-D windows
    brute = np.zeros((70, 90))
    w2 = np.outer(st.window, st.window)
    pad = 64
    big = np.zeros((70 + 2 * pad, 90 + 2 * pad))
    for i in range(len(g)):
        y0, x0 = g.position(i)
        big[y0 + pad : y0 + pad + 32, x0 + pad : x0 + pad + 32] += w2
    brute = big[pad:-pad, pad:-pad]
    assert np.allclose(st.weights(), brute, rtol=1e-12)
    assert np.abs(st.finish() - 1).max() <= 1e-6


def test_stitcher_refuses_a_tile_added_twice_or_missing():
    g = make_grid(40, 40, 32, 8)
    st = Stitcher(g)
    st.add(0, np.zeros((3, 32, 32), np.float32))
    st.add(0, np.zeros((3, 32, 32), np.float32))
    with pytest.raises(RuntimeError, match="exactly once"):
        st.finish()


def test_restore_rejects_bad_input():
    m = FakeBackend()
    img = np.zeros((20, 20, 3), np.float32)
    with pytest.raises(ValueError, match="H x W x 3"):
        restore(np.zeros((20, 20), np.float32), m)
    with pytest.raises(ValueError, match="float"):
        restore(np.zeros((20, 20, 3), np.uint8), m)
    bad = img.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        restore(bad, m)
    with pytest.raises(ValueError, match="multiple of 8"):
        restore(img, m, tile=36)
    with pytest.raises(ValueError, match="strategy"):
        restore(img, m, strategy="random")
    with pytest.raises(ValueError, match="n must be"):
        restore(img, m, n=0, tile=32, overlap=8)


def test_progress_bar_only_on_a_terminal_unless_asked(capsys):
    """A large image gets a bar by default only when stderr is a terminal: logs stay free of tqdm lines."""
    img = np.zeros((1024, 1056, 3), np.float32)  # above the 1-MP default threshold
    restore(img, FakeBackend(), n=4, tile=256)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    restore(img, FakeBackend(), n=4, tile=256, progress=True)
    assert "restore 1056x1024" in capsys.readouterr().err


# --- Contracts found untested by mutation testing -------------------------------------------------


def test_default_overlap_is_32_px_at_most_a_quarter_of_the_tile():
    from isp_collab.restore.tiling import DEFAULT_OVERLAP, default_overlap

    assert DEFAULT_OVERLAP == 32  # restore, process, gather and the sidecar all lay out this grid
    for tile, expected in ((256, 32), (129, 32), (128, 32), (127, 31), (100, 25), (3, 0), (0, 0), (-8, 0)):
        assert default_overlap(tile) == expected, tile


def test_window_taper_is_capped_at_half_the_tile():
    # An overlap past tile // 2 would make the rising and falling tapers cross.
    assert np.array_equal(hann_taper_window(8, 6), hann_taper_window(8, 4))
    w = hann_taper_window(9, 9)
    assert np.array_equal(w, w[::-1]) and w[4] == 1 and (w[:4] < 1).all()


@pytest.mark.parametrize(("tile", "overlap"), [(32, 8), (32, 16), (17, 5), (24, 0)])
def test_grid_has_no_tile_beyond_the_margin_it_needs(tile, overlap):
    """Minimal cover: without its first (last) tile a grid no longer reaches overlap // 2 px past the image's
    first (last) pixel. (Images at least one tile long: a shorter one may keep a mirror pair of tiles.)"""
    margin = overlap // 2
    for length in range(tile, 4 * tile):
        for symmetric in (True, False):
            g = make_grid(length, 3, tile, overlap, symmetric=symmetric)
            for starts, n in ((g.ys, length), (make_grid(3, length, tile, overlap, symmetric=symmetric).xs, length)):
                assert starts[0] <= -margin and starts[-1] + tile - 1 >= n - 1 + margin  # covers
                if len(starts) > 1:
                    assert starts[1] > -margin and starts[-2] + tile - 1 < n - 1 + margin, (length, starts)


def test_grid_positions_and_indices_agree():
    g = make_grid(70, 90, 32, 8)
    assert g.shape[0] > 1 and g.shape[1] > 1
    pos = g.positions()
    assert pos.shape == (len(g), 2)
    for i in range(len(g)):
        assert tuple(pos[i]) == g.position(i) == (g.ys[i // len(g.xs)], g.xs[i % len(g.xs)])
        assert g.index_of(*g.position(i)) == i
    assert g.index_of(g.ys[0] + 1, g.xs[0]) is None


def test_one_pixel_tiles_without_overlap_are_the_pixels():
    g = make_grid(3, 5, tile=1, overlap=0)
    assert g.ys == (0, 1, 2) and g.xs == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError, match="at least 1x1"):
        make_grid(10, 0, 32, 8)
    with pytest.raises(ValueError, match="tile must be"):
        make_grid(10, 10, 0, 0)


@pytest.mark.parametrize(("h", "w"), [(1, 1), (40, 41), (257, 96)])
def test_grid_centre_defaults_to_the_image_centre_and_keeps_a_given_one_to_half_a_pixel(h, w):
    assert make_grid(h, w, 32, 8).center == ((w - 1) / 2, (h - 1) / 2)
    assert make_grid(h, w, 32, 8) == make_grid(h, w, 32, 8, center=((w - 1) / 2, (h - 1) / 2))
    assert make_grid(h, w, 32, 8, center=(0.3 * (w - 1), 0.76 * (h - 1))).center == (
        round(0.6 * (w - 1)) / 2,
        round(1.52 * (h - 1)) / 2,
    )
    for center in ((w - 1 + 0.5, 0), (0, h - 1 + 0.5), (-0.5, 0), (0, -0.5)):
        with pytest.raises(ValueError, match="outside"):
            make_grid(h, w, 32, 8, center=center)


def test_a_grid_that_need_not_be_symmetric_moves_its_centre_by_at_most_half_a_pixel():
    moved = 0
    for length in range(1, 300):
        g = make_grid(length, 3, 32, 8, symmetric=False)
        assert abs(g.center[1] - (length - 1) / 2) <= 0.5
        moved += g.center[1] != (length - 1) / 2
    assert moved > 0  # some lengths do take the half-pixel move


def test_neighbouring_tiles_overlap_by_overlap_or_overlap_plus_one():
    """Strides are tile - overlap, except at the seam between two mirror tiles (overlap + 1 where parity forces it)."""
    for tile, overlap in ((32, 8), (17, 5), (24, 0)):
        for length in range(1, 200):
            for symmetric in (True, False):
                ys = make_grid(length, 3, tile, overlap, symmetric=symmetric).ys
                assert all(tile - overlap - 1 <= b - a <= tile - overlap for a, b in pairwise(ys)), (length, ys)


def test_a_tie_between_the_two_mirror_layouts_goes_to_the_one_without_a_self_mirror_tile():
    # 7 px, 2-px tiles, no overlap, centre x = 0.5: a tile centred on x = 0.5 ([0, 2) and every 2 px) and the
    # seam layout (tiles meeting at x = 0.5: [-1, 1), [1, 3), ...) both take 4 tiles; the seam layout wins.
    g = make_grid(3, 7, tile=2, overlap=0, center=(0.5, 1))
    assert g.xs == (-1, 1, 3, 5)
    assert all(2 * x0 + 2 - 1 != 1 for x0 in g.xs)  # no tile is its own mirror


def test_stitcher_refuses_a_missing_tile():
    g = make_grid(40, 40, 32, 8)
    st = Stitcher(g)
    for i in range(1, len(g)):
        st.add(i, np.zeros((3, 32, 32), np.float32))
    with pytest.raises(RuntimeError, match="exactly once"):
        st.finish()


def test_a_tile_centred_on_the_centre_is_used_where_it_saves_a_tile():
    # 50 px, 32-px tiles, overlap 8 (stride 24, margin 4): a tile centred on x = 24.5 ([9, 41)) and one stride
    # either side cover [-4, 53] with 3 tiles; the seam layout (mirror tiles meeting at 24.5) needs 4:
    # -27, -3, 21, 45.
    assert make_grid(50, 50, 32, 8).ys == (-15, 9, 33)
    assert make_grid(27, 27, 17, 5).ys == (-7, 5, 17)  # odd tiles: [5, 22) is centred on 13
    with pytest.raises(ValueError, match="integer"):
        make_grid(10, True, 32, 8)
