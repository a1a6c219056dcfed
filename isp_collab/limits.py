"""Caps the networks and every tool share, torch-free so that any layer may read them."""

from __future__ import annotations

# Largest stack size N every tool accepts (train, process, info, export): the shipped models are trained
# with N <= 8; restore caps N at the image's tile count (a larger stack would only repeat tiles).
MAX_N = 64
