"""The demo as a user runs it: wall time of the whole ``isp-collab process`` command on the bundled DNG, per backend.

    .venv/bin/python benchmarks/demo_timing.py [--rounds 3] [--section demo-timing --overwrite]

Each run is the ``make demo`` command (``isp-collab process isp_collab/assets/blackmagic_pocket4k.dng -o OUT.png
--compare --overwrite``: decode, the stages, the PNG and the comparison image, with the command's imports) in a
fresh process, timed from outside: PyTorch (the shipped ``sharpen-unet-tx-n4``, restore's CPU defaults) and the
same model exported to ONNX fp32 and int8 (``export_model``, 256-px tiles, N=4; ``--onnx``, which does not import
torch), the three interleaved over ``--rounds`` rounds so that a slow spell of the machine hits each alike.
Then how far the int8 PNG is from the fp32 one: PSNR of the 8-bit PNGs, the share of pixels whose largest channel
difference exceeds 2 of 255 levels, and the count beyond 20.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from isp_collab.bench.report import check_section, md_table, publish, refuse

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
DEMO = HERE.parent / "isp_collab" / "assets" / "blackmagic_pocket4k.dng"
MODEL = "sharpen-unet-tx-n4"


def _command(out: Path, onnx: Path | None) -> list[str]:
    """The demo command (``make demo``'s), or the same with ``--onnx``; run with this interpreter's isp-collab."""
    backend = ["--onnx", str(onnx)] if onnx else ["--model", MODEL]
    return [
        sys.executable,
        "-m",
        "isp_collab",
        "process",
        str(DEMO),
        "-o",
        str(out),
        *backend,
        "--compare",
        "--overwrite",
    ]


def _timed(command: list[str]) -> float:
    """Wall seconds of ``command`` in a fresh process (every core, as a user runs it); a failure ends the benchmark
    with its error line."""
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        refuse(f"{' '.join(command[2:5])}: exit {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}")
    return seconds


def int8_distance(fp32_png: Path, int8_png: Path) -> tuple[float, float, int]:
    """(PSNR in dB, % of pixels whose largest channel difference is > 2 levels, pixels > 20 levels) of two 8-bit PNGs."""
    a, b = (cv2.imread(str(p), cv2.IMREAD_UNCHANGED).astype(np.float64) for p in (fp32_png, int8_png))
    worst = np.abs(a - b).max(axis=2)
    return 10 * np.log10(255**2 / np.mean((a - b) ** 2)), 100 * float(np.mean(worst > 2)), int(np.sum(worst > 20))


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--section", help="RESULTS.md section to write (default: print only)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--overwrite", action="store_true", help="let --section replace a section RESULTS.md holds")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        refuse(f"--rounds must be >= 1, got {args.rounds}")
    check_section(args.results, args.section, args.overwrite)
    from isp_collab.export.api import export_model

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="isp-collab-demo-timing-") as tmp:
        tmp = Path(tmp)
        print("exporting ONNX fp32 and int8 ...", flush=True)
        arts = export_model(MODEL, n=4, formats=("onnx",), precisions=("fp32", "int8"), out_dir=tmp / "export")
        files = {a.precision: a.path for a in arts}
        runs = {"PyTorch (make demo)": None, "ONNX Runtime fp32": files["fp32"], "ONNX Runtime int8": files["int8"]}
        outs = {label: tmp / f"out-{k}.png" for k, label in enumerate(runs)}
        times: dict[str, list[float]] = {label: [] for label in runs}
        for r in range(args.rounds):
            for label, onnx in runs.items():
                times[label].append(_timed(_command(outs[label], onnx)))
                print(f"round {r + 1}: {label}: {times[label][-1]:.1f} s", flush=True)
        psnr, share, count = int8_distance(outs["ONNX Runtime fp32"], outs["ONNX Runtime int8"])
    rows = [[label, f"{statistics.median(t):.1f}", f"{min(t):.1f}", f"{max(t):.1f}"] for label, t in times.items()]
    threads = f"all {os.cpu_count()} cores"
    body = "\n\n".join(
        [
            "## The demo, end to end\n\n"
            f"Wall time of the `make demo` command (`isp-collab process` of the bundled 4096x2160 DNG with `--compare`, "
            f"imports included) in a fresh process per run, {args.rounds} interleaved rounds, {threads}; the ONNX "
            f"runs use the shipped `{MODEL}` exported at N=4, 256-px tiles. Command: `.venv/bin/python "
            "benchmarks/demo_timing.py --section demo-timing --overwrite`.",
            md_table(["run", "median (s)", "min (s)", "max (s)"], rows).strip(),
            f"The int8 PNG against the fp32 one: **{psnr:.1f} dB**; {share:.1f}% of pixels differ by more than 2 of 255 "
            f"levels (the largest of their three channel differences), {count} by more than 20.",
            f"{time.perf_counter() - t0:.0f} s in all.",
        ]
    )
    publish(body, args.results, args.section, args.overwrite)
    return body


if __name__ == "__main__":
    main()
