"""Whole-image restoration cost: throughput (MP/s) and peak memory (RSS) of ``isp_collab.restore.restore``.

Each image size runs in its own subprocess so that its peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``)
belongs to that run alone: interpreter + torch + model + the float32 input image + restore's
working memory. "baseline" is the RSS just before ``restore`` is called (input already allocated),
so ``peak - baseline`` is what restoration itself adds. Network: UNet-TX N=4 with fresh
``create_model`` weights (cost does not depend on the weights), torch CPU, tile 256, overlap 32.

    .venv/bin/python benchmarks/bench_restore.py                  # 12 MP and 24 MP, spread
    .venv/bin/python benchmarks/bench_restore.py --sizes 12 --formats  # + NCHW vs channels-last per batch
    .venv/bin/python benchmarks/bench_restore.py --sizes 1,6 --host    # the host's share alone (see --host)

Prints a markdown table (for benchmarks/RESULTS.md) with the machine, versions, threads and the
load average (other jobs on the machine slow the figures down; the load is printed to judge that).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

# width x height of the measured frames (4:3, like most camera sensors)
SIZES = {12: (4000, 3000), 24: (5656, 4242), 6: (2828, 2121), 1: (1155, 866)}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    import numpy as np
    import torch

    from isp_collab.models import create_model
    from isp_collab.restore import TorchBackend, restore

    if args.threads:
        torch.set_num_threads(args.threads)
    backend = TorchBackend(create_model("unet-tx", n=4), "cpu", channels_last=args.channels_last)
    warm = np.random.default_rng(1).random((300, 300, 3), dtype=np.float32)
    restore(warm, backend, n=4, strategy=args.strategy, tile=256, overlap=32, batch_size=args.batch_size)
    w, h = args.width, args.height
    image = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    base = rss_mb()
    t0 = time.perf_counter()
    out = restore(
        image, backend, n=4, strategy=args.strategy, tile=256, overlap=32, batch_size=args.batch_size, progress=False
    )
    dt = time.perf_counter() - t0
    assert out.shape == image.shape
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(
        json.dumps(
            {
                "w": w,
                "h": h,
                "seconds": dt,
                "mp_s": w * h / 1e6 / dt,
                "baseline_mb": base,
                "peak_mb": peak,
                "threads": torch.get_num_threads(),
                "channels_last": backend.channels_last,
            }
        )
    )


def formats(threads: int | None, reps: int) -> list[tuple[str, float]]:
    """Network-only seconds per mini-batch (4 stacks of 4 x 256^2), NCHW vs channels-last, min of interleaved reps."""
    import numpy as np
    import torch

    from isp_collab.models import create_model
    from isp_collab.restore import TorchBackend

    if threads:
        torch.set_num_threads(threads)
    model = create_model("unet-tx", n=4)
    x = np.random.default_rng(0).random((4, 4, 3, 256, 256), dtype=np.float32)
    backends = {
        "NCHW": TorchBackend(model, "cpu", channels_last=False),
        "channels-last": TorchBackend(model, "cpu", channels_last=True),
    }
    best = {k: float("inf") for k in backends}
    for b in backends.values():
        b.run(x)  # warm-up: oneDNN primitive creation
    for _ in range(reps):  # interleaved, so background load hits both alike
        for k, b in backends.items():
            t = time.perf_counter()
            b.run(x)
            best[k] = min(best[k], time.perf_counter() - t)
    return list(best.items())


class PassThrough:
    """A backend that returns its stacks unchanged: what is left of ``restore`` is the host's work."""

    n = None
    tile = None
    multiple = 8

    def run(self, stacks):
        return stacks.copy()


def host_only(sizes: list[int], strategy: str, batch_size: int, reps: int) -> list[tuple[int, float]]:
    """(N, ms per megapixel) of ``restore`` with :class:`PassThrough`, min of ``reps``, per N in 1, 4, 8,
    over the frames of ``sizes``: tiling, gathering, flips, batching and stitching, no network.

    On a GPU this is what remains on the CPU around each network call.
    """
    import numpy as np

    from isp_collab.restore import restore

    out = []
    for n in (1, 4, 8):
        best = float("inf")
        for size in sizes:
            w, h = SIZES[size]
            image = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
            for _ in range(reps):
                t = time.perf_counter()
                restore(
                    image,
                    PassThrough(),
                    n=n,
                    strategy=strategy,
                    tile=256,
                    overlap=32,
                    batch_size=batch_size,
                    progress=False,
                )
                best = min(best, (time.perf_counter() - t) / (w * h / 1e6))
        out.append((n, 1000 * best))
    return out


