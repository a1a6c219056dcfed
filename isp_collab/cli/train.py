"""``isp-collab train RECIPE.toml``: train a model from a recipe (multi-process with torchrun)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import path_arg

if TYPE_CHECKING:
    from ..training.config import Recipe


def _int_at_least(low: int):
    """An argparse ``type``: an integer >= ``low`` (argparse names the option and exits 2 otherwise)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = "int"  # argparse's message for a non-integer: "invalid int value: 'x'"
    return parse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand to ``sub``."""
    p = sub.add_parser(
        "train",
        help="train a model from a TOML recipe (train/*.toml)",
        description="Train a collaborative UNet from a recipe. Checkpoints and a JSONL log go to runs/NAME/; "
        "the finished model (best validation) to models/NAME/. Ctrl-C writes a checkpoint; --resume continues. "
        "Multi-process: torchrun --nproc_per_node=K -m isp_collab train RECIPE.toml",
    )
    p.add_argument("recipe", type=Path, help="recipe TOML file")
    p.add_argument("--images", nargs="+", help="training image folders (default: the recipe's, else dead leaves)")
    p.add_argument(
        "--val-images",
        nargs="+",
        help="validation image folders, which also pick the best checkpoint (default: the recipe's; the shipped "
        "recipes have none, so procedural dead leaves)",
    )
    p.add_argument("--out", type=path_arg, help="model output folder (default models/NAME)")
    p.add_argument("--run-dir", type=path_arg, help="checkpoint/log folder (default runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir exactly where it stopped")
    p.add_argument(
        "--steps",
        type=int,
        help="override the recipe's number of steps (a warmup as long is shortened to a tenth of them)",
    )
    p.add_argument("--lr", type=float, help="override the recipe's peak learning rate")
    p.add_argument(
        "--threads",
        type=_int_at_least(1),
        metavar="K",
        help="CPU threads per process (default: the recipe's train.threads, 0 there meaning torch's default); "
        "an execution setting, which a resume may change",
    )
    p.add_argument(
        "--workers",
        type=_int_at_least(0),
        metavar="K",
        help="draw training batches in K worker processes (default: the recipe's train.workers, 0 = in the "
        "training process). On a GPU, where one core drawing batches is the bottleneck, use several. Any K > 0 "
        "draws the same batches (seeded by step), but not those of K = 0; a resume may change K > 0",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing model in --out, and start a finished run in --run-dir again",
    )
    p.add_argument(
        "--init",
        help="start from a trained model's weights (shipped name or folder): fine-tune, or "
        "warm-start an N>1 model from N=1 weights; recorded in the run, so --resume needs no --init",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or status lines (logs still written)")
    p.set_defaults(func=run)


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"isp-collab train: warning: {message}", file=sys.stderr)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,  # noqa: ARG001
    line: str | None = None,
) -> None:
    """isp-collab's own warnings (a memory cap reached...) as one line; third-party chatter as usual."""
    if issubclass(category, UserWarning) and "isp_collab" in str(filename):
        _warn(str(message).splitlines()[0])
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _apply_options(recipe: Recipe, args: argparse.Namespace) -> list[str]:
    """The command-line overrides, each checked; returns the notes and warnings to print once the run is
    known to start (where one option changes another setting, or is likely a mistake)."""
    notes: list[str] = []
    from ..training.config import short_warmup

    for flag, folders in (("--images", args.images), ("--val-images", args.val_images)):
        for folder in folders or []:
            if not Path(folder).is_dir():
                raise FileNotFoundError(f"{folder}: image folder not found ({flag})")
    for key in ("images", "val_images"):  # the recipe's own folders, when no flag replaces them
        if not getattr(args, key):
            for folder in getattr(recipe.data, key):
                if not Path(folder).is_dir():
                    raise FileNotFoundError(f"{folder}: image folder not found (data.{key} of {recipe.path})")
    if args.images:
        recipe.data.images = list(args.images)
    if args.val_images:
        recipe.data.val_images = list(args.val_images)
    if args.images and not recipe.data.val_images:
        notes.append(
            "isp-collab train: warning: --images without --val-images: validation, and the choice of the best "
            "checkpoint, use procedural dead leaves, not photos like yours; pass --val-images DIR"
        )
    # checked here so that the error names the flag, not the recipe it overrides
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be a whole number >= 1, got {args.steps}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a finite number > 0, got {args.lr}")
    if args.steps is not None:
        recipe.train.steps = args.steps
        if recipe.train.warmup >= args.steps > 0 and recipe.train.warmup != short_warmup(args.steps):
            warmup = short_warmup(args.steps)
            notes.append(f"note: train.warmup {recipe.train.warmup} lowered to {warmup} for --steps {args.steps}")
            recipe.train.warmup = warmup
    if args.lr is not None:
        recipe.train.lr = args.lr
        if 0 < args.lr < recipe.train.lr_min:  # the schedule's floor follows a peak set below it
            notes.append(f"note: train.lr_min {recipe.train.lr_min:g} lowered to --lr {args.lr:g}")
            recipe.train.lr_min = args.lr
    if args.threads is not None:
        recipe.train.threads = args.threads
    if args.workers is not None:
        recipe.train.workers = args.workers
    return notes


