"""Staging of export artefacts: a private temp folder inside the output folder, moved into place at the end.

An export that fails leaves nothing half-written: the temp folder is removed, and so are the output
folders that the export itself created.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def missing_ancestors(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    out = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def prepare_out_dir(out: Path) -> tuple[list[Path], Path]:
    """Create ``out`` if needed and a private temp folder in it; returns (created folders, temp)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path exists and is not a folder")
    created = missing_ancestors(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=".export-", suffix=".tmp"))
    except OSError as e:
        remove_empty(created)
        raise ValueError(f"{out}: output folder is not writable ({e.strerror or e.__class__.__name__})") from None
    return created, tmp


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders this export created (deepest first), stopping at the first non-empty one."""
    for d in folders:  # deepest first
        try:
            d.rmdir()
        except OSError:
            break


def publish(src: Path, dst: Path, tmp: Path) -> None:
    """Move a finished file or package folder ``src`` to ``dst`` (replacing an old one)."""
    if dst.is_dir() and not dst.is_symlink():
        old = tmp / f"old-{dst.name}"
        os.replace(dst, old)  # a folder cannot be replaced in one rename: move the old one aside first
    os.replace(src, dst)
