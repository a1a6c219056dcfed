"""SIGTERM as a clean interrupt: ``kill`` and job schedulers get the cleanup Ctrl-C gets.

Background jobs ignore SIGINT, so SIGTERM is how they are stopped. :class:`Terminated` is a
``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` cleanup (temporary outputs, the
training checkpoint) runs; the CLI then exits with the shell's code for each signal (130 for
SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import threading

EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


# A handler's exception lands in whatever Python code runs at that moment; inside a weakref callback or a
# __del__ Python prints "Exception ignored" and goes on. The signal is remembered so that the next
# check_terminated() (each stack of restore) raises it again.
_pending = False


def raise_terminated(signum: int, frame: object) -> None:  # noqa: ARG001
    """Signal handler: turn SIGTERM into :class:`Terminated` (and remember it, see :func:`check_terminated`)."""
    global _pending
    _pending = True
    raise Terminated


def check_terminated() -> None:
    """Raise :class:`Terminated` if a SIGTERM arrived whose exception was swallowed; cheap, call it in loops.

    Only on the main thread, where the handler raises too (a worker thread leaves the signal to it)."""
    global _pending
    if _pending and threading.current_thread() is threading.main_thread():
        _pending = False
        raise Terminated


def clear_terminated() -> None:
    """Forget a SIGTERM once its handler is uninstalled (the CLI and training do, on the way out)."""
    global _pending
    _pending = False


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_SIGTERM if isinstance(interrupt, Terminated) else EXIT_SIGINT
