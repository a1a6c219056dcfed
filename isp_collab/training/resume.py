"""What a run directory allows: start a run, continue it (``--resume``) or restart it (``--overwrite``).

Decided before anything is written: a resumed run must be the run it continues (same settings, same
data folders, same ``--init``), since its card, schedule and ``best.pt`` describe that run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from .checkpoint import load_checkpoint
from .config import Recipe

# settings that change how a run executes, not what it learns: a resume may change them (threads change the order of
# float sums: the run then continues to float rounding, not bit for bit)
EXECUTION_ONLY = {("train", "threads"), ("train", "ckpt_every")}
# image folders: compared as the folders they name, not as typed
PATH_KEYS = {("data", "images"), ("data", "val_images")}


def resolve_folders(paths: list[str], cwd: str | None = None) -> list[str]:
    """``paths`` as absolute, normalised real paths, relative ones taken from ``cwd`` (default: the current folder)."""
    base = cwd or os.getcwd()
    return [os.path.realpath(os.path.join(base, os.fspath(p))) for p in paths]


def recipe_changes(saved: dict[str, Any], recipe: Recipe, saved_cwd: str | None = None) -> list[str]:
    """``section.key: was -> now`` for every setting of ``recipe`` that differs from a checkpoint's ``saved`` recipe.

    Keys a checkpoint predates count as their defaults then; the recipe's file path and hash and the
    execution-only keys (``train.threads``, ``train.ckpt_every``) are not compared, nor ``train.workers``
    beyond whether it is 0 (any number of workers draws the same batches). Image folders are
    compared resolved: the saved ones from ``saved_cwd`` (the folder the run started in; the current
    one for checkpoints that predate it), the recipe's from the current folder, so ``okimgs``,
    ``okimgs/`` and its absolute path are the same folder; a calibration ``task.lens`` likewise.
    """
    now, defaults = asdict(recipe), asdict(Recipe(name=recipe.name))
    out = []
    for section, values in now.items():
        if section in ("path", "sha256"):
            continue
        if not isinstance(values, dict):
            was = saved.get(section, values)
            if was != values:
                out.append(f"{section}: {was!r} -> {values!r}")
            continue
        for key, value in values.items():
            if (section, key) in EXECUTION_ONLY:
                continue
            was = saved.get(section, {}).get(key, defaults[section][key])
            if (section, key) == ("task", "lens") and str(was).endswith(".npz") and str(value).endswith(".npz"):
                # a calibration file: compared as the file it names, from where each run was started
                if resolve_folders([was], saved_cwd) != resolve_folders([value]):
                    out.append(f"task.lens: {was!r} -> {value!r}")
                continue
            if (section, key) in PATH_KEYS:
                resolved = resolve_folders(was, saved_cwd), resolve_folders(value)
                if resolved[0] == resolved[1]:
                    continue
                if was == value:  # the same text naming other folders (another working folder): show where
                    was, value = resolved
            if (section, key) == ("train", "workers"):  # any K > 0 draws the same batches; 0 draws others
                if bool(was) != bool(value):
                    out.append(
                        f"train.workers: {was!r} -> {value!r} (batches drawn {_drawn(was)}, now {_drawn(value)})"
                    )
                continue
            if was != value:
                out.append(f"{section}.{key}: {was!r} -> {value!r}")
    return out


def calibration_sha256(recipe: Recipe) -> str | None:
    """The sha256 of a lens recipe's calibration ``.npz`` (None for other recipes, or a file not there)."""
    lens = recipe.task.lens
    if recipe.task.name != "lens" or not lens.endswith(".npz") or not os.path.isfile(lens):
        return None
    from ..models.weights import file_sha256

    return file_sha256(Path(lens))


def _drawn(workers: int) -> str:
    return "by worker processes, by step" if workers else "in the training process"


def _same_model(a: str, b: str) -> bool:
    """Two ``--init`` values naming the same model (shipped name or folder, as typed or resolved)."""
    if a == b:
        return True
    from ..models.weights import WeightsError, resolve_model_dir

    try:
        return resolve_model_dir(a).resolve() == resolve_model_dir(b).resolve()
    except WeightsError:
        return False


@dataclass
class RunStart:
    """How a run starts: ``checkpoint`` to continue (empty for a new run), the ``init`` model it started
    from, and whether a finished run's checkpoints are to be removed first (``restart``)."""

    checkpoint: dict[str, Any] = field(default_factory=dict)
    init: str | None = None
    restart: bool = False


