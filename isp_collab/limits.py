"""Caps the networks and every tool share, torch-free so that any layer may read them."""

from __future__ import annotations

# Largest stack size N every tool accepts (train, process, info, export): the shipped models are trained
# with N <= 8; restore caps N at the image's tile count (a larger stack would only repeat tiles).
MAX_N = 64

# Largest tile side every tool accepts (restore, process, gather, export): one [1, N, 3, T, T] stack and its
# activations stay in memory (a [1, 8, 3, 4096, 4096] float32 stack is 1.6 GB); whole images go tile by tile.
MAX_TILE = 4096