def check_args(args: argparse.Namespace) -> list[int]:
    """The megapixel sizes of ``--sizes``; a bad option ends the script in one line (exit 2) before any measurement."""
    from isp_collab.bench.report import refuse

    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        refuse(f"--sizes {args.sizes}: expected comma-separated megapixel sizes from {','.join(map(str, SIZES))}")
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        refuse(f"--sizes {args.sizes}: no {unknown[0]} MP frame; choose from {','.join(map(str, SIZES))}")
    for flag in ("reps", "batch_size", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            refuse(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    return sizes


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="12,24", help="comma-separated megapixel sizes from " + ",".join(map(str, SIZES)))
    p.add_argument("--strategy", default="spread", choices=["spread", "local", "mirror"])
    p.add_argument(
        "--batch-size",
        type=int,
        default=2,
        help="stacks per network call (default 2; restore() uses 1 on the CPU, 2 on a GPU)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--channels-last", type=int, choices=[0, 1], default=None, help="default: backend's choice")
    p.add_argument("--formats", action="store_true", help="also time NCHW vs channels-last per mini-batch")
    p.add_argument("--reps", type=int, default=5, help="repetitions for --formats and --host (default 5)")
    p.add_argument("--host", action="store_true", help="only time the host's work (a pass-through backend), per N")
    p.add_argument("--child", nargs=2, type=int, metavar=("W", "H"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = check_args(args)
    if args.channels_last is not None:
        args.channels_last = bool(args.channels_last)
    if args.child:
        args.width, args.height = args.child
        child(args)
        return

    if args.host:
        for n, ms in host_only(sizes, args.strategy, args.batch_size, args.reps):
            print(f"host work of restore (no network), N={n}, {args.strategy}: {ms:.0f} ms/MP")
        return

    import numpy as np
    import torch

    load0 = os.getloadavg()
    rows = []
    for mp in sizes:
        w, h = SIZES[mp]
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(w),
            str(h),
            "--strategy",
            args.strategy,
            "--batch-size",
            str(args.batch_size),
        ]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.channels_last is not None:
            cmd += ["--channels-last", str(int(args.channels_last))]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            sys.exit(f"measurement for {w}x{h} failed:\n{res.stderr}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  {w}x{h}: {rows[-1]['seconds']:.1f} s", file=sys.stderr)
    fmt = formats(args.threads, args.reps) if args.formats else []
    load1 = os.getloadavg()

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"## Whole-image restoration (`benchmarks/bench_restore.py`, {time.strftime('%Y-%m-%d')})\n")
    print(
        f"UNet-TX N=4 (fresh weights), torch {torch.__version__} CPU, numpy {np.__version__}, {cpu}, "
        f"{os.cpu_count()} cores, {rows[0]['threads']} torch threads, channels-last {rows[0]['channels_last']}, "
        f"tile 256, overlap 32, strategy {args.strategy}, batch {args.batch_size} stacks. "
        f"Load average {load0[0]:.1f} before / {load1[0]:.1f} after (other jobs share the CPU).\n"
    )
    print(
        "| image | megapixels | time (s) | throughput (MP/s) | RSS before restore (MiB) | peak RSS (MiB) | added by restore (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mp = r["w"] * r["h"] / 1e6
        print(
            f"| {r['w']}x{r['h']} | {mp:.1f} | {r['seconds']:.1f} | {r['mp_s']:.2f} | {r['baseline_mb']:.0f} | "
            f"{r['peak_mb']:.0f} | {r['peak_mb'] - r['baseline_mb']:.0f} |"
        )
    if fmt:
        print("\n| memory format | s per mini-batch (4 x 4 x 256², min of reps) | tile MP/s |")
        print("|---|---:|---:|")
        for name, s in fmt:
            print(f"| {name} | {s:.3f} | {16 * 256 * 256 / 1e6 / s:.2f} |")


if __name__ == "__main__":
    main()
