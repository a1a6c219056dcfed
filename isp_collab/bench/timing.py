"""Timing primitives for the benchmarks: thread pools, wall-clock repetitions, peak memory, torch.mm throughput.

Used by :mod:`isp_collab.bench.speed` (runtime latency rows) and :mod:`isp_collab.bench.run`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def set_threads(threads: int) -> None:
    """Fix torch / OpenCV thread pools (call before any parallel work in the process)."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)
    cv2.setNumThreads(threads)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM`` of /proc/self/status (the high-water mark of this address space; unlike
    ``ru_maxrss``, which Linux carries over ``execve``, it does not include the parent's peak).
    Elsewhere ``getrusage`` (macOS reports bytes, others KiB).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if os.uname().sysname == "Darwin" else r / 1024


def time_fn(fn: Callable[[], Any], reps: int, warmup: int = 1, sync: Callable[[], None] | None = None) -> list[float]:
    """Seconds of ``reps`` calls of ``fn`` after ``warmup`` calls (``sync`` after each, e.g. CUDA)."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return times


def matmul_peak(threads: int, n: int = 2048, reps: int = 7) -> dict[str, float]:
    """Measured fp32 GFLOP/s of ``torch.mm`` on (n, n) matrices: 2 n^3 / median time.

    A reference rate for the speed table, not the hardware peak (other kernels can beat it).
    """
    import torch

    set_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(n, n, generator=g), torch.rand(n, n, generator=g)
    times = time_fn(lambda: torch.mm(a, b), reps, warmup=2)
    med = statistics.median(times)
    return {"n": n, "median_s": med, "gflops": 2 * n**3 / med / 1e9}


def summary(times: list[float], mpix: float) -> dict[str, Any]:
    """Median seconds of ``times`` and the derived ms per megapixel and megapixels per second."""
    med = statistics.median(times)
    return {"times": times, "median_s": med, "ms_per_mp": 1e3 * med / mpix, "mp_per_s": mpix / med}
