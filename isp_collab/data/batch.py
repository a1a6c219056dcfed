"""The record every stack sampler returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class StackBatch:
    """A batch of stacks and their targets.

    Attributes:
        blurry: ``(B, N, 3, P, P)`` float32 linear RGB, the network input (blurred + noise).
        sharp: ``(B, N, 3, P, P)`` float32 linear RGB in [0, 1], the targets.
        info: sampler-specific parameters (kernels, noise levels, ...), tensors with leading B.
    """

    blurry: torch.Tensor
    sharp: torch.Tensor
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.blurry.dim() != 5 or self.blurry.shape != self.sharp.shape:
            raise ValueError(
                f"blurry and sharp must both be (B, N, 3, P, P), got {tuple(self.blurry.shape)} and {tuple(self.sharp.shape)}"
            )

    def to(self, device: torch.device | str) -> StackBatch:
        """Move the images (not ``info``) to ``device``."""
        return StackBatch(self.blurry.to(device), self.sharp.to(device), self.info)
