"""Paths written in a TOML file (a training recipe, a pipeline config) are read from that file's folder."""

from __future__ import annotations

import os
from pathlib import Path


def beside(config_file: str | os.PathLike, path: str) -> str:
    """``path`` as written in ``config_file``: ``~`` expanded, a relative path taken from the file's folder."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(Path(config_file).parent, path))
