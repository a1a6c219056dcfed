"""Train an N=1 UNet that is *told* the blur: what knowing the blur is worth at equal budget (experiment).

    .venv/bin/python benchmarks/known_blur_conditioned.py train/sharpen-unet-tx-n1.toml \\
        --images ../shared/data/images/train --val-images ../shared/data/images/val --run-dir runs/cond/told
    ... --blind --run-dir runs/cond/blind      # the same network and loop with the blur hidden (zeros)
    ... --tell-noise-kind --run-dir runs/cond/toldkind   # also told the noise kind (a 4th map); --blind zeroes all

Of what a stack of N patches shares, the blur is the part collaboration is meant to recover. This script trains
the recipe's N=1 network (same sampler, patches, steps, Adam, warmup + cosine, clipping and seed as
``isp-collab train``) with three extra input channels holding the blur's covariance (Σxx, Σyy, Σxy)/16 —
constant maps, known exactly at training and validation — so, against the same loop with the maps zeroed
(``--blind``), it measures what exact knowledge of the blur adds at equal architecture and budget: the most
a stack could add if the blur were all its patches shared (the tiles of one photo also share its noise and
camera). Unlike one network per blur (a specialist,
``benchmarks/known_blur.py``) it covers the whole blur range with one set of weights, as a blind model does.

Writes ``RUN_DIR/log.jsonl`` in the trainer's format (validation records: PSNR in linear RGB per σ on the
recipe's validation set), so ``benchmarks/runs_table.py`` and ``benchmarks/known_blur.py`` read it. Not a
shipped model and not part of the package: nothing else is written.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from isp_collab.bench.report import refuse
from isp_collab.models import create_model
from isp_collab.training import load_recipe
from isp_collab.training.tasks import build_task
from isp_collab.training.trainer import lr_factor
from isp_collab.training.validation import ValGroup, psnr


def covariance(sigmas: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(B, 2) principal stds and (B,) angles -> (B, 3) = (Σxx, Σyy, Σxy) / 16 of the Gaussian blur.

    >>> covariance(torch.tensor([[2.0, 2.0]]), torch.tensor([0.7]))
    tensor([[0.2500, 0.2500, 0.0000]])
    """
    a, b = sigmas[:, 0] ** 2, sigmas[:, 1] ** 2
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([a * c * c + b * s * s, a * s * s + b * c * c, (a - b) * c * s], dim=1) / 16


