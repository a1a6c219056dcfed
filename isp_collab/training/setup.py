"""What a training run starts from: the learning-rate schedule, Adam's parameter groups, the weight average (EMA)
and the weights of a trained model (``--init``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel

from ..models import load_model
from .config import Recipe

__all__ = ["ema_of", "init_from", "lr_factor", "param_groups"]


def lr_factor(step: int, recipe: Recipe) -> float:
    """Linear warmup, then cosine from ``lr`` down to ``lr_min`` at the last step."""
    t = recipe.train
    if step < t.warmup:
        return (step + 1) / t.warmup
    progress = min(1.0, (step - t.warmup) / max(1, t.steps - t.warmup))
    lo = t.lr_min / t.lr
    return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * progress))


def ema_of(model: torch.nn.Module, decay: float) -> AveragedModel:
    """Exponential moving average of ``model``'s weights and BatchNorm statistics (``torch.optim.swa_utils``).

    The decay is warmed up as ``min(decay, (1 + t) / (10 + t))`` at update ``t``, so early averages are
    not dominated by the identity initialisation.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        t = float(updates)
        weight = 1.0 - min(decay, (1.0 + t) / (10.0 + t))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:  # BatchNorm's integer batch counter: keep the live one
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def param_groups(model: torch.nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    """Adam's parameter groups: one, or the collaboration layers apart at ``train.collab_lr`` times the rate."""
    scale = recipe.train.collab_lr
    if scale == 1.0:
        return [{"params": list(model.parameters())}]
    collab = [p for name, p in model.named_parameters() if name.startswith("collab_")]
    rest = [p for name, p in model.named_parameters() if not name.startswith("collab_")]
    return [{"params": rest}, {"params": collab, "lr": recipe.train.lr * scale}]


def init_from(model: torch.nn.Module, init: str | Path) -> None:
    """Copy a trained model's weights; only collaboration layers may be missing from it."""
    source = load_model(init)
    if source.config.arch != model.config.arch:
        raise ValueError(f"{init}: architecture {source.config.arch} does not match the recipe's {model.config.arch}")
    if source.config.norm != model.config.norm:
        raise ValueError(
            f"{init}: norm {source.config.norm} does not match the recipe's model.norm {model.config.norm}"
        )
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    if unexpected or any(not k.startswith("collab_") for k in missing):
        raise ValueError(f"{init}: weights do not fit this network (e.g. {(unexpected or missing)[0]})")
