"""N>1 − N=1 validation gain over training seeds, with a 95% t-interval: one table per recipe family.

    .venv/bin/python benchmarks/seed_gain.py \\
        --family "shipped recipe" runs/mix/run-n1,runs/seed1/run-n1 runs/mix/run-n4,runs/seed1/run-n4 \\
        --family "ema 0.999" runs/ema/seed0/run-n1,... runs/ema/seed0/run-n4,... \\
        [--section seed-gain --note "what was run"]

Each family pairs baseline runs (N=1) with N>1 runs of the same seed, by position. Per seed: the best
validated mean PSNR of each run (from its ``log.jsonl``, the checkpoint that is shipped) and the last
validated one (free of checkpoint selection); then the gain's mean, standard deviation and 95% Student-t
interval over the seeds. Prints markdown; with ``--section`` also writes it into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from scipy import stats

from isp_collab.bench.report import check_section, md_table, publish, refuse

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def validated(run_dir: Path) -> list[dict]:
    """Validation records after step 0 of ``run_dir/log.jsonl``, in step order."""
    log = run_dir / "log.jsonl"
    if not log.is_file():
        refuse(f"{run_dir}: no log.jsonl (not a training run directory)")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    out = [r for r in records if "val" in r and r.get("step", 0) > 0]
    if not out:
        refuse(f"{run_dir}: no validation record after step 0 in log.jsonl")
    return out


def interval(gains: list[float]) -> str:
    """Mean ± sd and the 95% t-interval of the mean, or just the value for one seed."""
    mean = statistics.fmean(gains)
    if len(gains) < 2:
        return f"{mean:+.3f} (one seed)"
    sd = statistics.stdev(gains)
    half = stats.t.ppf(0.975, len(gains) - 1) * sd / len(gains) ** 0.5
    return f"{mean:+.3f} ± {sd:.3f} sd, 95% [{mean - half:+.3f}, {mean + half:+.3f}]"


def family_table(label: str, baselines: list[Path], runs: list[Path]) -> str:
    """Markdown: per seed the best and last validated PSNR of both runs and their gains; summary rows."""
    if len(baselines) != len(runs):
        refuse(f"{label}: {len(baselines)} baseline runs but {len(runs)} runs to pair them with")
    rows, best_gains, last_gains = [], [], []
    for b, r in zip(baselines, runs, strict=True):
        vb, vr = validated(b), validated(r)
        best_b = max(x["val"]["mean_psnr"] for x in vb)
        best_r = max(x["val"]["mean_psnr"] for x in vr)
        last_b, last_r = vb[-1]["val"]["mean_psnr"], vr[-1]["val"]["mean_psnr"]
        best_gains.append(best_r - best_b)
        last_gains.append(last_r - last_b)
        rows.append(
            [
                f"{b} / {r.name}",
                f"{best_b:.3f}",
                f"{best_r:.3f}",
                f"{best_gains[-1]:+.3f}",
                f"{last_b:.3f} / {last_r:.3f} (step {vr[-1]['step']})",
                f"{last_gains[-1]:+.3f}",
            ]
        )
    rows.append([f"**{len(runs)} seeds**", "", "", interval(best_gains), "", interval(last_gains)])
    header = ["N=1 run / N>1 run", "N=1 best", "N>1 best", "gain (best)", "N=1 / N>1 last", "gain (last)"]
    return f"**{label}**\n\n" + md_table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--family",
        nargs=3,
        action="append",
        required=True,
        metavar=("LABEL", "N1_RUNS", "NN_RUNS"),
        help="a label, comma-separated N=1 run directories, comma-separated N>1 run directories (same seed order)",
    )
    ap.add_argument("--section", help="RESULTS.md section to write (default: print only)")
    ap.add_argument("--note", default="", help="markdown paragraph put above the tables")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="let --section replace a section RESULTS.md holds, or one another command writes",
    )
    args = ap.parse_args()
    check_section(args.results, args.section, args.overwrite)
    tables = [
        family_table(label, [Path(p) for p in n1.split(",")], [Path(p) for p in nn.split(",")])
        for label, n1, nn in args.family
    ]
    body = "\n\n".join(([args.note] if args.note else []) + tables)
    publish(body, args.results, args.section, args.overwrite)


if __name__ == "__main__":
    main()
