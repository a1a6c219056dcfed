"""The training loop: L1 over every patch of every stack (Eq. 4), Adam, warmup + cosine LR,
gradient clipping, an optional weight average (EMA), periodic seeded validation, atomic best/last
checkpoints, exact resume, Ctrl-C checkpointing, and DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on GPU).

Run directory (``runs/<name>/``): ``last.pt``, ``best.pt``, ``log.jsonl``. At the end the best
weights go to ``models/<name>/`` (safetensors + card with the validation table).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from ..device import pick_device
from ..models import create_model
from ..signals import check_terminated
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import Recipe, validate
from .finish import finalize
from .interrupts import interrupt_on_sigterm, restore_sigterm, steps_are_whole
from .loader import training_batches
from .resume import calibration_sha256, open_run, recipe_changes, trim_log
from .setup import ema_of, init_from, lr_factor, param_groups
from .tasks import DEAD_LEAVES, build_task

__all__ = ["ema_of", "finalize", "lr_factor", "recipe_changes", "train"]


def _stacks_per_process(recipe: Recipe, world: int) -> int:
    """Stacks each of ``world`` processes draws per step; ValueError naming the recipe when they do not split."""
    stacks = recipe.stacks_per_step // world
    if stacks < 1 or recipe.stacks_per_step % world:
        raise ValueError(
            f"{recipe.path}: {recipe.stacks_per_step} stacks per step cannot be split evenly over {world} processes "
            "(choose train.patches_per_step so that patches_per_step / model.n is a multiple of the process count)"
        )
    if stacks % recipe.data.blur_group:  # each process draws its own groups of patches sharing a blur
        raise ValueError(
            f"{recipe.path}: {stacks} patches per process and step cannot be drawn in groups of data.blur_group = "
            f"{recipe.data.blur_group} ({world} processes; make patches_per_step / processes a multiple of it)"
        )
    return stacks


def _dist_info() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            if torch.cuda.is_available():  # one GPU per process, chosen before NCCL starts
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _status(enabled: bool) -> Callable[[str], None]:
    """One short line on stderr per otherwise silent phase (loading, validation), when progress is shown."""

    def say(message: str) -> None:
        if enabled:
            tqdm.write(message, file=sys.stderr)

    return say


def train(
    recipe: Recipe,
    out_dir: str | Path,
    run_dir: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    init: str | Path | None = None,
    overwrite: bool = False,
    notes: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """Train ``recipe``; returns the final validation figures. See the module docstring for files.

    ``notes``: lines printed on stderr once every check has passed and training is about to start (the
    command line's notes on options it changed: never printed before a refusal).

    ``stop_after`` ends the run early after that many steps (checkpointing as usual), used by
    tests of resume; the schedule still follows ``recipe.train.steps``. ``init``: start from the
    weights of a trained model (shipped name or folder) instead of identity — fine-tuning, or warm
    starting an N>1 model from N=1 weights (its collaboration layers then start as ``[I | 0]``); it is
    recorded in the checkpoint, and a resume keeps it. ``overwrite`` restarts a finished run in ``run_dir``.
    The recipe (also one changed in Python after :func:`~.config.load_recipe`), the run directory, the
    task's data (image sizes, the validation set) and ``init`` are all checked before anything is written.
    The caller's torch thread count and random states (torch, numpy, random) are as they were afterwards.
    """
    validate(recipe)
    threads, caller_rng = torch.get_num_threads(), rng_state()
    try:
        return _train(recipe, out_dir, run_dir, resume, device, progress, stop_after, init, overwrite, notes)
    finally:
        torch.set_num_threads(threads)
        set_rng_state(caller_rng)


def _train(
    recipe: Recipe,
    out_dir: str | Path,
    run_dir: str | Path | None,
    resume: bool,
    device: str | None,
    progress: bool,
    stop_after: int | None,
    init: str | Path | None,
    overwrite: bool,
    notes: tuple[str, ...] | list[str],
) -> dict[str, Any]:
    rank, world = _dist_info()
    _stacks_per_process(recipe, world)  # refused before anything is written
    if world > 1 and torch.cuda.is_available():
        dev = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        torch.cuda.set_device(dev)
    else:
        dev = pick_device(device)
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    run_dir = Path(run_dir or Path("runs") / recipe.name)
    out_dir = Path(out_dir)
    last_path, best_path, log_path = run_dir / "last.pt", run_dir / "best.pt", run_dir / "log.jsonl"
    start = open_run(run_dir, recipe, resume=resume, overwrite=overwrite, init=init, world=world)
    ck, init = start.checkpoint, start.init
    say = _status(progress and rank == 0)

    if recipe.data.images:
        say(f"loading the training images from {', '.join(recipe.data.images)}")
    task = build_task(recipe)
    task.check_training_images()
    if rank == 0:  # the validation set is built (and its photos checked) now, on the rank that validates
        say(f"building the validation set from {', '.join(recipe.data.val_images) or DEAD_LEAVES}")
        task.valset  # noqa: B018
        for note in [*task.notes(), *notes]:  # the task's: photos skipped, validation regions without tiles
            print(note, file=sys.stderr)

    torch.manual_seed(recipe.train.seed)
    m = recipe.model
    model = create_model(m.arch, n=m.n, pooling=m.pooling, collab_init=m.collab_init, merge=m.merge, norm=m.norm).to(
        dev
    )
    if init is not None and not resume:
        init_from(model, init)
    ema = ema_of(model, recipe.train.ema) if recipe.train.ema else None
    evaluated = ema.module if ema is not None else model  # the weights validated, checkpointed as best, shipped
    opt = torch.optim.Adam(param_groups(model, recipe), lr=recipe.train.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, recipe))
    gen = torch.Generator().manual_seed(recipe.train.seed * 1000 + rank)
    step, best, elapsed, validated = 0, -float("inf"), 0.0, 0  # validated: the last step validated
    if resume:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generators"][rank] if rank < len(ck["generators"]) else ck["generators"][0])
        set_rng_state(ck["rng"])
        if ema is not None and "ema" in ck:
            ema.load_state_dict(ck["ema"])
        step, best, elapsed = ck["step"], ck["best"], ck.get("elapsed", 0.0)
        validated = ck.get("validated", step)
        if rank == 0:  # what the log holds past the checkpoint is written again from here
            trim_log(log_path, step, validated)
    # the batch generator, RNGs and BatchNorm statistics as they stand after the last whole step: what a
    # checkpoint saves, so an interrupt while the next batch is drawn or used (its forward pass has already
    # moved the running statistics) neither skips that batch on resume nor counts it twice
    whole_gen, whole_rng, whole_buffers = gen.get_state(), rng_state(), _buffers(model)

    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    else:
        net = model
    stacks = _stacks_per_process(recipe, world)
    cwd = os.getcwd()  # relative image folders in the recipe are taken from here (compared on resume)
    lens_sha = calibration_sha256(recipe)  # a calibration edited before a resume is refused

    def checkpoint(path: Path) -> None:
        gens = [whole_gen]
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, whole_gen)
            gens = gathered
        if rank == 0:
            save_checkpoint(
                path,
                {
                    "model": {**model.state_dict(), **whole_buffers},
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "generators": gens,
                    "rng": whole_rng,
                    "step": step,
                    "validated": validated,
                    "world": world,
                    "lens_sha256": lens_sha,
                    "best": best,
                    "elapsed": elapsed,
                    "grad_norms": [float(g) for g in whole_norms],  # since the last log line (resumed mean)
                    "recipe": asdict(recipe),
                    "cwd": ck.get("cwd", cwd),
                    "init": init,
                    **({"ema": ema.state_dict()} if ema is not None else {}),
                },
            )

    def log(record: dict) -> None:
        if rank == 0:
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    if start.restart and world > 1:
        dist.barrier()  # every process has read the finished run's last.pt before it goes
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if start.restart:  # --overwrite of a finished run: its checkpoints go
            for path in (last_path, best_path):
                path.unlink(missing_ok=True)
        if not resume:
            log_path.write_text("")
            log({"event": "start", "recipe": asdict(recipe), "world": world, "device": str(dev), "init": init})

    def validate_now(eligible: bool = True) -> None:
        """Validate the weights of ``step`` (rank 0), log it, keep them as best.pt when they are the best yet."""
        nonlocal best, validated
        val = task.validate(evaluated, dev)
        log({"step": step, "val": val, "elapsed": elapsed})
        say(f"step {step}: val {val['mean_psnr']:.3f} dB (blurry {val['mean_blurry']:.3f})")
        if eligible and val["mean_psnr"] > best:
            best = val["mean_psnr"]
            save_checkpoint(best_path, {"model": evaluated.state_dict(), "step": step, "val": val})
        validated = step
        model.train()

    def is_val_step(k: int) -> bool:
        return k % recipe.train.val_every == 0 or k == recipe.train.steps

    if not resume and rank == 0:  # --init's model may stay the best (fine-tuning must not ship a worse one); the
        validate_now(eligible=init is not None)  # identity of a fresh run is the floor, not a candidate

    if resume and rank == 0 and step > 0 and validated < step and is_val_step(step):
        validate_now()  # the run was stopped at a validation step before its validation was done
    end = min(recipe.train.steps, step + stop_after) if stop_after else recipe.train.steps
    bar = tqdm(total=recipe.train.steps, initial=step, disable=not progress or rank != 0, dynamic_ncols=True)
    # throughput: the patches and the training time (validation excluded) since the last report
    t_last, patches, busy = time.perf_counter(), 0, 0.0
    # since the last log line: the gradient norm before clipping (as of the last whole step, for a checkpoint)
    grad_norms: list = [torch.tensor(g, device=dev) for g in ck.get("grad_norms", [])] if resume else []
    whole_norms = list(grad_norms)
    model.train()
    workers = recipe.train.workers
    if dev.type == "cuda" and not workers:
        say(
            "note: batches are drawn in this process on one CPU core, which a GPU step outpaces; "
            "train.workers / --workers K draws them in K processes"
        )
    batches = training_batches(
        task,
        stacks,
        gen,
        workers=workers,
        seed=recipe.train.seed,
        rank=rank,
        start=step,
        end=end,
        pin_memory=dev.type == "cuda",
    )
    previous_sigterm = interrupt_on_sigterm()
    try:
        for blurry, sharp in batches:
            check_terminated()  # a SIGTERM whose exception a callback swallowed (isp_collab.signals)
            blurry, sharp = blurry.to(dev, non_blocking=True), sharp.to(dev, non_blocking=True)
            loss = F.l1_loss(net(blurry), sharp)  # Eq. 4: L1 over every patch of every stack
            if not torch.isfinite(loss):  # nothing non-finite is checkpointed or shipped
                raise ValueError(
                    f"{recipe.path or recipe.name}: the loss became {loss.item()} at step {step + 1} (learning rate "
                    f"{sched.get_last_lr()[0]:.2g}); {last_path} holds the last finite checkpoint"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # kept as a tensor (no device sync per step); averaged when a log line is written
            grad_norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.train.grad_clip).detach())
            with steps_are_whole():  # the step, its log line and the state a checkpoint saves: all or none
                opt.step()
                sched.step()
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
                patches += blurry.shape[0] * blurry.shape[1] * world
                now = time.perf_counter()
                elapsed += now - t_last
                busy += now - t_last
                if step % 10 == 0 or step == end:
                    rate = patches / max(busy, 1e-9)
                    norms = torch.stack(grad_norms)
                    bar.set_postfix(
                        loss=f"{loss.item():.4f}", patches_s=f"{rate:.0f}", lr=f"{sched.get_last_lr()[0]:.1e}"
                    )
                    log(
                        {
                            "step": step,
                            "loss": loss.item(),
                            "lr": sched.get_last_lr()[0],
                            "grad_norm": float(norms.mean()),  # mean since the last line, before clipping
                            "clipped": float((norms > recipe.train.grad_clip).float().mean()),
                            "elapsed": elapsed,
                        }
                    )
                    patches, busy, grad_norms = 0, 0.0, []
                whole_gen, whole_rng, whole_buffers = gen.get_state(), rng_state(), _buffers(model)
                whole_norms = list(grad_norms)
            t_last = now
            bar.update(1)
            is_val = is_val_step(step)
            if is_val and rank == 0:
                validate_now()
                t_last = time.perf_counter()
            if step % recipe.train.ckpt_every == 0 or is_val or step == end:
                checkpoint(last_path)
    except KeyboardInterrupt:
        try:
            checkpoint(last_path)
        except KeyboardInterrupt:  # a second Ctrl-C while it was written: the atomic write left the last one
            if rank == 0:
                kept = load_checkpoint(last_path).get("step") if last_path.exists() else None
                tqdm.write(
                    f"interrupted at step {step} while its checkpoint was written: not written; "
                    + (f"{last_path} holds step {kept}" if kept is not None else "no checkpoint is kept"),
                    file=sys.stderr,
                )
            raise
        bar.close()
        if rank == 0:
            tqdm.write(
                f"interrupted at step {step}: checkpoint written to {last_path}; continue with --resume",
                file=sys.stderr,
            )
        raise
    finally:  # an error is printed on its own line, not after the bar
        bar.close()
        batches.close()  # worker processes, if any, stop now, not when the traceback is freed
        restore_sigterm(previous_sigterm)  # a Python caller keeps its own handler after training
    result: dict[str, Any] = {"step": step, "finished": step >= recipe.train.steps}
    if rank == 0 and result["finished"]:
        result.update(finalize(recipe, evaluated, best_path, out_dir, task, dev, elapsed, log_path, init, say))
    if world > 1:
        dist.barrier()
    return result


def _buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's saved buffers (BatchNorm running statistics), keyed as in its ``state_dict``."""
    saved = model.state_dict(keep_vars=True)
    return {k: b.detach().clone() for k, b in model.named_buffers() if k in saved}
