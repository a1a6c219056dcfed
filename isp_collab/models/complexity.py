"""Parameter and FLOP counts of the network family (FLOPs from ``torch.utils.flop_counter``).

GFLOPs here are 2 x GMACs (one multiply-add = 2 FLOPs), per megapixel of restored image.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .unet import ARCHITECTURES, create_model

# The paper's parameter counts (Eboli et al.), used by `isp-collab info` and asserted by tests.
PAPER_PARAMS: dict[tuple[str, str], float] = {
    ("unet", "N=1"): 17.7e6,
    ("unet-s", "N=1"): 4.4e6,
    ("unet-x", "N=1"): 1.1e6,
    ("unet-t", "N=1"): 4.3e6,
    ("unet-ts", "N=1"): 1.1e6,
    ("unet-tx", "N=1"): 270e3,
    ("unet", "N>1"): 18.7e6,
    ("unet-t", "N>1"): 4.6e6,
    ("unet-tx", "N>1"): 284e3,
}


def count_params(model: torch.nn.Module) -> int:
    """The number of parameters (weights and biases; BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def stack_flops(model: torch.nn.Module, n: int = 1, size: int = 64) -> int:
    """Forward FLOPs (``torch.utils.flop_counter``: 1 multiply-add = 2 FLOPs) of one (1, n, 3, size, size) stack,
    on the model's device (``"meta"`` counts without computing anything); the model is put in eval mode."""
    x = torch.zeros(1, n, 3, size, size, device=next(model.parameters()).device)
    model = model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops())


def gflops_per_megapixel(model: torch.nn.Module, n: int = 1, size: int = 64) -> float:
    """Forward GFLOPs per megapixel of restored tiles, counted on a (1, n, 3, size, size) stack (:func:`stack_flops`)."""
    return stack_flops(model, n, size) / (n * size * size) * 1e6 / 1e9


def family_table(n_collab: int = 4) -> list[dict]:
    """One row per (architecture, N=1 / N>1): params, the paper's count, GFLOPs/MP."""
    rows = []
    for arch in ARCHITECTURES:
        for label, n in (("N=1", 1), ("N>1", n_collab)):
            with torch.device("meta"):  # shapes only: counting takes no memory or arithmetic (fast `info`)
                model = create_model(arch, n=n)
            rows.append(
                {
                    "arch": arch,
                    "n": label,
                    "params": count_params(model),
                    "paper": PAPER_PARAMS.get((arch, label)),
                    "gflops_per_mp": gflops_per_megapixel(model, n=n),
                }
            )
    return rows
