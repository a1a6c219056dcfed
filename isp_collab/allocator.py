"""glibc's allocator, set for whole-image CPU inference: ``isp-collab process`` sets it when a network runs
with PyTorch on the CPU; a library user may call it too (it changes the whole process's allocator).

A network call on a 256 px stack allocates tens of MB of activations and frees them again. glibc serves
blocks above its mmap threshold with fresh ``mmap`` pages, so every call pays page faults for memory it
just gave back (45-67k faults a call on the 4K demo). Raising the threshold to glibc's maximum (32 MiB)
and never trimming the heap lets the calls reuse it. Measured on ``make demo`` (4K DNG, sharpen N=4, torch,
2 threads, end to end, two runs each): 14.2-15.3 s before; 12.1-13.9 s with one stack per network call
(``restore``'s CPU default); 10.3-10.9 s with this as well; the PNG is byte-identical. The cost is that
freed memory stays with the process until it exits. The environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do the
same for any process; when either (or a ``glibc.malloc.*`` entry of ``GLIBC_TUNABLES``) is set, it wins and
nothing is changed here.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1 << 30

_done = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process; True when they are set now or were before.

    A no-op (False) off Linux/glibc, or when the user set the allocator through the environment."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if (
        any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))
        or "glibc.malloc." in tunables
    ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
