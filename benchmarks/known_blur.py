"""What knowing the blur is worth, beside what the stack gives: blind models, known-blur specialists, told networks.

    .venv/bin/python benchmarks/known_blur.py \\
        --blind models/sharpen-unet-tx-n1 models/sharpen-unet-tx-n4 \\
        --known 1=runs/oracle/run-s1 2=runs/oracle/run-s2 3=runs/oracle/run-s3 4=runs/oracle/run-s4 \\
        [--told runs/cond/told runs/cond/blind ...] [--plot gains.png] [--section known-blur-sharpen --note "..."]

Two references for the N>1 − N=1 gain of blind models:

- a *known-blur specialist* (``--known SIGMA=RUN``) is a network trained on one blur only (a recipe with
  ``sigma_min = sigma_max``): at its own σ it shows what one network *per blur* reaches at the same
  architecture and budget — knowing the blur and spending all its capacity on it;
- a *told* network (``--told TOLD BLIND``, from ``benchmarks/known_blur_conditioned.py``) is one network over
  the whole blur range given the exact blur as input, against the same network and loop with it hidden:
  what knowing the blur alone is worth, the most a stack could give if all it shared were the blur.

Per σ of the validation set: the blurry input, each blind model (the first is the N=1 baseline) at its
best validated mean (the checkpoint that is shipped), the specialist at its best validation *at that σ*
(the checkpoint a specialist would ship), its headroom over the baseline and, for every other blind model,
the share of that headroom it recovers; then the told − blind table. Runs are training run folders
(``log.jsonl``) or model folders (``train_log.jsonl``). Prints markdown; with ``--section`` also writes
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from isp_collab.bench.report import check_section, md_table, publish, refuse

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def validations(run: Path) -> list[dict]:
    """The validation records after step 0 of a run folder (``log.jsonl``) or model folder (``train_log.jsonl``)."""
    log = next((run / name for name in ("log.jsonl", "train_log.jsonl") if (run / name).is_file()), None)
    if log is None:
        refuse(f"{run}: no log.jsonl or train_log.jsonl (not a training run or model folder)")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    out = [r for r in records if "val" in r and r.get("step", 0) > 0]
    if not out:
        refuse(f"{log}: no validation record after step 0")
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
            refuse(f"--known {item}: expected SIGMA=RUN_FOLDER, e.g. 2=runs/oracle/run-s2")
        out[f"sigma={value:g}"] = Path(run)
    return out


def _checked(blind: list[Path], known: dict[str, Path]) -> list[dict]:
    """The best-mean validation record of every blind run; every σ of ``known`` must be one of their conditions."""
    bests = [best_by(validations(b), None) for b in blind]
    conditions = bests[0]["val"]["restored"]
    for cond, run in known.items():
        if cond not in conditions:
            refuse(f"{run}: {cond} is not a validation condition of {blind[0]} ({', '.join(conditions)})")
    return bests


def known_blur_table(blind: list[Path], known: dict[str, Path]) -> str:
    """Markdown table, one row per σ of ``known`` (see the module docstring)."""
    bests = _checked(blind, known)
    base = bests[0]["val"]
    rows = []
    for cond, run in known.items():
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


def told_gain(pairs: list[tuple[Path, Path]]) -> dict[str, float]:
    """{σ condition: mean over ``(told, blind)`` pairs of told − blind}, best-mean checkpoints of each run."""
    out: dict[str, list[float]] = {}
    for told, blind in pairs:
        t, b = best_by(validations(told), None)["val"]["restored"], best_by(validations(blind), None)["val"]["restored"]
        for cond in t:
            out.setdefault(cond, []).append(t[cond] - b[cond])
    return {cond: sum(v) / len(v) for cond, v in out.items()}


def told_table(pairs: list[tuple[Path, Path]]) -> str:
    """Markdown: per ``(told, blind)`` pair the best-mean and last validated mean PSNR of both and told − blind."""
    rows = []
    for told, blind in pairs:
        vt, vb = validations(told), validations(blind)
        bt, bb = best_by(vt, None)["val"]["mean_psnr"], best_by(vb, None)["val"]["mean_psnr"]
        lt, lb = vt[-1]["val"]["mean_psnr"], vb[-1]["val"]["mean_psnr"]
        rows.append([f"{told.name} / {blind.name}", f"{bb:.3f}", f"{bt:.3f}", f"{bt - bb:+.3f}"])
        rows[-1] += [f"{lb:.3f} / {lt:.3f} (step {vt[-1]['step']})", f"{lt - lb:+.3f}"]
    header = ["told run / blind run", "blind best", "told best", "told − blind (best)", "blind / told last"]
    return md_table([*header, "told − blind (last)"], rows)


def gains(
    blind: list[Path], known: dict[str, Path], told: list[tuple[Path, Path]] | None = None
) -> dict[str, dict[str, float]]:
    """{σ condition: {label: PSNR gain}}: the other blind runs over the first, the specialist over the first,
    and (with ``told``) one network told the blur over the same network blind (mean over the pairs)."""
    bests = _checked(blind, known)
    base = bests[0]["val"]["restored"]
    told_by_cond = told_gain(told) if told else {}
    out = {}
    for cond, run in known.items():
        row = {b.name: r["val"]["restored"][cond] - base[cond] for b, r in zip(blind[1:], bests[1:], strict=True)}
        if cond in told_by_cond:
            row[f"one network told the blur, over itself blind, mean of {len(told)} pairs"] = told_by_cond[cond]
        row["one network per σ (known blur)"] = best_by(validations(run), cond)["val"]["restored"][cond] - base[cond]
        out[cond] = row
    return out


def plot_gains(table: dict[str, dict[str, float]], baseline: str, path: Path) -> Path:
    """Grouped bars: per σ, each run's PSNR gain over ``baseline`` (PNG, written atomically)."""
    from isp_collab.bench.plots import _plt, _save

    plt = _plt()
    conds = list(table)
    names = list(table[conds[0]])
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(conds))]
        ax.bar(xs, [table[c][name] for c in conds], width, label=name)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(conds)), [c.replace("sigma=", "σ = ") for c in conds])
    ax.set_ylabel("PSNR gain (dB)")
    ax.set_title(f"Gains over {baseline}: what the stack recovers of a known blur (validation tiles)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blind", nargs="+", type=Path, required=True, help="blind runs or models; the first is N=1")
    ap.add_argument("--known", nargs="+", required=True, help="SIGMA=RUN: a run trained on that blur only")
    ap.add_argument("--section", help="RESULTS.md section to write (default: print only)")
    ap.add_argument("--note", default="", help="markdown paragraph put above the table")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="let --section replace a section RESULTS.md holds, or one another command writes",
    )
    ap.add_argument("--plot", type=Path, help="also draw the gains as bars (PNG)")
    ap.add_argument(
        "--told",
        nargs=2,
        action="append",
        type=Path,
        metavar=("TOLD_RUN", "BLIND_RUN"),
        help="a run told the blur and the same run blind (benchmarks/known_blur_conditioned.py); repeat for more seeds",
    )
    args = ap.parse_args()
    check_section(args.results, args.section, args.overwrite)
    known = parse_known(args.known)
    table = known_blur_table(args.blind, known)
    if args.told:
        table += "\n\nOne network told the blur against the same network blind (mean validation PSNR, dB):\n\n"
        table += told_table(args.told)
    if args.plot:
        print(f"wrote {plot_gains(gains(args.blind, known, args.told), args.blind[0].name, args.plot)}")
    body = "\n\n".join(([args.note] if args.note else []) + [table])
    publish(body, args.results, args.section, args.overwrite)


if __name__ == "__main__":
    main()
