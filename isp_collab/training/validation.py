"""Fixed, seeded validation sets and their evaluation (PSNR in linear RGB).

Validation mirrors inference: the *whole* photo is degraded once, tiles are cut from it, and the
tiles of one photo are stacked together (``tiles_per_image`` must be a multiple of N). The set is
built from the recipe's seed only, never from N, so N=1/4/8 runs are scored on identical tiles.

- sharpen: per photo and per isotropic σ, blur + noise; 8 tiles spread over the photo.
- lens: per photo, the lens PSF field applied to the whole frame; mirror quadruplets of tiles
  (flipped into the first quadrant's orientation), grouped by field radius into centre /
  intermediate / edge regions (the layout of the paper's Table 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..physics.kernels import blur_image, isotropic_gaussian_kernel
from ..physics.noise import add_gaussian_noise
from ..physics.unprocess import random_isp_params, unprocess
from .config import ValSection

REGIONS = ("centre", "intermediate", "edge")


@dataclass
class ValGroup:
    """Tiles of one condition: (M, 3, t, t) linear RGB; consecutive ``group`` tiles come from one photo."""

    blurry: torch.Tensor
    sharp: torch.Tensor
    group: int


def psnr(x: torch.Tensor, y: torch.Tensor, border: int) -> torch.Tensor:
    """Per-tile PSNR (dB) of (M, 3, t, t) tensors in [0, 1], ignoring ``border`` pixels each side."""
    if border:
        x, y = x[..., border:-border, border:-border], y[..., border:-border, border:-border]
    mse = ((x.clamp(0, 1) - y) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def _linear_photo(srgb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(3, H, W) sRGB in [0, 1] -> (3, H, W) linear camera RGB with seeded random ISP parameters."""
    return unprocess(srgb[None].float(), random_isp_params(gen))[0].clamp(0, 1)


def _spread_tiles(h: int, w: int, tile: int, count: int, gen: torch.Generator) -> list[tuple[int, int]]:
    """``count`` tile corners spread over the frame: one per cell of a coarse grid, jittered."""
    rows = int(np.floor(np.sqrt(count * h / w))) or 1
    cols = int(np.ceil(count / rows))
    out = []
    for i in range(count):
        r, c = divmod(i, cols)
        y0 = (h - tile) * (r + torch.rand(1, generator=gen).item()) / max(rows, 1)
        x0 = (w - tile) * (c + torch.rand(1, generator=gen).item()) / max(cols, 1)
        out.append((int(min(y0, h - tile)), int(min(x0, w - tile))))
    return out


def build_sharpen_valset(
    photos: list, cfg: ValSection, noise: str = "gaussian", where: str = "validation photos"
) -> dict[str, ValGroup]:
    """photos: (3, H, W) sRGB tensors in [0, 1]; those smaller than ``cfg.tile`` are skipped.

    Raises ``ValueError`` starting with ``where`` (the folder) when no photo holds a tile.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    groups: dict[str, tuple[list, list]] = {f"sigma={s:g}": ([], []) for s in cfg.sigmas}
    for img in photos:
        lin = _linear_photo(img, gen)
        _, h, w = lin.shape
        if min(h, w) < cfg.tile:
            continue
        corners = _spread_tiles(h, w, cfg.tile, cfg.tiles_per_image, gen)
        for s in cfg.sigmas:
            k = isotropic_gaussian_kernel(s)
            blurry = blur_image(lin[None], k[None], padding="reflect")
            if noise == "demosaic":
                from ..physics.noise import demosaic_residual_noise

                blurry = demosaic_residual_noise(blurry, gen)
            else:
                blurry = add_gaussian_noise(blurry, cfg.noise_level, gen)
            b_list, s_list = groups[f"sigma={s:g}"]
            for y, x in corners:
                b_list.append(blurry[0, :, y : y + cfg.tile, x : x + cfg.tile])
                s_list.append(lin[:, y : y + cfg.tile, x : x + cfg.tile])
    if not any(b for b, _ in groups.values()):
        raise ValueError(f"{where}: no validation photo is at least {cfg.tile}x{cfg.tile} px (val.tile)")
    return {
        k: ValGroup(torch.stack(b).clamp(0, 1), torch.stack(s), cfg.tiles_per_image) for k, (b, s) in groups.items()
    }


@torch.no_grad()
def restore_group(model: torch.nn.Module, g: ValGroup, n: int, device: torch.device) -> torch.Tensor:
    """The tiles of ``g`` restored in stacks of ``n`` consecutive tiles: (M, 3, t, t) linear RGB on the CPU."""
    if g.group % n:
        raise ValueError(f"validation groups of {g.group} tiles cannot be stacked by n={n}")
    x = g.blurry.reshape(-1, n, *g.blurry.shape[1:])
    outs = [model(x[i : i + 8].to(device)).cpu() for i in range(0, len(x), 8)]
    return torch.cat(outs).reshape_as(g.blurry)


@torch.no_grad()
def evaluate(model: torch.nn.Module, valset: dict[str, ValGroup], n: int, border: int, device: torch.device) -> dict:
    """PSNR (dB, linear RGB) per condition, restored and blurry, restoring stacks of ``n`` tiles.

    Returns ``{"restored": {cond: psnr}, "blurry": {cond: psnr}, "mean_psnr": ..., "mean_blurry": ...}``.
    Raises ``ValueError`` for an empty ``valset`` (its mean would be NaN).
    """
    if not valset:
        raise ValueError("empty validation set: no condition has a tile to score")
    was_training = model.training
    model.eval()
    restored, blurry = {}, {}
    for cond, g in valset.items():
        y = restore_group(model, g, n, device)
        restored[cond] = psnr(y, g.sharp, border).mean().item()
        blurry[cond] = psnr(g.blurry, g.sharp, border).mean().item()
    model.train(was_training)
    return {
        "restored": restored,
        "blurry": blurry,
        "mean_psnr": float(np.mean(list(restored.values()))),
        "mean_blurry": float(np.mean(list(blurry.values()))),
    }
