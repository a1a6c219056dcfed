"""The training section of ``benchmarks/RESULTS.md``: validation tables and PSNR-vs-step curves.

Reads only what training wrote next to the weights (``<model>/card.json`` and ``train_log.jsonl``),
so the section is regenerated from the models (the shipped ones by default), never typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..models.weights import MODELS_DIR, read_card, resolve_model_dir, shipped_models


def _model_dirs(models: list[str] | None) -> list[Path]:
    """Model folders: the given names or paths, else every shipped model."""
    if models is None:
        return [MODELS_DIR / n for n in shipped_models()]
    return [resolve_model_dir(m) for m in models]


def _curve(model_dir: Path) -> list[tuple[int, float]]:
    log = model_dir / "train_log.jsonl"
    if not log.is_file():
        return []
    pts = []
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if "val" in rec and "step" in rec:
            pts.append((rec["step"], rec["val"]["mean_psnr"]))
    return pts


def plot_curves(out: Path, task: str, models: list[str] | None = None) -> Path | None:
    """Validation PSNR vs step for every model of ``task`` (PNG); ``models`` default: the shipped ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dirs = [d for d in _model_dirs(models) if read_card(d).get("task") == task]
    if not dirs:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    blurry = None
    for d in dirs:
        pts = _curve(d)
        if pts:
            ax.plot([s for s, _ in pts], [p for _, p in pts], marker="o", ms=3, label=d.name)
        blurry = read_card(d)["validation"]["mean_blurry"]
    if blurry is not None:
        ax.axhline(blurry, color="grey", ls="--", lw=1, label="blurry input")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation PSNR (dB, linear RGB)")
    ax.set_title(f"{task}: validation PSNR during training (Set14 + Set5 tiles)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def training_section(plot_dir: Path, models: list[str] | None = None) -> str:
    """Markdown: one table per task (per-condition PSNR, blurry beside it, steps, wall clock) + plots.

    ``models``: model names or folders (labelled by folder name); default: every shipped model.
    """
    lines = []
    dirs = _model_dirs(models)
    for task in ("sharpen", "lens"):
        cards = {d.name: read_card(d) for d in dirs if read_card(d).get("task") == task}
        if not cards:
            continue
        conds = list(next(iter(cards.values()))["validation"]["restored"])
        lines.append(f"### {task}\n")
        lines.append(f"Protocol: {next(iter(cards.values())).get('validation_protocol', '')}.\n")
        lines.append(
            "Each model is the checkpoint with the best mean validation PSNR (validated every 500 steps) on this "
            "same validation set; "
            + (
                "siblings share recipe, seed, steps and patches per step, and differ only in N. "
                if models is None
                else "models given with `--models`. "
            )
            + "Wall clock is training time (validation excluded) while the runs shared the 2-core CPU.\n"
        )
        lines.append(
            "| model | N | " + " | ".join(conds) + " | mean | gain over blurry | steps | patches/step | wall clock |"
        )
        lines.append("|---" * (len(conds) + 7) + "|")
        first = next(iter(cards.values()))["validation"]
        lines.append(
            "| blurry input | - | "
            + " | ".join(f"{first['blurry'][c]:.2f}" for c in conds)
            + f" | {first['mean_blurry']:.2f} | - | - | - | - |"
        )
        for n, c in cards.items():
            v = c["validation"]
            lines.append(
                f"| `{n}` | {c['n_trained']} | "
                + " | ".join(f"{v['restored'][k]:.2f}" for k in conds)
                + f" | **{v['mean_psnr']:.2f}** | {v['mean_psnr'] - v['mean_blurry']:+.2f} | {c['steps']} | "
                f"{c['patches_per_step']} x {c['patch']}² | {c['wall_clock_s'] / 60:.0f} min |"
            )
        plot = plot_curves(plot_dir / f"training_{task}.png", task, models)
        if plot:
            lines.append(f"\n![{task} validation PSNR vs step]({plot.name})\n")
    return "\n".join(lines) + "\n"


def run_curves_section(run_dirs: list[Path], note: str) -> str:
    """Markdown table of mean validation PSNR per validated step for training runs (their ``log.jsonl``)."""
    curves = {}
    for d in run_dirs:
        pts = {}
        for line in (Path(d) / "log.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if "val" in rec and "step" in rec:
                pts[rec["step"]] = rec["val"]["mean_psnr"]
        curves[Path(d).name] = pts
    steps = sorted({s for pts in curves.values() for s in pts})
    lines = [
        note,
        "",
        "| run | " + " | ".join(f"step {s}" for s in steps) + " | best |",
        "|---" * (len(steps) + 2) + "|",
    ]
    for name, pts in curves.items():
        cells = [f"{pts[s]:.3f}" if s in pts else "-" for s in steps]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | **{max(pts.values()):.3f}** |")
    return "\n".join(lines) + "\n"