def open_run(
    run_dir: Path,
    recipe: Recipe,
    resume: bool = False,
    overwrite: bool = False,
    init: str | os.PathLike | None = None,
    world: int = 1,
) -> RunStart:
    """Check ``run_dir`` against the request; raises one line naming the folder and the way out.

    - no run there: a new run (``--resume`` is refused: nothing to resume);
    - an unfinished run: ``resume`` continues it (same settings, ``--init`` and number of processes
      ``world``, else refused: each process draws its own batches);
      otherwise refused (``--resume``, ``--run-dir`` or remove it);
    - a finished run (all its steps done, its model written): ``overwrite`` restarts it; otherwise refused.
    """
    last = run_dir / "last.pt"
    init = None if init is None else os.fspath(init)
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"{last}: nothing to resume")
        try:
            ck = load_checkpoint(last)
        except ValueError as e:  # a corrupt checkpoint: say the way out
            raise ValueError(f"{e}; remove {run_dir}, or pass --run-dir DIR for a new run") from None
        if changed := recipe_changes(ck.get("recipe", {}), recipe, ck.get("cwd")):
            saved_steps = ck.get("recipe", {}).get("train", {}).get("steps")
            more = recipe.train.steps - (saved_steps or 0)
            finished = saved_steps is not None and ck.get("step", 0) >= saved_steps
            if finished and more > 0 and all(c.startswith("train.steps:") for c in changed):
                # a finished run's schedule has ended: more steps is a new run that starts from its model
                raise ValueError(
                    f"{last}: the run finished its {saved_steps} steps and its learning-rate schedule with them; to "
                    f"train its model {more} steps more, start a new run from it: --init MODEL_FOLDER --run-dir "
                    f"NEW_DIR --steps {more}"
                )
            raise ValueError(
                f"{last}: the run was started with other settings ({'; '.join(changed)}); resume with the "
                "run's recipe and options (--images, --val-images, --steps, --lr, --workers), or start a new run"
            )
        saved_world = ck.get("world", len(ck.get("generators", [None])))  # one generator per process
        if saved_world != world:
            how = "without torchrun" if saved_world == 1 else f"with torchrun --nproc_per_node={saved_world}"
            raise ValueError(
                f"{last}: the run was started with {saved_world} process(es), this one has {world} (each process "
                f"draws its own batches); resume it {how}, or start a new run"
            )
        saved_sha, sha = ck.get("lens_sha256"), calibration_sha256(recipe)
        if saved_sha and sha and saved_sha != sha:
            raise ValueError(
                f"{last}: the calibration {recipe.task.lens} changed since the run started (sha256 {saved_sha[:12]}... "
                f"-> {sha[:12]}...); resume with the file the run was started with, or start a new run"
            )
        recorded = ck.get("init")
        if init is not None and (recorded is None or not _same_model(init, recorded)):
            started = f"with --init {recorded}" if recorded is not None else "without --init"
            raise ValueError(f"{last}: the run was started {started}; resume it without --init (or start a new run)")
        return RunStart(ck, recorded)
    if init is not None:  # a missing model is found now, not after the images are loaded
        from ..models.weights import resolve_model_dir

        resolve_model_dir(init)
    if not last.exists():
        return RunStart(init=init)
    try:
        ck = load_checkpoint(last)
    except ValueError as e:  # a corrupt checkpoint: say the way out
        raise ValueError(f"{e}; remove {run_dir}, or pass --run-dir DIR for a new run") from None
    step, steps = ck.get("step", 0), ck.get("recipe", {}).get("train", {}).get("steps", float("inf"))
    if step < steps:
        only = " (--overwrite restarts only a finished run)" if overwrite else ""
        raise FileExistsError(
            f"{run_dir}: an unfinished run is there (step {step} of {steps}); pass --resume to continue it, "
            f"--run-dir DIR for a new run, or remove {run_dir}{only}"
        )
    if not overwrite:
        raise FileExistsError(
            f"{run_dir}: a finished run is there; pass --resume to write its model (again), --overwrite to train "
            "it again, or --run-dir DIR for a new run"
        )
    return RunStart(init=init, restart=True)


def trim_log(log_path: Path, step: int, validated: int) -> None:
    """Drop from a resumed run's ``log.jsonl`` what its checkpoint (at ``step``, validated at ``validated``) has not
    seen, as the run writes it again: records after ``step`` (a kill -9, a second Ctrl-C, come after the last
    checkpoint) and a validation of ``step`` logged before the checkpoint said it was done. A torn last line (a
    kill while writing) goes too. Rewritten atomically; nothing to do leaves the file as it is."""
    if not log_path.is_file():
        return
    kept, dropped = [], False
    for line in log_path.read_text().splitlines(True):
        try:
            record = json.loads(line)
        except ValueError:
            dropped = True
            continue
        at = record.get("step") if isinstance(record, dict) else None
        if isinstance(at, int) and (at > step or (at == step and "val" in record and validated < step)):
            dropped = True
            continue
        kept.append(line if line.endswith("\n") else line + "\n")
    if dropped:
        atomic_write_text(log_path, "".join(kept), overwrite=True)
