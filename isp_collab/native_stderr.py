"""Capture what C libraries (LibRaw, libpng) print on file descriptor 2, so an error stays one line.

File descriptor 2 belongs to the whole process, so the redirection is shared: the first capture to
begin points fd 2 at a temporary file, the last one to end points it back, and each capture reads
what was written while it was open. Captures from several threads at once are safe (fd 2 always
comes back), but what any thread writes on fd 2 while one is open (a log line, a warning) lands in
that file too rather than on the terminal: keep captures around the C calls alone, and pass on (``pass_on``)
the lines the caller does not use; each line is passed on once, by the first capture over it to end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

_lock = threading.Lock()
_open = 0  # captures now open
_saved_fd: int | None = None  # the real fd 2 while captures are open
_file = None  # the temporary file fd 2 points at while captures are open
_passed = 0  # bytes of that file up to which what was written has been passed on (or left to a capture's caller)


def _redirect() -> None:
    """Point fd 2 at a new temporary file, keeping the real one in ``_saved_fd`` (nothing changes on failure)."""
    global _saved_fd, _file, _passed
    saved = tmp = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        tmp = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _restore, when the last capture ends
        os.dup2(tmp.fileno(), 2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded interpreter): let output through
        if saved is not None:
            os.close(saved)
        if tmp is not None:
            tmp.close()
        return
    _saved_fd, _file, _passed = saved, tmp, 0


def _restore() -> None:
    """Point fd 2 back at the real one and drop the temporary file."""
    global _saved_fd, _file
    saved, tmp = _saved_fd, _file
    _saved_fd = _file = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    try:
        os.dup2(saved, 2)
    finally:
        os.close(saved)
        tmp.close()


def _after_fork_in_child() -> None:
    """A child forked while a capture was open gets the real fd 2 back and a fresh lock."""
    global _lock, _open
    _lock = threading.Lock()
    _open = 0
    if _saved_fd is not None:
        _restore()


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def capture_stderr(lines: list[str], pass_on: bool | Callable[[str], bool] = False) -> Iterator[None]:
    """Collect what C code prints on file descriptor 2 into ``lines`` instead of the terminal.

    ``lines`` gets every line written on fd 2 while this capture was open, other threads' included. ``pass_on``:
    lines to write on to the real fd 2 when the capture ends (True: all; a callable: those it accepts, e.g. all but
    the C library's own words, which the caller turns into its error or warning), other threads' log lines that
    would otherwise be lost. A line is passed on once, by the first capture over it to end, even when two
    captures overlap; one a capture leaves to its caller is not passed on by a later one.
    """
    global _open, _passed
    with _lock:
        if _open == 0:
            _redirect()
        capturing = _saved_fd is not None
        if capturing:
            start = os.fstat(_file.fileno()).st_size
            _open += 1  # last: from here on the finally below takes it back
    if not capturing:  # let it through
        yield
        return
    said = b""
    onward: list[str] = []
    try:
        yield
    finally:
        with _lock:
            try:
                end = os.fstat(_file.fileno()).st_size
                said = os.pread(_file.fileno(), end - start, start) if end > start else b""
                if pass_on:  # what no capture has passed on (or kept) yet
                    fresh = said[max(0, _passed - start) :].decode(errors="replace").splitlines()
                    onward = [line for line in fresh if pass_on is True or pass_on(line)]
                    _passed = max(_passed, end)
            finally:
                _open -= 1
                if _open == 0:
                    _restore()
                if onward:  # the real fd 2, even while other captures hold fd 2
                    with contextlib.suppress(OSError):
                        os.write(_saved_fd if _saved_fd is not None else 2, "".join(f"{x}\n" for x in onward).encode())
        lines.extend(said.decode(errors="replace").splitlines())
