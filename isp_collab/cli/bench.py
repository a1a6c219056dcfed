"""``isp-collab bench {quality,lens,speed,kernels,training,tune,all}``: regenerate benchmarks/RESULTS.md and its plots."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ACTIONS = ("quality", "lens", "speed", "kernels", "training", "tune", "all")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmarks: quality vs classical sharpeners, cost per runtime, the kernel-estimation experiment",
        description=(
            "Run a benchmark and write its section of RESULTS.md plus PNG plots in --out. "
            "quality: PSNR/SSIM of the blurry input, unsharp mask, Polyblur and the shipped models (paper §5.2), "
            "and the lens table; lens: the lens table alone; speed: params, GFLOPs/MP, latency per runtime, memory; kernels: the paper's §3 "
            "kernel-estimation experiment (KSIM vs N); tune: grid-search the classical sharpeners' parameters "
            "on the validation set (writes classical_params.json; not part of 'all'); training: tables and "
            "curves of the shipped models and the collaboration gain vs tile/stack size; all: machine info + "
            "kernels + training + quality + speed."
        ),
    )
    p.add_argument("action", choices=ACTIONS, help="which benchmark")
    p.add_argument(
        "--quick",
        action="store_true",
        help="check the machinery in under 2 minutes (tiny crops, 1-2 images, few repetitions); "
        "writes to a temporary folder unless --out is given",
    )
    p.add_argument("--images", type=Path, default=None, help="folder of colour images (default: benchmarks/data/val)")
    p.add_argument(
        "--out", type=Path, default=None, help="output folder for RESULTS.md and plots (default: benchmarks/)"
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for every runtime (default 1)")
    p.add_argument("--models", nargs="*", default=None, help="model names or folders (default: all shipped models)")
    p.add_argument(
        "--device", default=None, help="device for the networks in quality (default: CUDA when available, else CPU)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.data import BENCH_DIR
    from ..bench.run import (
        BenchOptions,
        bench_kernels,
        bench_lens_only,
        bench_quality,
        bench_speed,
        bench_training,
        bench_tune,
        write_machine,
    )
    from . import CLIError

    if args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    if args.images is not None and not args.images.is_dir():
        raise CLIError(f"{args.images}: no such image folder")
    _check_inputs(args)  # models, device, images: before anything is written
    if args.out is not None:
        out = args.out
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="isp-collab-bench-quick-"))
    else:
        out = BENCH_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"{out}: cannot create the output folder ({e.strerror})") from None
    opts = BenchOptions(
        out=out, quick=args.quick, images=args.images, threads=args.threads, models=args.models, device=args.device
    )
    print(f"bench {args.action}: writing to {out}{' (quick mode)' if args.quick else ''}, {args.threads} thread(s)")
    if args.action in ("kernels", "all"):
        bench_kernels(opts)
    if args.action == "tune":
        bench_tune(opts)
    if args.action in ("training", "all"):
        bench_training(opts)
    if args.action in ("quality", "all"):
        bench_quality(opts)
    if args.action == "lens":
        bench_lens_only(opts)
    if args.action in ("speed", "all"):
        bench_speed(opts)
    if opts.section("machine") == "machine":  # the canonical set: the machine the sections were measured on
        write_machine(opts)
    print(f"bench {args.action}: done, see {opts.results}")
    return 0


def _check_inputs(args: argparse.Namespace) -> None:
    """Refuse unknown models, an unusable device and an image folder without colour images, up front."""
    from ..bench.data import load_images
    from ..device import pick_device
    from ..models import read_card

    for name in args.models or []:
        read_card(name)
    if args.device is not None:
        pick_device(args.device)
    if args.images is not None:
        load_images(args.images, max_images=1)
