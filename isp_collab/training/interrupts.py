"""How a training run meets Ctrl-C and SIGTERM: both checkpoint, and never in the middle of a step's update.

SIGTERM (``kill``, job schedulers; background jobs ignore SIGINT) is turned into an interrupt like
Ctrl-C for the run's duration; :func:`steps_are_whole` holds both while a step's update is applied, so
the checkpoint written on the way out is the state after a whole step (exact resume).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..signals import clear_terminated, raise_terminated

__all__ = ["interrupt_on_sigterm", "restore_sigterm", "steps_are_whole"]


def interrupt_on_sigterm() -> Any:
    """SIGTERM (``kill``, job schedulers) checkpoints like Ctrl-C. Background jobs ignore SIGINT.

    Returns the previous handler (None off the main thread), for :func:`restore_sigterm`.
    """
    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, raise_terminated)
    return None


def restore_sigterm(previous: Any) -> None:
    """Put back the SIGTERM handler :func:`interrupt_on_sigterm` replaced (nothing for None or off the main thread)."""
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
        clear_terminated()


@contextmanager
def steps_are_whole() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM while a step's update is applied; they act as soon as it is whole.

    So an interrupt never checkpoints weights that have seen a step the counter has not (exact resume).
    Off the main thread (no signal handlers there) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # raises KeyboardInterrupt / Terminated
            elif handler != signal.SIG_IGN:
                raise KeyboardInterrupt
