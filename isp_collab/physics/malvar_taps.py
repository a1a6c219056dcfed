"""Malvar, He & Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned color images",
ICASSP 2004, Fig. 2 (same values as colour-demosaicing's malvar2004.py): the 5x5 taps, x8, as plain lists.

Torch-free, so the pipeline's OpenCV demosaicker and the training data's torch one
(:func:`isp_collab.physics.noise.demosaic`) read the same numbers.
"""

from __future__ import annotations

G_AT_RB = [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]
# Red/blue at a green site whose same-row neighbours are the wanted colour (transposed: same-column).
RB_AT_G_ROW = [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]]
RB_AT_G_COL = [list(r) for r in zip(*RB_AT_G_ROW, strict=True)]
# Red at blue sites and blue at red sites.
RB_AT_BR = [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]
MALVAR_TAPS = (G_AT_RB, RB_AT_G_ROW, RB_AT_G_COL, RB_AT_BR)  # each / 8
