"""Tables of training runs (their ``log.jsonl``) for benchmarks/RESULTS.md: validation curves and best checkpoints.

Used for training experiments that are not the shipped models (e.g. what a stack is drawn from):

    .venv/bin/python benchmarks/runs_table.py runs/v2/run-n1 runs/v2/run-n4 \\
        --section stacks-sharpen --note "what was run, with which command"

Writes the section ``<!-- section:NAME -->`` of benchmarks/RESULTS.md (one it holds, or one ``isp-collab bench``
writes, only with ``--overwrite``): the note, the mean
validation PSNR per validated step (:func:`isp_collab.training.report.run_curves_section`), and for each run
its best checkpoint per validation condition with the difference to the first run given (the baseline).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from isp_collab.bench.report import check_section, md_table, publish, refuse
from isp_collab.training.report import run_curves_section

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def best_record(run_dir: Path) -> dict:
    """The validation record with the highest mean PSNR in ``run_dir/log.jsonl`` (ties: the earliest)."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    validated = [r for r in records if "val" in r and "step" in r and r["step"] > 0]
    if not validated:
        refuse(f"{run_dir}: no validation record after step 0 in log.jsonl")
    return max(validated, key=lambda r: (r["val"]["mean_psnr"], -r["step"]))


def best_table(run_dirs: list[Path]) -> str:
    """Markdown: per run, the best checkpoint's step, PSNR per condition and mean, and the gain over run 1."""
    bests = [best_record(d) for d in run_dirs]
    conditions = list(bests[0]["val"]["restored"])
    base = bests[0]["val"]
    header = ["run", "best step", *conditions, "mean", f"mean − {run_dirs[0].name}"]
    blurry = ["blurry input", "-", *(f"{base['blurry'][c]:.2f}" for c in conditions), f"{base['mean_blurry']:.2f}", ""]
    rows = [blurry]
    for d, rec in zip(run_dirs, bests, strict=True):
        v = rec["val"]
        gain = v["mean_psnr"] - base["mean_psnr"]
        cells = [f"{v['restored'][c]:.2f}" for c in conditions]
        rows.append([d.name, rec["step"], *cells, f"{v['mean_psnr']:.3f}", f"{gain:+.3f}"])
    return md_table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (with log.jsonl); the first is the baseline")
    ap.add_argument("--section", required=True, help="RESULTS.md section name")
    ap.add_argument("--note", required=True, help="markdown paragraph put above the tables")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="let --section replace a section RESULTS.md holds, or one another command writes",
    )
    args = ap.parse_args()
    check_section(args.results, args.section, args.overwrite)
    for d in args.runs:
        if not (d / "log.jsonl").is_file():
            refuse(f"{d}: no log.jsonl (not a training run directory)")
    curves = run_curves_section(args.runs, args.note)
    body = curves + "\nBest checkpoint of each run (PSNR in dB, linear RGB):\n\n" + best_table(args.runs)
    publish(body, args.results, args.section, args.overwrite)


if __name__ == "__main__":
    main()
