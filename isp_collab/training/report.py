"""The training section of ``benchmarks/RESULTS.md``: validation tables and PSNR-vs-step curves.

Reads only what training wrote next to the weights (``<model>/card.json`` and ``train_log.jsonl``,
whose ``start`` record holds the recipe, device and process count), so the section is regenerated
from the models (the shipped ones by default), never typed by hand: the validation cadence, the
validation data and the circumstances of the wall clock come from there, and what the files do not
record is not claimed.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models.weights import models_dir, read_card, resolve_model_dir, shipped_models
from .config import TASK_ONLY_KEYS, Recipe

#: Recipe keys that do not change what a run learns (left out when comparing recipes).
EXECUTION_KEYS = ("name", "path", "sha256", "model.n", "train.threads", "train.ckpt_every", "data.max_megabytes")


def _model_dirs(models: list[str] | None) -> list[Path]:
    """Model folders: the given names or paths, else every shipped model."""
    if models is None:
        return [models_dir() / n for n in shipped_models()]
    return [resolve_model_dir(m) for m in models]


def _log(model_dir: Path) -> list[dict[str, Any]]:
    log = model_dir / "train_log.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _curve(model_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["val"]["mean_psnr"]) for r in _log(model_dir) if "val" in r and "step" in r]


def run_facts(model_dir: Path) -> dict[str, Any]:
    """What the model's log records about its run: recipe, device, processes, validated steps.

    Keys: ``recipe`` (dict or None), ``device`` / ``world`` / ``threads`` (None when not logged),
    ``val_steps`` (steps with a validation record).
    """
    records = _log(model_dir)
    start = next((r for r in records if r.get("event") == "start"), {})
    recipe = start.get("recipe")
    threads = start.get("threads", (recipe or {}).get("train", {}).get("threads"))
    return {
        "recipe": recipe,
        "device": start.get("device"),
        "world": start.get("world"),
        "threads": threads,
        "val_steps": [r["step"] for r in records if "val" in r and "step" in r],
    }


def val_cadence(facts: dict[str, Any]) -> str:
    """``"500"``: the recipe's ``val_every``, else the step between logged validations, else ``"? (...)"``."""
    every = ((facts["recipe"] or {}).get("train") or {}).get("val_every")
    if every is None:
        steps = facts["val_steps"]
        gaps = {b - a for a, b in zip(steps, steps[1:], strict=False) if b > a}
        every = min(gaps) if gaps else None
    return "? (no recipe or train_log.jsonl says)" if every is None else str(every)


def val_data(facts: dict[str, Any]) -> str:
    """The validation data of the run, from its recipe (``"photos of `x`"``, ``"procedural dead leaves ..."``)."""
    recipe = facts["recipe"]
    if recipe is None:
        return "not recorded (no start record in train_log.jsonl)"
    folders = recipe.get("data", {}).get("val_images") or []
    val = recipe.get("val", {})
    if folders:
        cap = f", at most {val['max_images']}" if "max_images" in val else ""
        # logged as training resolved them (a recipe's folders from the recipe, flags as given): a relative one is
        # relative to where `isp-collab train` ran, which the log does not record
        relative = any(not Path(f).expanduser().is_absolute() for f in folders)
        where = " (as logged: relative to the folder `isp-collab train` ran in, not recorded)" if relative else ""
        return "photos of " + ", ".join(f"`{f}`" for f in folders) + cap + where
    return f"procedural dead leaves ({val.get('dead_leaves_images', '?')} images, seed {val.get('seed', '?')})"


def _val_label(facts: dict[str, Any]) -> str:
    """Short form for a plot title."""
    recipe = facts["recipe"]
    if recipe is None:
        return "validation data not recorded"
    folders = recipe.get("data", {}).get("val_images") or []
    return " + ".join(Path(f).name for f in folders) + " tiles" if folders else "dead-leaves tiles"


