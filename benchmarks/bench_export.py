#!/usr/bin/env python3
"""Export benchmark: conversion time, fidelity, PSNR change and ONNX Runtime CPU latency per variant.

Exports a model (ONNX fp32 / fp16 / int8, Core ML fp16 / fp32) for static stacks [1, N, 3, T, T]
into a temporary folder, then on blurry validation stacks (real photos, linear RGB, one Gaussian
blur per photo; :func:`isp_collab.export.calibration.validation_stacks`, a different seed from the
int8 calibration) measures:

- fidelity: max |diff| and PSNR of each ONNX variant's output against PyTorch fp32;
- quality: mean PSNR (dB, linear RGB, outputs clipped to [0, 1]) against the sharp tiles, and its
  change against PyTorch fp32 (issue targets: fp16 >= -0.05 dB, int8 >= -0.15 dB);
- latency: ONNX Runtime CPU, one stack per call, ``--threads`` intra-op threads; median and best
  of ``--runs`` timed calls after warm-up (the best is the figure least disturbed by other load).

Core ML packages are converted and their spec validated (prediction needs macOS). Prints a markdown
section for ``benchmarks/RESULTS.md``. The artefacts go to a temporary folder, removed however the run ends,
or with ``--keep DIR`` to that folder (artefacts already there are replaced only with ``--overwrite``).

    .venv/bin/python benchmarks/bench_export.py [--model sharpen-unet-tx-n4] [--n 4] [--tile 256]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    mse = float(np.mean((np.clip(x, 0, 1).astype(np.float64) - ref) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def latencies_ms(fns: dict, stack: np.ndarray, runs: int, warmup: int = 3) -> dict[str, tuple[float, float]]:
    """name -> (median, best) wall milliseconds of ``fn(stack)``.

    The calls are interleaved (one call of every variant per round) so that load from other
    processes hits all variants alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn(stack)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(stack)
            times[name].append(1000 * (time.perf_counter() - t))
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def cpu_name() -> str:
    """CPU model and whether it has AVX-512 VNNI (int8 dot products), from /proc/cpuinfo when available."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    vnni = "avx512_vnni" in info
    return f"{name or platform.machine()} ({'AVX-512 VNNI' if vnni else 'no AVX-512 VNNI'})"


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, every option given (``--keep`` and ``--overwrite`` when given)."""
    cmd = (
        f".venv/bin/python benchmarks/bench_export.py --model {args.model} --n {args.n} --tile {args.tile} "
        f"--stacks {args.stacks} --calibration-stacks {args.calibration_stacks} --runs {args.runs} "
        f"--threads {args.threads}"
    )
    cmd += (
        " --no-coreml" * args.no_coreml
        + (f" --keep {args.keep}" if args.keep else "")
        + " --overwrite" * args.overwrite
    )
    return cmd


