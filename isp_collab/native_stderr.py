"""Capture what C libraries (LibRaw, libpng) print on file descriptor 2, so an error stays one line.

File descriptor 2 belongs to the whole process, so the redirection is shared: the first capture to
begin points fd 2 at a temporary file, the last one to end points it back, and each capture reads
what was written while it was open. Captures from several threads at once are safe (fd 2 always
comes back), but what any thread writes on fd 2 while one is open (a log line, a warning) lands in
that file too rather than on the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_open = 0  # captures now open
_saved_fd: int | None = None  # the real fd 2 while captures are open
_file = None  # the temporary file fd 2 points at while captures are open


@contextlib.contextmanager
def capture_stderr(lines: list[str]) -> Iterator[None]:
    """Collect what C code prints on file descriptor 2 into ``lines`` instead of the terminal."""
    global _open, _saved_fd, _file
    with _lock:
        if _open == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded interpreter)
                saved = None
            if saved is not None:
                _file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the last capture to end
                os.dup2(_file.fileno(), 2)
                _saved_fd = saved
        capturing = _saved_fd is not None
        if capturing:
            _open += 1
            start = os.fstat(_file.fileno()).st_size
    if not capturing:  # let it through
        yield
        return
    try:
        yield
    finally:
        with _lock:
            end = os.fstat(_file.fileno()).st_size
            said = os.pread(_file.fileno(), end - start, start) if end > start else b""
            _open -= 1
            if _open == 0:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
                _file.close()
                _saved_fd = _file = None
        lines.extend(said.decode(errors="replace").splitlines())
