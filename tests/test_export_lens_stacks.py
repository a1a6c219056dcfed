"""A lens model's export checks run on its own kind of stacks: the lens's blur, mirror tiles, flipped."""

import cv2
import numpy as np

from isp_collab.export.calibration import LensBlur, validation_stacks


def test_lens_stacks_are_mirror_tiles_flipped_into_one_orientation(tmp_path):
    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    top = np.concatenate([half, half[:, ::-1]], axis=1)
    cv2.imwrite(str(tmp_path / "symmetric.png"), np.concatenate([top, top[::-1]], axis=0))  # mirror-symmetric
    (stack,) = validation_stacks(4, 32, 1, seed=3, folder=tmp_path, lens=LensBlur("lens-a"))
    assert stack.sharp.shape == (1, 4, 3, 32, 32)
    for i in range(1, 4):  # flipped into one orientation, the four tiles of a symmetric photo are one
        np.testing.assert_array_equal(stack.sharp[0, i], stack.sharp[0, 0])
    assert not np.array_equal(stack.blurry[0, 0], stack.sharp[0, 0])
    (unaligned,) = validation_stacks(4, 32, 1, seed=3, folder=tmp_path, lens=LensBlur("lens-a", align=False))
    assert not np.array_equal(unaligned.sharp[0, 1], unaligned.sharp[0, 0])
