"""tifffile's log kept off the terminal while this package reads a file's structure, thread by thread.

tifffile logs every tag or directory it cannot read (a damaged header gives dozens of lines, each shown twice once
logging is configured), while the reader here makes one error line of its own. The ``tifffile`` logger is the whole
process's: the first thread to enter :func:`quiet_tifffile` quiets it, the last to leave puts it back, and each
thread gets only the records its own reading made.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_open = 0  # readers inside quiet_tifffile now
_saved: tuple[int, bool] | None = None  # the logger's level and propagate flag before the first of them


class _PerThread(logging.Handler):
    """The messages of tifffile's records, kept per thread while any reader is inside :func:`quiet_tifffile`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        kept = self.messages.get(record.thread or 0)
        if kept is not None:
            kept.append(record.getMessage())


_handler = _PerThread()


@contextlib.contextmanager
def quiet_tifffile() -> Iterator[list[str]]:
    """While open, tifffile logs nothing to the terminal; yields the list of this thread's tifffile messages
    (errors and warnings: "invalid page offset 8", ...) made meanwhile."""
    global _open, _saved
    log = logging.getLogger("tifffile")
    me = threading.get_ident()
    mine: list[str] = []
    with _lock:
        if _open == 0:
            _saved = (log.level, log.propagate)
            log.setLevel(logging.WARNING)
            log.propagate = False
            log.addHandler(_handler)
        _open += 1
        outer = _handler.messages.get(me)  # a reader inside another of this thread's (nested)
        _handler.messages[me] = mine
    try:
        yield mine
    finally:
        with _lock:
            if outer is None:
                _handler.messages.pop(me, None)
            else:
                outer.extend(mine)
                _handler.messages[me] = outer
            _open -= 1
            if _open == 0 and _saved is not None:
                log.removeHandler(_handler)
                log.setLevel(_saved[0])
                log.propagate = _saved[1]
                _saved = None
