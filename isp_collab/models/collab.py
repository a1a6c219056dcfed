"""Collaboration layers: share features across a stack of N patches (Eq. 5-6 of Eboli et al.).

Before every down and up module of the UNet, each patch feature ``e_n`` of the stack is updated as

    g   = p({e_1, ..., e_N})            (pooling over the stack, permutation invariant)
    e_n <- conv1x1(concat(e_n, g))

``max`` and ``mean`` pooling are learning-free and per pixel (the paper's); ``global-max`` is
learning-free too but pools each patch's features over space first (one descriptor per channel and
patch, then the max over the stack, broadcast back over the patch): a shared blur is the same
everywhere, so the stack can agree on it without aligned content (an experiment, RESULTS.md
*pooling-sharpen*); ``attention`` replaces ``g`` by a per-pixel self-attention over the stack
followed by an inverted-bottleneck MLP (permutation equivariant).
``merge="film"`` (an experiment, RESULTS.md *film-sharpen*) also scales each channel of the merged
features by ``1 + conv1x1(mean over space of g)``: a stack-wide descriptor that can switch filters
multiplicatively (as a blur-specific network would) where the concatenation only adds; the scale
conv starts at zero, so the layer starts as the plain one.
The merge conv is initialised as ``[I | 0]`` by default so that an untrained layer passes ``e_n``
through unchanged: an N>1 model then starts as the N=1 model it may be warm-started from
(``init="random"``: PyTorch's default conv init, the pooled features mixed in from the start).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..limits import MAX_N  # noqa: F401 (re-exported: the tools' cap on N)

Pooling = Literal["max", "mean", "global-max", "attention"]
POOLINGS: tuple[str, ...] = ("max", "mean", "global-max", "attention")
CollabInit = Literal["identity", "random"]
COLLAB_INITS: tuple[str, ...] = ("identity", "random")
Merge = Literal["concat", "film"]
MERGES: tuple[str, ...] = ("concat", "film")


class StackAttention(nn.Module):
    """Self-attention across the stack at every pixel, then an inverted-bottleneck MLP.

    x: (B, N, C, H, W) -> (B, N, C, H, W); tokens are the N patches of one pixel.
    """

    def __init__(self, channels: int, heads: int = 2, expansion: int = 2) -> None:
        super().__init__()
        heads = heads if channels % heads == 0 else 1
        self.heads = heads
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, expansion * channels), nn.GELU(), nn.Linear(expansion * channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C, H, W) features -> the attended features, same shape."""
        b, n, c, h, w = x.shape
        t = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, n, c)  # tokens: one sequence of N per pixel
        q, k, v = self.qkv(self.norm1(t)).reshape(b * h * w, n, 3, self.heads, c // self.heads).unbind(2)
        att = torch.softmax(torch.einsum("snhd,smhd->shnm", q, k) / (c // self.heads) ** 0.5, dim=-1)
        t = t + self.proj(torch.einsum("shnm,smhd->snhd", att, v).reshape(b * h * w, n, c))
        t = t + self.mlp(self.norm2(t))
        return t.reshape(b, h, w, n, c).permute(0, 3, 4, 1, 2)


class Collaboration(nn.Module):
    """e_n <- conv1x1(concat(e_n, p(e_1..e_N))) for features x: (B*N, C, H, W) of stacks of size n."""

    def __init__(
        self, channels: int, pooling: Pooling = "max", init: CollabInit = "identity", merge: Merge = "concat"
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if init not in COLLAB_INITS:
            raise ValueError(f"init must be one of {COLLAB_INITS}, got {init!r}")
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
        self.pooling = pooling
        self.attention = StackAttention(channels) if pooling == "attention" else None
        self.merge = nn.Conv2d(2 * channels, channels, kernel_size=1)
        self.scale = nn.Conv2d(channels, channels, kernel_size=1) if merge == "film" else None
        if self.scale is not None:  # starts at 1 + 0: the plain layer
            nn.init.zeros_(self.scale.weight)
            nn.init.zeros_(self.scale.bias)
        if init == "random":
            return
        with torch.no_grad():  # [I | 0]: start by ignoring the pooled features
            self.merge.weight.zero_()
            self.merge.weight[:, :channels, 0, 0].copy_(torch.eye(channels))
            self.merge.bias.zero_()

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """``x``: (B*N, C, H, W) features, ``n`` consecutive ones per stack -> the updated features, same shape."""
        bn, c, h, w = x.shape
        stack = x.reshape(bn // n, n, c, h, w)
        if self.pooling == "max":
            g = stack.amax(dim=1, keepdim=True).expand_as(stack)
        elif self.pooling == "mean":
            g = stack.mean(dim=1, keepdim=True).expand_as(stack)
        elif self.pooling == "global-max":
            g = stack.mean(dim=(3, 4), keepdim=True).amax(dim=1, keepdim=True).expand_as(stack)
        else:
            g = self.attention(stack)
        out = self.merge(torch.cat([stack, g], dim=2).reshape(bn, 2 * c, h, w))
        if self.scale is None:
            return out
        return out * (1 + self.scale(g.reshape(bn, c, h, w).mean(dim=(2, 3), keepdim=True)))
