"""Sharpen's luma detail transfer: no colour fringes, grey detail in white-balanced space."""

import numpy as np

from isp_collab.restore.detail import LUMA_WEIGHTS, transfer_luma_detail


def test_no_change_stays_no_change():
    x = np.random.default_rng(0).random((8, 9, 3), dtype=np.float32)
    np.testing.assert_array_equal(transfer_luma_detail(x, x, (2.0, 1.0, 1.8)), x)


def test_detail_is_grey_after_white_balance_and_keeps_the_luma_change():
    rng = np.random.default_rng(1)
    g = np.array([2.2, 1.0, 1.9], dtype=np.float32)
    before = rng.random((6, 7, 3), dtype=np.float32) * 0.3
    after = before.copy()
    after[..., 1] -= 0.05  # a green-only undershoot: would be a magenta fringe after white balance
    out = transfer_luma_detail(before, after, g)
    change = (out - before) * g  # in white-balanced space
    np.testing.assert_allclose(change[..., 0], change[..., 1], atol=1e-6)
    np.testing.assert_allclose(change[..., 2], change[..., 1], atol=1e-6)
    np.testing.assert_allclose(change @ LUMA_WEIGHTS, ((after - before) * g) @ LUMA_WEIGHTS, atol=1e-6)
