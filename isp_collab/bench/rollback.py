"""All or nothing for a benchmark run: a run that fails or is interrupted takes back what it wrote.

A run writes its RESULTS.md sections, plots and parameter file one after the other; a failure half-way
(a corrupt model found late, Ctrl-C, ``kill``) would leave some sections new and others old, and a
retry would then be refused for the sections already written. :func:`all_or_nothing` keeps the bytes
of the files the action writes and the bodies of the RESULTS.md sections it writes, and puts them back
on any exception. Nothing else in the folder is touched: other files, and other sections of
RESULTS.md (another run into the same folder may be writing them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


@contextmanager
def all_or_nothing(
    folder: Path, created: bool, files: Sequence[Path], results: Path, sections: Sequence[str]
) -> Iterator[None]:
    """Run the body; on any exception undo its writes, then re-raise.

    ``folder`` created by this run: removed. Otherwise each of ``files`` gets its old bytes back (or is
    removed if it did not exist), and each of ``sections`` of ``results`` gets its old body back (or
    is removed); a ``results`` file the run created and left with no section is removed. Symlinks
    are left alone.
    """
    files = [p for p in files if not p.is_symlink()]
    before = {p: _read(p) for p in files}
    text_before = results.read_text(encoding="utf-8") if results.is_file() and not results.is_symlink() else None
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        _undo(before, results, text_before, sections)
        raise


def _undo(before: dict[Path, bytes | None], results: Path, text_before: str | None, sections: Sequence[str]) -> None:
    from ..atomic import atomic_write_bytes
    from .report import HEADER, merge_section, read_section, remove_section

    for path, old in before.items():
        if old is None:
            path.unlink(missing_ok=True)
        elif _read(path) != old:
            atomic_write_bytes(path, old, overwrite=True)
    if results.is_symlink() or not results.is_file():
        return
    text = current = results.read_text(encoding="utf-8")
    for name in sections:
        old = None if text_before is None else read_section(text_before, name)
        if old is None:
            text = remove_section(text, name)
        elif read_section(text, name) != old:
            text = merge_section(text, name, old)
    if text_before is None and text.strip() in ("", HEADER.strip()):
        results.unlink()
    elif text != current:
        atomic_write_bytes(results, text.encode("utf-8"), overwrite=True)
