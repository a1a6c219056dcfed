"""Atomic file writes: a temp file in the target's folder, fsync, then a rename.

A reader never sees a partial file, a failed or interrupted write leaves nothing behind, a file that
exists is replaced only when the caller says so, and the folder is synced after the rename. Images,
checkpoints, sidecars and reports are written here (a model folder is published whole by
:func:`isp_collab.models.save_model`); errors are :class:`OutputError`, one line naming the file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputError(ValueError):
    """An output that cannot or must not be written; str(error) is one line naming the file."""


def check_output(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Fail early (before any work) if ``path`` exists and may not be overwritten, or is a folder."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a folder, expected an output file path")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: output exists (pass --overwrite to replace it)")
    parent = p.parent
    for d in (parent, *parent.parents):  # the first existing ancestor must be a folder
        if d.exists():
            if not d.is_dir():
                raise OutputError(f"{p}: cannot create output, {d} is not a folder")
            break
    return p


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Fail early (before any decoding) if no file can be created in ``folder``; returns it.

    A temporary file is created there and removed again: permission bits say nothing of a read-only
    mount, an ACL or root's rights, the file system does. A folder that does not exist yet is probed
    in the nearest existing folder above it, where it would be created. Raises :class:`OutputError`,
    one line naming the folder.
    """
    target = Path(folder)
    where = target
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        fd, name = tempfile.mkstemp(dir=where, prefix=".isp-collab-probe.", suffix=".tmp")
    except OSError as e:
        reason = e.strerror or str(e)
        if where == target:
            raise OutputError(f"{target}: cannot write to this output folder ({reason})") from None
        raise OutputError(f"{target}: cannot create this output folder in {where} ({reason})") from None
    os.close(fd)
    Path(name).unlink(missing_ok=True)
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> tuple[int, Path]:
    """An open, empty temporary file in ``path``'s folder (created if missing): (fd, its path)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"{path}: cannot write to {path.parent} ({e.strerror or e})") from None
    return fd, Path(name)


def _staged(p: Path, data: bytes) -> Path:
    """``data`` written and synced to a temporary file beside ``p``, with the usual permissions: its path."""
    fd, tmp = _temp_beside(p)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"{p}: cannot write ({e.strerror or e})") from None
        raise
    return tmp


def _publish(tmp: Path, p: Path, overwrite: bool) -> None:
    """Rename the staged ``tmp`` onto ``p`` (without ``overwrite`` never onto an existing file)."""
    try:
        if overwrite:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)  # atomic and never clobbers
            except FileExistsError:
                raise OutputError(f"{p}: output exists (pass --overwrite to replace it)") from None
            except OSError:  # a filesystem without hard links
                if p.exists():
                    raise OutputError(f"{p}: output exists (pass --overwrite to replace it)") from None
                os.replace(tmp, p)
    except OSError as e:
        raise OutputError(f"{p}: cannot write ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    _sync_folder(p.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A reader never sees a partial file, a failed write leaves nothing behind, and without
    ``overwrite`` an existing file is never replaced (hard-link publish fails if it exists).
    Raises :class:`OutputError` with a one-line message naming ``path``.
    """
    return atomic_write_files({path: data}, overwrite=overwrite)[0]


def atomic_write_files(files: dict[str | os.PathLike, bytes], *, overwrite: bool = False) -> list[Path]:
    """Write several files as one output (an image and its comparison): every file is written and synced to a
    temporary beside it first, and only then are they renamed into place, so a write that fails (a full disk)
    leaves every path as it was. Should a rename itself fail, the files this call created are removed again.
    Raises :class:`OutputError` naming the file."""
    paths = [check_output(path, overwrite=overwrite) for path in files]
    staged: list[Path] = []
    try:
        for p, data in zip(paths, files.values(), strict=True):
            staged.append(_staged(p, data))
        created: list[Path] = []
        try:
            for p, tmp in zip(paths, staged, strict=True):
                existed = p.exists()
                _publish(tmp, p, overwrite)
                if not existed:
                    created.append(p)
        except BaseException:
            for p in created:
                p.unlink(missing_ok=True)
            raise
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
    return paths


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename into it survives a crash (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (``torch.save``,
    ``safetensors``); when the block ends without error the file is synced, given ``mode`` (default: the
    usual permissions under the umask) and renamed onto ``path``, replacing it. On error or interrupt
    the temporary file is removed and ``path`` is untouched."""
    path = check_output(path, overwrite=True)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        yield tmp
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
            os.replace(tmp, path)
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
        _sync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
