"""How much of a known blur's worth the collaboration recovers: blind models against known-blur specialists.

    .venv/bin/python benchmarks/known_blur.py \\
        --blind models/sharpen-unet-tx-n1 models/sharpen-unet-tx-n4 \\
        --known 1=runs/oracle/run-s1 2=runs/oracle/run-s2 3=runs/oracle/run-s3 4=runs/oracle/run-s4 \\
        [--section known-blur-sharpen --note "what was run"]

A *known-blur* run is a network trained on one blur only (a recipe with ``sigma_min = sigma_max``): it
does not have to infer the blur, so at its own σ it is what a blind network could reach if the blur
were given, at the same architecture and budget. A stack of N patches sharing one blur can at best
tell the network that blur, so the known-blur PSNR bounds what collaboration can add.

Per σ of the validation set: the blurry input, each blind model (the first is the N=1 baseline) at its
best validated mean (the checkpoint that is shipped), the known-blur run at its best validation *at
that σ* (the checkpoint a specialist would ship), the headroom (known − baseline) and, for every other
blind model, the share of that headroom it recovers. Runs are training run folders (``log.jsonl``) or
model folders (``train_log.jsonl``). Prints markdown; with ``--section`` also writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from isp_collab.bench.report import md_table, write_section

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def validations(run: Path) -> list[dict]:
    """The validation records after step 0 of a run folder (``log.jsonl``) or model folder (``train_log.jsonl``)."""
    log = next((run / name for name in ("log.jsonl", "train_log.jsonl") if (run / name).is_file()), None)
    if log is None:
        raise SystemExit(f"{run}: no log.jsonl or train_log.jsonl (not a training run or model folder)")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    out = [r for r in records if "val" in r and r.get("step", 0) > 0]
    if not out:
        raise SystemExit(f"{log}: no validation record after step 0")
    return out


def best_by(records: list[dict], key: str | None) -> dict:
    """The record with the highest PSNR at condition ``key`` (None: the mean); ties go to the earliest."""

    def score(r: dict) -> float:
        return r["val"]["mean_psnr"] if key is None else r["val"]["restored"][key]

    return max(records, key=lambda r: (score(r), -r["step"]))


def parse_known(items: list[str]) -> dict[str, Path]:
    """``SIGMA=RUN`` pairs as {"sigma=SIGMA": RUN} (the validation condition names of the logs)."""
    out = {}
    for item in items:
        sigma, sep, run = item.partition("=")
        try:
            value = float(sigma)
        except ValueError:
            value = None
        if not sep or not run or value is None or value <= 0:
            raise SystemExit(f"--known {item}: expected SIGMA=RUN_FOLDER, e.g. 2=runs/oracle/run-s2")
        out[f"sigma={value:g}"] = Path(run)
    return out


def known_blur_table(blind: list[Path], known: dict[str, Path]) -> str:
    """Markdown table, one row per σ of ``known`` (see the module docstring)."""
    bests = [best_by(validations(b), None) for b in blind]
    base = bests[0]["val"]
    rows = []
    for cond, run in known.items():
        if cond not in base["restored"]:
            raise SystemExit(
                f"{run}: {cond} is not a validation condition of {blind[0]} ({', '.join(base['restored'])})"
            )
        spec = best_by(validations(run), cond)
        k = spec["val"]["restored"][cond]
        headroom = k - base["restored"][cond]
        cells = [cond, f"{base['blurry'][cond]:.2f}"] + [f"{b['val']['restored'][cond]:.2f}" for b in bests]
        cells += [f"{k:.2f} (step {spec['step']})", f"{headroom:+.2f}"]
        for b in bests[1:]:
            gain = b["val"]["restored"][cond] - base["restored"][cond]
            share = f" ({gain / headroom:.0%})" if headroom > 0 else ""
            cells.append(f"{gain:+.2f}{share}")
        rows.append(cells)
    header = ["blur", "blurry input", *(f"{b.name}" for b in blind), "known blur", f"headroom over {blind[0].name}"]
    header += [f"{b.name} − {blind[0].name} (share of headroom)" for b in blind[1:]]
    return md_table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blind", nargs="+", type=Path, required=True, help="blind runs or models; the first is N=1")
    ap.add_argument("--known", nargs="+", required=True, help="SIGMA=RUN: a run trained on that blur only")
    ap.add_argument("--section", help="RESULTS.md section to write (default: print only)")
    ap.add_argument("--note", default="", help="markdown paragraph put above the table")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    table = known_blur_table(args.blind, parse_known(args.known))
    body = "\n\n".join(([args.note] if args.note else []) + [table])
    print(body)
    if args.section:
        write_section(args.results, args.section, body)
        print(f"wrote section {args.section} of {args.results}")


if __name__ == "__main__":
    main()