def main(argv: list[str] | None = None) -> int:
    from isp_collab.bench.report import refuse
    from isp_collab.models import DEFAULT_MODEL

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL, help="shipped model name or folder")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--stacks", type=int, default=16, help="validation stacks for PSNR")
    p.add_argument("--calibration-stacks", type=int, default=8)
    p.add_argument("--runs", type=int, default=20, help="timed calls per variant")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, ORT and torch (default 1, as RESULTS.md)")
    p.add_argument("--no-coreml", action="store_true", help="skip the Core ML conversions")
    p.add_argument("--keep", type=Path, help="keep the artefacts in this folder")
    p.add_argument("--overwrite", action="store_true", help="with --keep: replace the artefacts already there")
    args = p.parse_args(argv)
    for flag in ("n", "tile", "stacks", "calibration_stacks", "runs", "threads"):
        if getattr(args, flag) < 1:
            refuse(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.overwrite and not args.keep:
        refuse("--overwrite applies to the artefacts of --keep DIR only; drop it, or name the folder")
    if args.keep is not None and args.keep.exists() and not args.keep.is_dir():
        refuse(f"{args.keep}: a file, not a folder (--keep takes the folder to keep the artefacts in)")
    if args.keep:
        return measure(args, args.keep)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:  # removed however the run ends
        return measure(args, Path(tmp))


def measure(args: argparse.Namespace, out_dir: Path) -> int:
    """Export into ``out_dir``, measure every variant and print the section (bad input: one line, exit 2)."""
    import onnxruntime as ort
    import torch

    from isp_collab import __version__
    from isp_collab.bench.report import refuse
    from isp_collab.export import export_model
    from isp_collab.export.calibration import validation_stacks
    from isp_collab.export.parity import onnx_session, run_onnx, run_torch
    from isp_collab.models import load_model

    torch.set_num_threads(args.threads)
    formats = ("onnx",) if args.no_coreml else ("onnx", "coreml")
    t0 = time.perf_counter()
    try:  # the model and every option are checked before anything is written
        model = load_model(args.model)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="coreml has no int8 variant")
            arts = export_model(
                args.model,
                n=args.n,
                tile=args.tile,
                formats=formats,
                precisions=("fp32", "fp16", "int8"),
                out_dir=out_dir,
                overwrite=args.overwrite,
                calibration_stacks=args.calibration_stacks,
            )
    except (ValueError, OSError) as e:  # WeightsError, FileExistsError, a folder that cannot be made
        refuse(str(e).splitlines()[0] if str(e) else type(e).__name__)
    export_total = time.perf_counter() - t0
    stacks = validation_stacks(args.n, args.tile, args.stacks, seed=2024, max_photos=64)
    photos = sorted({s.name for s in stacks})

    ref_out = [run_torch(model, s.blurry) for s in stacks]
    blurry_psnr = statistics.mean(psnr(s.blurry, s.sharp) for s in stacks)
    torch_psnr = statistics.mean(psnr(o, s.sharp) for o, s in zip(ref_out, stacks, strict=True))
    onnx_arts = [a for a in arts if a.format == "onnx"]
    sessions = {a.precision: onnx_session(a.path, threads=args.threads) for a in onnx_arts}
    fns = {"torch": lambda x: run_torch(model, x)}
    fns.update({p: (lambda x, sess=sess: run_onnx(sess, x)) for p, sess in sessions.items()})
    lat = latencies_ms(fns, stacks[0].blurry, args.runs)
    t_med, t_best = lat["torch"]
    rows = [
        (
            "PyTorch fp32 (reference)",
            "-",
            "-",
            "-",
            "-",
            f"{torch_psnr:.3f}",
            "0",
            f"{t_med:.1f}",
            f"{t_best:.1f}",
            f"{lat['fp32'][1] / t_best:.2f}x" if "fp32" in lat else "-",
        )
    ]
    for art in onnx_arts:
        outs = [run_onnx(sessions[art.precision], s.blurry) for s in stacks]
        diff = max(float(np.abs(o - r).max()) for o, r in zip(outs, ref_out, strict=True))
        fid = statistics.mean(psnr(o, np.clip(r, 0, 1)) for o, r in zip(outs, ref_out, strict=True))
        q = statistics.mean(psnr(o, s.sharp) for o, s in zip(outs, stacks, strict=True))
        med, best = lat[art.precision]
        speed = f"{lat['fp32'][1] / best:.2f}x" if "fp32" in lat else "-"
        size = f"{art.path.stat().st_size / 1e6:.2f} MB"
        rows.append(
            (
                f"ONNX {art.precision}",
                size,
                f"{art.seconds:.1f}",
                f"{diff:.1e}",
                f"{fid:.1f}",
                f"{q:.3f}",
                f"{q - torch_psnr:+.3f}",
                f"{med:.1f}",
                f"{best:.1f}",
                speed,
            )
        )
    coreml = [a for a in arts if a.format == "coreml"]
    delta = {r[0].split()[-1]: float(r[6]) for r in rows[1:]}
    best = {p: lat[p][1] for p in sessions}
    targets = []
    if "fp16" in delta:
        targets.append(
            f"fp16 Δ {delta['fp16']:+.3f} dB (target ≥ -0.05: {'met' if delta['fp16'] >= -0.05 else 'MISSED'})"
        )
    if "int8" in delta:
        faster = best["int8"] < best["fp32"]
        targets.append(
            f"int8 Δ {delta['int8']:+.3f} dB (target ≥ -0.15: {'met' if delta['int8'] >= -0.15 else 'MISSED'}), "
            f"{'faster' if faster else 'NOT faster'} than ONNX fp32 ({best['fp32'] / best['int8']:.2f}x)"
        )

    lines = [
        "<!-- section:export -->",
        "## Export: ONNX / Core ML variants",
        "",
        f"Model `{Path(str(args.model)).name}` (N={args.n}, tile {args.tile}); {len(stacks)} validation stacks from "
        f"{len(photos)} photos (linear RGB, Gaussian blur σ∈[1, 3] px + noise σ=0.005; int8 calibrated on "
        f"{args.calibration_stacks} other stacks). Blurry input: {blurry_psnr:.3f} dB. Latency: one "
        f"[1, {args.n}, 3, {args.tile}, {args.tile}] stack per call, ONNX Runtime {ort.__version__} CPU, "
        f"{args.threads} intra-op thread(s) (torch: the same), median and best of {args.runs} interleaved calls "
        "after 3 warm-up calls.",
        "",
        "| variant | size | conversion (s) | max abs diff vs torch | PSNR vs torch (dB) | PSNR vs sharp (dB) | "
        "Δ vs torch fp32 (dB) | latency median (ms) | latency best (ms) | speed-up vs ONNX fp32 (best) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    if targets:
        lines += ["", "Issue targets: " + "; ".join(targets) + "."]
    if coreml:
        lines += [
            "",
            "Core ML (ML Program, iOS16 target, spec validated on Linux; running it needs macOS): "
            + ", ".join(f"{a.precision} compute {a.seconds:.1f} s to convert" for a in coreml)
            + ".",
        ]
    lines += [
        "",
        f"Export of all variants: {export_total:.1f} s wall. Machine: {cpu_name()}, "
        f"{os.cpu_count()} logical CPUs; isp-collab {__version__}, torch {torch.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC.",
        f"Command: `{command_line(args)}`",
        "<!-- /section:export -->",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