class ToldUNet(nn.Module):
    """The recipe's UNet (N=1) with ``told`` more input channels: constant maps of what it is told.

    forward(stack, cov): stack (B, 1, 3, H, W) linear RGB in [0, 1], cov (B, told) -> (B, 1, 3, H, W);
    ``cov`` holds the blur covariance (3 values), then, with ``--tell-noise-kind``, 1 for demosaicking
    residual noise and 0 for white noise.
    """

    def __init__(self, arch: str, told: int = 3) -> None:
        super().__init__()
        self.net = create_model(arch, n=1)
        first = self.net.inc[0]
        self.net.inc[0] = nn.Conv2d(3 + told, first.out_channels, 3, padding=1, bias=False)

    def forward(self, stack: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        b, n, _, h, w = stack.shape
        flat = stack.reshape(b * n, 3, h, w)
        maps = cov.repeat_interleave(n, 0)[:, :, None, None].expand(b * n, cov.shape[1], h, w)
        net, skips = self.net, []
        x = net.inc(torch.cat([flat, maps], 1))
        for down in net.downs:
            skips.append(x)
            x = down(F.max_pool2d(x, 2))
        for i, up in enumerate(net.ups):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = up(torch.cat([skips[-1 - i], x], dim=1))
        return stack + net.outc(x).reshape(b, n, 3, h, w)


@torch.no_grad()
def evaluate(model: ToldUNet, valset: dict[str, ValGroup], border: int, blind: bool, kind: bool = False) -> dict:
    """PSNR (dB, linear RGB) per σ condition, as ``isp_collab.training.validation.evaluate`` reports it.

    The validation tiles carry demosaicking residual noise: ``kind`` tells the network so (1).
    """
    model.eval()
    restored, blurry = {}, {}
    for cond, g in valset.items():
        sigma = float(cond.split("=")[1])
        cov = covariance(torch.tensor([[sigma, sigma]]), torch.zeros(1))
        if kind:
            cov = torch.cat([cov, torch.ones(1, 1)], 1)
        if blind:
            cov = torch.zeros_like(cov)
        x = g.blurry[:, None]
        y = torch.cat([model(x[i : i + 32], cov.expand(len(x[i : i + 32]), -1)) for i in range(0, len(x), 32)])
        restored[cond] = psnr(y[:, 0], g.sharp, border).mean().item()
        blurry[cond] = psnr(g.blurry, g.sharp, border).mean().item()
    model.train()
    mean = sum(restored.values()) / len(restored)
    return {
        "restored": restored,
        "blurry": blurry,
        "mean_psnr": mean,
        "mean_blurry": sum(blurry.values()) / len(blurry),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", type=Path, help="a sharpening recipe; its N is ignored (the network is N=1)")
    ap.add_argument("--images", nargs="+", help="training image folders")
    ap.add_argument("--val-images", nargs="+", help="validation image folders")
    ap.add_argument("--run-dir", type=Path, required=True, help="where log.jsonl goes (must not exist)")
    ap.add_argument("--blind", action="store_true", help="hide the blur (zero maps): the same loop's blind baseline")
    ap.add_argument("--steps", type=int, help="override the recipe's steps")
    ap.add_argument(
        "--tell-noise-kind",
        action="store_true",
        help="a 4th map: the noise kind (1 demosaicking residual, 0 white; needs noise = 'mixed'); with --blind, zeros",
    )
    ap.add_argument("--seed", type=int, help="override the recipe's seed")
    args = ap.parse_args()
    recipe = load_recipe(args.recipe)
    if recipe.task.name != "sharpen":
        refuse(f"{args.recipe}: a sharpening recipe is needed (task.name = {recipe.task.name!r})")
    recipe.model.n = 1
    if args.images:
        recipe.data.images = list(args.images)
    if args.val_images:
        recipe.data.val_images = list(args.val_images)
    if args.steps:
        recipe.train.steps = args.steps
    if args.seed is not None:
        recipe.train.seed = args.seed
    if args.tell_noise_kind and recipe.data.noise != "mixed":
        refuse(f"{args.recipe}: --tell-noise-kind needs data.noise = 'mixed' (got {recipe.data.noise!r})")
    kind = args.tell_noise_kind
    if args.run_dir.exists():
        refuse(f"{args.run_dir}: already exists (choose another --run-dir)")
    t = recipe.train
    if t.threads:
        torch.set_num_threads(t.threads)
    task = build_task(recipe)
    valset = task.valset
    torch.manual_seed(t.seed)
    model = ToldUNet(recipe.model.arch, told=3 + kind)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, recipe))
    gen = torch.Generator().manual_seed(t.seed * 1000)
    args.run_dir.mkdir(parents=True)
    log_path = args.run_dir / "log.jsonl"

    def log(record: dict) -> None:
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    log(
        {
            "event": "start",
            "told": not args.blind,
            "noise_kind_map": kind,
            "recipe": str(args.recipe),
            "steps": t.steps,
            "seed": t.seed,
        }
    )
    log({"step": 0, "val": evaluate(model, valset, recipe.val.border, args.blind, kind)})
    model.train()
    for step in tqdm(range(1, t.steps + 1), dynamic_ncols=True):
        batch = task.sample(recipe.stacks_per_step, gen)
        cov = covariance(batch.info["sigmas"], batch.info["theta"])
        if kind:
            cov = torch.cat([cov, batch.info["demosaic"].float()[:, :1]], 1)
        loss = F.l1_loss(model(batch.blurry, torch.zeros_like(cov) if args.blind else cov), batch.sharp)
        if not math.isfinite(loss.item()):
            raise SystemExit(f"the loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        sched.step()
        if step % 10 == 0:
            log({"step": step, "loss": loss.item(), "lr": sched.get_last_lr()[0]})
        if step % t.val_every == 0 or step == t.steps:
            val = evaluate(model, valset, recipe.val.border, args.blind, kind)
            log({"step": step, "val": val})
            tqdm.write(f"step {step}: val {val['mean_psnr']:.3f} dB")


if __name__ == "__main__":
    main()
