"""Argument types for the commands' output paths: an empty name (an unset ``$OUT``) is refused, as a ``Path``
it would silently be the current folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def nonblank(text: str) -> str:
    """An output path as typed (a trailing "/" still says "a folder"), refused when empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset variable?): name the output")
    return text


def path_arg(text: str) -> Path:
    """An output folder or file, refused when empty."""
    return Path(nonblank(text))
