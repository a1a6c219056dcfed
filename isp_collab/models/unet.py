"""The collaborative UNet family of Eboli, Morel & Facciolo ("collaborative blind deblurring").

A UNet (DoubleConv blocks, 2x2 max-pool down, bilinear x2 up, 1x1 output conv, global residual)
that restores a stack of N patches at once. With N>1 a :class:`Collaboration` layer before every
down and every up module shares features across the stack. The same weights run at any N.

Names (depth 4 = UNet, depth 3 = UNet-T; width 64 / 32 "-S" / 16 "-X"):
``unet``, ``unet-s``, ``unet-x``, ``unet-t``, ``unet-ts``, ``unet-tx``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .collab import MERGES, POOLINGS, CollabInit, Collaboration, Merge, Pooling

Norm = Literal["batch", "none"]
NORMS: tuple[str, ...] = ("batch", "none")

# name -> (depth, base width)
ARCHITECTURES: dict[str, tuple[int, int]] = {
    "unet": (4, 64),
    "unet-s": (4, 32),
    "unet-x": (4, 16),
    "unet-t": (3, 64),
    "unet-ts": (3, 32),
    "unet-tx": (3, 16),
}


@dataclass(frozen=True)
class ModelConfig:
    """What defines a network: architecture name, depth, width, and whether it collaborates."""

    arch: str = "unet-tx"
    depth: int = 3
    width: int = 16
    collaborative: bool = False
    pooling: Pooling = "max"
    merge: Merge = "concat"
    norm: Norm = "batch"

    def to_dict(self) -> dict:
        """The fields as a plain dict (the model card's network keys)."""
        return asdict(self)


class DoubleConv(nn.Sequential):
    """(conv3x3 -> BN -> ReLU) x 2; with ``norm="none"`` (conv3x3 + bias -> ReLU) x 2."""

    def __init__(self, cin: int, cout: int, cmid: int | None = None, norm: Norm = "batch") -> None:
        cmid = cmid or cout
        batch = norm == "batch"
        super().__init__(
            nn.Conv2d(cin, cmid, 3, padding=1, bias=not batch),
            *([nn.BatchNorm2d(cmid)] if batch else []),
            nn.ReLU(inplace=True),
            nn.Conv2d(cmid, cout, 3, padding=1, bias=not batch),
            *([nn.BatchNorm2d(cout)] if batch else []),
            nn.ReLU(inplace=True),
        )


class CollaborativeUNet(nn.Module):
    """Restore a stack of patches that share a blur.

    forward(stack): stack (B, N, 3, H, W) float32 linear RGB in [0, 1] -> (B, N, 3, H, W),
    the same colour space. H and W must be multiples of 2**depth. Output = input + residual;
    the output conv is zero-initialised so an untrained network is the identity.
    """

    def __init__(self, config: ModelConfig, collab_init: CollabInit = "identity") -> None:
        super().__init__()
        if config.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {config.pooling!r}")
        if config.merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {config.merge!r}")
        if config.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {config.norm!r}")
        self.config = config
        d, c = config.depth, config.width
        widths = [c * 2**i for i in range(d)]  # encoder levels; bottleneck keeps the last width
        norm = config.norm
        self.inc = DoubleConv(3, widths[0], norm=norm)
        self.downs = nn.ModuleList(DoubleConv(widths[i], widths[min(i + 1, d - 1)], norm=norm) for i in range(d))
        # up i: concat(skip at level d-1-i, upsampled) -> next decoder width (halved, floor at c)
        self.ups = nn.ModuleList()
        dec_in = widths[-1]
        for i in range(d):
            skip = widths[d - 1 - i]
            out = widths[max(d - 2 - i, 0)]
            self.ups.append(DoubleConv(skip + dec_in, out, (skip + dec_in) // 2, norm=norm))
            dec_in = out
        self.outc = nn.Conv2d(widths[0], 3, 1)
        nn.init.zeros_(self.outc.weight)
        nn.init.zeros_(self.outc.bias)
        if config.collaborative:
            self.collab_down = nn.ModuleList(
                Collaboration(w, config.pooling, collab_init, config.merge) for w in widths
            )
            up_in = [widths[-1]] + [widths[max(d - 2 - i, 0)] for i in range(d - 1)]
            self.collab_up = nn.ModuleList(Collaboration(w, config.pooling, collab_init, config.merge) for w in up_in)
        else:
            self.collab_down = self.collab_up = None

    @property
    def multiple(self) -> int:
        """H and W of the input must be multiples of this."""
        return 2**self.config.depth

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        """Restore ``stack`` (see the class); TypeError / ValueError for a wrong type, shape, size or dtype."""
        if not isinstance(stack, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor stack (B, N, 3, H, W), got {type(stack).__name__}")
        if stack.ndim != 5 or stack.shape[2] != 3:
            raise ValueError(f"expected a stack of shape (B, N, 3, H, W), got {tuple(stack.shape)}")
        b, n, _, h, w = stack.shape
        m = self.multiple
        if h % m or w % m:
            raise ValueError(f"H and W must be multiples of {m} (2**depth), got H={h}, W={w}")
        if min(b, n) < 1:
            raise ValueError(f"expected at least one stack of at least one patch, got B={b}, N={n}")
        expected = next(self.inc.parameters()).dtype
        if stack.dtype != expected:  # uint8 or float64 would fail deep inside conv2d
            raise ValueError(f"expected a {expected} stack (linear RGB in [0, 1]), got {stack.dtype}")
        x = self.inc(stack.reshape(b * n, 3, h, w))
        skips = []
        for i, down in enumerate(self.downs):
            if self.collab_down is not None:
                x = self.collab_down[i](x, n)
            skips.append(x)
            x = down(F.max_pool2d(x, 2))
        for i, up in enumerate(self.ups):
            if self.collab_up is not None:
                x = self.collab_up[i](x, n)
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = up(torch.cat([skips[-1 - i], x], dim=1))
        return stack + self.outc(x).reshape(b, n, 3, h, w)


def create_model(
    arch: str = "unet-tx",
    *,
    n: int = 1,
    pooling: Pooling = "max",
    collab_init: CollabInit = "identity",
    merge: Merge = "concat",
    norm: Norm = "batch",
) -> CollaborativeUNet:
    """A fresh (identity-initialised) network. ``n`` > 1 adds the collaboration layers.

    ``collab_init``: the collaboration merge convs start as ``[I | 0]`` ("identity", the network is
    then the N=1 one) or with PyTorch's default init ("random"); the output is the identity either way.
    ``norm``: "batch" (BatchNorm after every 3x3 conv, the shipped models) or "none" (convs with a bias).

    >>> create_model("unet-tx", n=4, pooling="max")(torch.rand(1, 4, 3, 64, 64)).shape
    torch.Size([1, 4, 3, 64, 64])
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    depth, width = ARCHITECTURES[arch]
    config = ModelConfig(arch, depth, width, collaborative=n > 1, pooling=pooling, merge=merge, norm=norm)
    return CollaborativeUNet(config, collab_init)