def circumstances(facts: dict[str, Any]) -> str:
    """Where the wall clock was measured, as logged: device, processes, threads."""
    if facts["device"] is None:
        return "not recorded"
    threads = facts["threads"]
    t = "torch's default threads" if not threads else f"{threads} thread(s)"
    world = facts["world"] or 1
    return f"{facts['device']}, {world} process{'es' if world > 1 else ''}, {t}"


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = json.dumps(v, sort_keys=True)
    return out


def recipe_differences(recipes: list[dict[str, Any] | None]) -> list[str] | None:
    """Recipe keys (``data.noise``) that differ between the runs, beyond N and execution settings.

    A key a run's log lacks (logged before the option existed) counts as the option's default, the
    behaviour that run had; a key no run's task reads (:data:`TASK_ONLY_KEYS`) is not compared. None when a
    recipe was not logged.
    """
    if any(r is None for r in recipes):
        return None
    defaults = _flat(dataclasses.asdict(Recipe(name="")))
    flats = [{**defaults, **_flat(r)} for r in recipes]  # type: ignore[arg-type]
    tasks = {json.loads(f["task.name"]) for f in flats}
    unread = {k for task, keys in TASK_ONLY_KEYS.items() if task not in tasks for k in keys}
    keys = sorted({k for f in flats for k in f} - set(EXECUTION_KEYS) - unread)
    return [k for k in keys if len({f.get(k) for f in flats}) > 1]


def _same(values: list[Any]) -> bool:
    return all(v == values[0] for v in values)


def _per_model(names: list[str], values: list[str]) -> str:
    """``"x"`` when every model has it, else ``"x (`a`), y (`b`)"``."""
    if _same(values):
        return values[0]
    return ", ".join(f"{v} (`{n}`)" for n, v in zip(names, values, strict=True))


def _save_png(fig: Any, out: Path) -> Path:
    """Write the figure atomically (temp file + rename): a reader never sees half a PNG."""
    from ..atomic import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, dpi=120, format="png")
    return atomic_write_bytes(out, buf.getvalue(), overwrite=True)


