"""All or nothing for a benchmark run: a run that fails or is interrupted leaves its output folder as it was.

A run writes its RESULTS.md sections, plots and parameter file one after the other; a failure half-way
(a corrupt model found late, Ctrl-C, ``kill``) would leave some sections new and others old, and a
retry would then be refused for the sections already written. :func:`all_or_nothing` keeps the bytes
of the folder's report files before the run and puts them back on any exception.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: What a benchmark run writes at the top of its output folder.
REPORT_SUFFIXES = (".md", ".png", ".json")


def _report_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir() if p.suffix in REPORT_SUFFIXES and p.is_file() and not p.is_symlink()}


@contextmanager
def all_or_nothing(folder: Path, created: bool) -> Iterator[None]:
    """Run the body; on any exception restore ``folder``'s report files (or remove ``folder`` if ``created``).

    Files the run added are removed, files it changed get their old bytes back (atomically); other
    files and sub-folders are never touched. The exception is re-raised.
    """
    from ..pipeline.io import atomic_write_bytes

    before = {name: path.read_bytes() for name, path in _report_files(folder).items()}
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        for name, path in _report_files(folder).items():
            old = before.get(name)
            if old is None:
                path.unlink(missing_ok=True)
            elif path.read_bytes() != old:
                atomic_write_bytes(path, old, overwrite=True)
        raise
