"""Plot N=1 and N>1 best validation PSNR, and their gain, against one recipe setting (e.g. the patch size).

    .venv/bin/python benchmarks/gain_plot.py --xlabel "training patch (px)" --target 0.2 \\
        --point 16 runs/ps/run-n1-p16 runs/ps/run-n4-p16 --point 32 runs/ps/run-n1-p32 runs/ps/run-n4-p32 \\
        --out benchmarks/patch_size_gain.png

Each ``--point X N1_RUN NN_RUN`` is one setting: its two training run directories (with ``log.jsonl``), whose
best validation checkpoints (mean PSNR, dB, linear RGB; :func:`runs_table.best_record`) are plotted at X.
Left panel: both PSNRs (the blurry input's in the title); right panel: NN − N1, with the target as a dashed line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runs_table import best_record

from isp_collab.bench.plots import _plt, _save


def main(argv: list[str] | None = None) -> list[float]:
    """Write the plot; returns the gains (dB) in increasing X."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--point", nargs=3, action="append", required=True, metavar=("X", "N1_RUN", "NN_RUN"))
    ap.add_argument("--xlabel", required=True, help="what X is")
    ap.add_argument("--labels", nargs=2, default=("N=1", "N=4"), help="legend names of the two runs")
    ap.add_argument("--target", type=float, help="gain target (dB), drawn as a dashed line")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args(argv)
    points = sorted((float(x), best_record(Path(a)), best_record(Path(b))) for x, a, b in args.point)
    xs = [x for x, _, _ in points]
    n1 = [a["val"]["mean_psnr"] for _, a, _ in points]
    nn = [b["val"]["mean_psnr"] for _, _, b in points]

    fig, (left, right) = _plt().subplots(1, 2, figsize=(9, 3.6))
    left.plot(xs, n1, "o-", label=args.labels[0])
    left.plot(xs, nn, "s-", label=args.labels[1])
    blurry = points[0][1]["val"]["mean_blurry"]
    left.set(xlabel=args.xlabel, ylabel="best validation PSNR (dB)", xticks=xs, title=f"blurry input: {blurry:.2f} dB")
    left.legend()
    gains = [b - a for a, b in zip(n1, nn, strict=True)]
    right.bar(xs, gains, width=0.6 * min((b - a for a, b in zip(xs, xs[1:], strict=False)), default=1.0))
    for x, g in zip(xs, gains, strict=True):
        right.annotate(f"{g:+.2f}", (x, g), ha="center", va="bottom" if g >= 0 else "top")
    if args.target is not None:
        right.axhline(args.target, color="k", ls="--", lw=1, label=f"target +{args.target:g} dB")
        right.legend()
    right.axhline(0.0, color="grey", lw=0.8)
    right.margins(y=0.15)  # room for the labels
    right.set(xlabel=args.xlabel, ylabel=f"{args.labels[1]} − {args.labels[0]} (dB)", xticks=xs)
    print(f"wrote {_save(fig, args.out)}")
    return gains


if __name__ == "__main__":
    main()