def _check_out(out: Path, run_dir: Path, recipe: Recipe, overwrite: bool) -> None:
    """``--out`` is a new or empty folder (hidden files such as .DS_Store aside), or (with ``--overwrite``) a model
    folder; never the run folder (checkpoints), nor one that is, lies inside or holds an image folder of the run.
    One-line ``FileExistsError`` / ``ValueError`` otherwise."""
    here = Path(os.path.realpath(out))
    run = Path(os.path.realpath(run_dir))
    if here == run or here in run.parents or run in here.parents:
        raise ValueError(
            f"{out}: --out must not be, lie inside or hold the run folder {run_dir} (--run-dir: checkpoints and "
            "log); give the model a folder of its own"
        )
    for key in ("images", "val_images"):
        for folder in getattr(recipe.data, key):
            data = Path(os.path.realpath(folder))
            if here == data or here in data.parents or data in here.parents:
                raise ValueError(
                    f"{out}: --out must not be, lie inside or hold the image folder {folder} (data.{key}); "
                    "give a new folder for the model"
                )
    if (out / "model.safetensors").exists():
        if not overwrite:
            raise FileExistsError(
                f"{out}: a trained model is already there; pass --out DIR for a new one (--model DIR uses it), "
                "or --overwrite to replace it"
            )
    elif out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise FileExistsError(f"{out}: --out holds other files and no model; give a new or empty folder for the model")


def run(args: argparse.Namespace) -> int:
    """Carry out ``isp-collab train``; returns the exit status."""
    from ..training import load_recipe, train
    from ..training.config import validate
    from . import require_parent_folder

    recipe = load_recipe(args.recipe)
    notes = _apply_options(recipe, args)
    validate(recipe)  # the overrides too
    out = args.out or Path("models") / recipe.name
    for flag, folder, given in (
        ("--out", out, args.out is not None),
        ("--run-dir", args.run_dir or Path("runs") / recipe.name, args.run_dir is not None),
    ):  # found before training, not after it
        if folder.exists() and not folder.is_dir():
            raise FileExistsError(f"{folder}: {flag} must be a folder, and this is a file")
        if given:  # a folder the user named: at most its last component is created
            require_parent_folder(folder, "parent folder")
        ancestor = next(d for d in folder.absolute().parents if d.exists())
        if not ancestor.is_dir():
            raise ValueError(f"{folder}: {ancestor} is a file, not a folder ({flag})")
    _check_out(out, args.run_dir or Path("runs") / recipe.name, recipe, args.overwrite)
    # Ctrl-C / kill: the trainer writes its checkpoint, main() prints "interrupted" and exits 130 / 143
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = _show_warning  # restored by catch_warnings
        result = train(
            recipe,
            out,
            run_dir=args.run_dir,
            resume=args.resume,
            device=args.device,
            progress=not args.no_progress,
            init=args.init,
            overwrite=args.overwrite,
            notes=notes,  # printed once the run is known to start
        )
    if "validation" in result:
        v = result["validation"]
        print(f"wrote {result['out']}: validation {v['mean_psnr']:.2f} dB (blurry input {v['mean_blurry']:.2f} dB)")
        for cond, val in v["restored"].items():
            print(f"  {cond:14s} {v['blurry'][cond]:6.2f} -> {val:6.2f} dB")
    return 0