def plot_curves(out: Path, task: str, models: list[str] | None = None) -> Path | None:
    """Validation PSNR vs step for every model of ``task`` (PNG at ``out``); ``models`` default: the shipped ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dirs = [d for d in _model_dirs(models) if read_card(d).get("task") == task and "validation" in read_card(d)]
    if not dirs:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    blurry = set()
    for d in dirs:
        pts = _curve(d)
        if pts:
            ax.plot([s for s, _ in pts], [p for _, p in pts], marker="o", ms=3, label=d.name)
        blurry.add(round(float(read_card(d)["validation"]["mean_blurry"]), 6))
    if len(blurry) == 1:  # one line only when the models share the validation set
        ax.axhline(blurry.pop(), color="grey", ls="--", lw=1, label="blurry input")
    labels = {_val_label(run_facts(d)) for d in dirs}
    ax.set_xlabel("training step")
    ax.set_ylabel("validation PSNR (dB, linear RGB)")
    ax.set_title(f"{task}: validation PSNR during training ({labels.pop() if len(labels) == 1 else 'per model'})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        return _save_png(fig, out)
    finally:
        plt.close(fig)


def _fmt(table: dict[str, float], key: str) -> str:
    return f"{table[key]:.2f}" if key in table else "-"


def _task_lines(task: str, dirs: list[Path], models: list[str] | None) -> list[str]:
    """Prose + table of one task's models."""
    cards = {d.name: read_card(d) for d in dirs}
    facts = {d.name: run_facts(d) for d in dirs}
    names = list(cards)
    conds = list(dict.fromkeys(k for c in cards.values() for k in c["validation"]["restored"]))
    protocols = [
        f"{c.get('validation_protocol', 'not recorded')}; validation data: {val_data(facts[n])}"
        for n, c in cards.items()
    ]
    lines = [f"### {task}\n"]
    shared = _same([(c["validation"]["blurry"], c["validation"]["mean_blurry"]) for c in cards.values()])
    if _same(protocols):
        lines.append(f"Protocol: {protocols[0]}.\n")
    else:
        hint = "" if shared else " (the validation sets differ: compare each model with its own blurry row)"
        lines.append(f"Protocol per model{hint}:\n")
        lines += [f"- `{n}`: {p}" for n, p in zip(names, protocols, strict=True)] + [""]
    diff = recipe_differences([facts[n]["recipe"] for n in names])
    if len(names) == 1:
        recipes = ""
    elif diff is None:
        recipes = "Some recipes are not logged, so what else the models share is not known. "
    elif not diff:
        recipes = "Their recipes differ only in N. "
    else:
        recipes = "Their recipes differ in N and in " + ", ".join(f"`{k}`" for k in diff) + ". "
    cadence = _per_model(names, [val_cadence(facts[n]) for n in names])
    whose = "the shipped ones" if models is None else "given with `--models`"
    lines.append(
        f"Each model is the checkpoint with the best mean validation PSNR on its validation set (validated every "
        f"{cadence} steps). Models: {whose}. "
        + recipes
        + "Wall clock is training time (validation excluded), as logged: "
        + _per_model(names, [circumstances(facts[n]) for n in names])
        + "; other load on the machine is not recorded.\n"
    )
    lines.append(
        "| model | N | " + " | ".join(conds) + " | mean | gain over blurry | steps | patches/step | wall clock |"
    )
    lines.append("|---" * (len(conds) + 7) + "|")

    def blurry_row(label: str, v: dict[str, Any]) -> str:
        cells = " | ".join(_fmt(v["blurry"], k) for k in conds)
        return f"| {label} | - | {cells} | {v['mean_blurry']:.2f} | - | - | - | - |"

    def model_row(n: str) -> str:
        c = cards[n]
        v = c["validation"]
        return (
            f"| `{n}` | {c['n_trained']} | "
            + " | ".join(_fmt(v["restored"], k) for k in conds)
            + f" | **{v['mean_psnr']:.2f}** | {v['mean_psnr'] - v['mean_blurry']:+.2f} | {c['steps']} | "
            f"{c['patches_per_step']} x {c['patch']}² | {c['wall_clock_s'] / 60:.0f} min |"
        )

    if shared:
        lines.append(blurry_row("blurry input", cards[names[0]]["validation"]))
        lines += [model_row(n) for n in names]
        return lines
    # several validation sets: each run of models sharing one gets a blurry row naming them
    for _, run in itertools.groupby(names, key=lambda n: json.dumps(cards[n]["validation"]["blurry"], sort_keys=True)):
        group = list(run)
        label = "blurry input (" + ", ".join(f"`{m}`" for m in group) + ")"
        lines += [blurry_row(label, cards[group[0]]["validation"]), *map(model_row, group)]
    return lines


def training_section(
    plot_dir: Path, models: list[str] | None = None, plot_path: Callable[[str], Path] | None = None
) -> str:
    """Markdown: one table per task (per-condition PSNR, blurry beside it, steps, wall clock) + plots.

    ``models``: model names or folders (labelled by folder name); default: every shipped model.
    ``plot_path(task)``: where the curve of ``task`` goes (default ``plot_dir/training_<task>.png``).
    """
    lines = []
    dirs = _model_dirs(models)
    for task in ("sharpen", "lens"):
        of_task = [d for d in dirs if read_card(d).get("task") == task]
        task_dirs = [d for d in of_task if "validation" in read_card(d)]
        if not task_dirs:
            continue
        lines += _task_lines(task, task_dirs, models)
        untrained = [d.name for d in of_task if d not in task_dirs]
        if untrained:
            lines.append(
                "\nNot in the table (no validation record in their card.json, so not trained by `isp-collab train`): "
                + ", ".join(f"`{n}`" for n in untrained)
                + ".\n"
            )
        out = plot_path(task) if plot_path is not None else Path(plot_dir) / f"training_{task}.png"
        plot = plot_curves(out, task, [str(d) for d in task_dirs])
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
