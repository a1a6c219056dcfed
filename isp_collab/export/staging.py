"""Staging of export artefacts: a private temp folder inside the output folder, moved into place at the end.

An export that fails leaves nothing half-written: the temp folder is removed, and so are the output
folders that the export itself created.
"""

from __future__ import annotations

import os
import shutil
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
    """Create ``out`` if needed and a private temp folder in it; returns (created folders, temp).

    Temp folders left by killed exports (their process is gone) are removed first.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path exists and is not a folder")
    created = missing_ancestors(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _sweep_stale(out)
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=".export-", suffix=".tmp"))
        (tmp / PID_FILE).write_text(str(os.getpid()))
    except OSError as e:
        remove_empty(created)
        raise ValueError(f"{out}: output folder is not writable ({e.strerror or e.__class__.__name__})") from None
    return created, tmp


PID_FILE = "pid"


def _sweep_stale(out: Path) -> None:
    """Remove ``.export-*.tmp`` folders of exports whose process no longer runs (SIGKILL, power loss)."""
    for folder in out.glob(".export-*.tmp"):
        try:
            pid = int((folder / PID_FILE).read_text())
            os.kill(pid, 0)  # raises when no such process
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):  # no pid file (or not ours to judge): leave it
            continue


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders this export created (deepest first), stopping at the first non-empty one."""
    for d in folders:  # deepest first
        try:
            d.rmdir()
        except OSError:
            break


def publish(moves: list[tuple[Path, Path]], tmp: Path, overwrite: bool) -> None:
    """Move finished files and package folders ``(src, dst)`` into place: all of them or none.

    Without ``overwrite`` a destination is never replaced, not even one that appeared while the
    export was building (FileExistsError). With it, old destinations are moved aside into ``tmp`` and
    put back if a later move fails. Any OSError leaves the destinations as they were.
    """
    placed: list[Path] = []
    aside: list[tuple[Path, Path]] = []
    try:
        for i, (src, dst) in enumerate(moves):
            if dst.exists() or dst.is_symlink():
                if not overwrite:
                    raise FileExistsError(f"{dst}: appeared while the export was running; not replaced")
                old = tmp / f"old-{i}-{dst.name}"
                os.replace(dst, old)
                aside.append((old, dst))
            _place(src, dst)
            placed.append(dst)
    except BaseException:
        for dst in reversed(placed):
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst, ignore_errors=True)
            else:
                dst.unlink(missing_ok=True)
        for old, dst in reversed(aside):
            os.replace(old, dst)
        raise


def _place(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, failing (FileExistsError) rather than replacing anything at ``dst``."""
    if src.is_dir():
        os.mkdir(dst)  # claims the name: fails if anything is there
        try:
            os.replace(src, dst)  # onto the empty folder just made
        except OSError:
            os.rmdir(dst)
            raise
        return
    try:
        os.link(src, dst)  # fails if dst exists
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: check, then rename
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(f"{dst}: exists; not replaced") from None
        os.replace(src, dst)
        return
    os.unlink(src)
