"""The end of a training run: the best weights validated once more and written with their card."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..models import save_model
from .checkpoint import load_checkpoint
from .config import Recipe

__all__ = ["WALL_CLOCK_COVERS", "finalize"]

# what the card's ``wall_clock_s`` measures
WALL_CLOCK_COVERS = (
    "the training loop only, summed over resumes: drawing batches, the steps and checkpoints; not loading the "
    "photos, building the validation set, validating, the final validation or writing the model"
)


def finalize(
    recipe: Recipe,
    model: torch.nn.Module,
    best_path: Path,
    out_dir: Path,
    task: Any,
    dev: torch.device,
    elapsed: float,
    log_path: Path,
    init: str | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Write the best weights + card (validation table at N trained and per condition) to ``out_dir``.

    The weights, the card and ``train_log.jsonl`` (the validation records of ``log_path``, for the RESULTS
    plot) are written as one folder (:func:`~isp_collab.models.save_model`).
    """
    best_step = recipe.train.steps
    if best_path.exists():
        best = load_checkpoint(best_path)
        model.load_state_dict(best["model"])
        best_step = best.get("step", best_step)
        say(f"final validation of the best weights (step {best_step})")
    else:
        say("final validation")
    val = task.validate(model, dev)
    if val["mean_psnr"] <= val["mean_blurry"]:
        warnings.warn(
            f"{out_dir}: the best weights (step {best_step}, {val['mean_psnr']:.3f} dB) do not beat the blurry "
            f"input ({val['mean_blurry']:.3f} dB) on validation; train longer or check the recipe",
            stacklevel=2,
        )
    extra: dict[str, str | bytes] = {}
    lens = recipe.task.lens if recipe.task.name == "lens" else None
    lens_card: dict[str, Any] = {}
    if lens is not None and Path(lens).suffix == ".npz":  # the calibration travels with the model (bench, process)
        extra[Path(lens).name] = Path(lens).read_bytes()
        lens_card = {
            "lens_sha256": hashlib.sha256(extra[Path(lens).name]).hexdigest(),
            # the calibration's frame (H, W): its PSFs are in those pixels; the lens stage says when a frame differs
            "lens_frame": [int(v) for v in task.field.image_size],
        }
        lens = Path(lens).name
    card = {
        "task": recipe.task.name,
        "n_trained": recipe.model.n,
        "recommended_strategy": "mirror" if recipe.task.name == "lens" else "spread",
        "lens": lens,
        **lens_card,
        "align": recipe.task.align if recipe.task.name == "lens" else None,
        "recipe": Path(recipe.path).name if recipe.path else recipe.name,
        "recipe_name": recipe.name,  # the recipe's `name` (the run's; exports are named after the model folder)
        "recipe_sha256": recipe.sha256,
        "steps": recipe.train.steps,
        "best_step": best_step,  # the step whose weights these are (the best validation)
        "lr": recipe.train.lr,
        **({"collab_lr": recipe.train.collab_lr} if recipe.train.collab_lr != 1.0 else {}),
        "seed": recipe.train.seed,
        "patches_per_step": recipe.train.patches_per_step,
        "patch": recipe.data.patch,
        "wall_clock_s": round(elapsed, 1),
        "wall_clock_covers": WALL_CLOCK_COVERS,
        "batches": "by step, in worker processes" if recipe.train.workers else "one generator, in the training process",
        "validation": val,
        "validation_protocol": task.describe_validation(),
        **task.data_card(),
        "initialised_from": init,
    }
    if log_path.exists():  # keep the curve next to the weights for the RESULTS plot
        extra["train_log.jsonl"] = "".join(line for line in log_path.read_text().splitlines(True) if '"val"' in line)
    try:
        save_model(model, out_dir, card, extra_files=extra)
    except OSError as e:  # the run is finished and kept: say how to write its model
        reason = e.strerror or (str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise OSError(
            f"{out_dir}: cannot write the model ({reason}); the trained run is kept in {log_path.parent}: "
            "--resume --out DIR writes its model elsewhere"
        ) from None
    return {"validation": val, "out": str(out_dir)}
