"""What ``bench speed`` times: the networks (shipped, given, or untrained stand-ins) and the side of the image.

The image must hold at least as many tiles as a network's N (:func:`size_refusal`): ``restore`` caps a
stack at the image's tiles under max pooling, while a static-N ONNX export repeats tiles, so on a smaller
image the torch and ONNX rows would time different work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models.unet import CollaborativeUNet

#: Stand-ins when no model is shipped: same architectures, untrained (cost does not depend on weights).
DEFAULT_ARCHS: tuple[tuple[str, int], ...] = (("unet-tx", 1), ("unet-tx", 4), ("unet-ts", 4))
TILE = 256
OVERLAP = 32
DEFAULT_SIZE = 512  # side of the square image timed (bench --size)
QUICK_SIZE = 128  # the same with --quick (raised where a model's N needs more tiles: default_size)


@dataclass
class ModelSpec:
    """A network to time: a shipped ``name`` or an untrained ``arch`` at stack size ``n``."""

    label: str
    n: int
    name: str | None = None
    arch: str | None = None
    card: dict = field(default_factory=dict)

    @property
    def strategy(self) -> str:
        """How ``process`` gathers this model's stacks: ``mirror`` for a lens model, else ``spread``."""
        return "mirror" if str(self.card.get("task", "")).startswith("lens") else "spread"

    def build(self, device: str = "cpu") -> CollaborativeUNet:
        """The network in eval mode on ``device``."""
        from ..models import create_model, load_model

        if self.name is not None:
            return load_model(self.name, device=device)
        return create_model(self.arch or "unet-tx", n=self.n).to(device).eval()


def model_specs(names: Sequence[str] | None = None) -> list[ModelSpec]:
    """Specs for shipped sharpening models (``names``; default: all shipped) or the untrained stand-ins."""
    from ..models import read_card

    if names is None:
        from .quality import shipped_by_task

        names = shipped_by_task()["sharpen"]
    if names:
        from .quality import model_label

        out = []
        for name in names:
            card = read_card(name)
            out.append(ModelSpec(model_label(name), max(1, int(card["n_trained"])), name=name, card=card))
        return out
    return [ModelSpec(f"{a}-n{n} (untrained)", n, arch=a) for a, n in DEFAULT_ARCHS]


def specs_to_time(models: Sequence[str] | None, quick: bool) -> tuple[list[ModelSpec], str | None]:
    """The specs ``bench speed`` times (quick mode without --models: the first only) and a note when trimmed."""
    specs = model_specs(models)
    if quick and not models and len(specs) > 1:
        return specs[:1], f"speed: quick mode times {specs[0].label} only (name others with --models)"
    return specs, None


def tiling_note(size: int) -> str:
    """How much more than the image the tiles of a ``size``² image cover (they overlap and cover its borders)."""
    from ..restore.tiling import make_grid

    covered = len(make_grid(size, size, TILE, OVERLAP)) * TILE * TILE / (size * size)
    return f"its {TILE}-px tiles cover {covered:.2f}x its pixels; a larger frame pays less of that per MP"


def stack_run(spec: ModelSpec, size: int) -> int:
    """The stack size ``restore`` runs ``spec`` at on a ``size``² image tiled as here: under max pooling it caps N at
    what the image's tiles fill (:func:`~isp_collab.restore.gathering.stack_cap`), where a static-N ONNX export
    repeats tiles up to N."""
    from ..restore.gathering import stack_cap
    from ..restore.model_card import center_in_pixels, trained_center
    from ..restore.tiling import make_grid

    if spec.card.get("pooling", "max") != "max":
        return spec.n
    trained = trained_center(spec.card) if spec.strategy == "mirror" else None
    center = center_in_pixels(trained, size, size) if trained else None
    grid = make_grid(size, size, TILE, OVERLAP, center, symmetric=spec.strategy == "mirror")  # as restore lays it
    return min(spec.n, stack_cap(grid, spec.n, spec.strategy))


def smallest_size(specs: Sequence[ModelSpec]) -> int:
    """The smallest side from which on ``restore`` runs every spec at its full N (:func:`stack_run`).

    Tiles of a ``size``² image are at least ceil(size / TILE)² (a mirror orbit holds at most 4 of them), so every
    side above TILE * (ceil(sqrt(N)) - 1) fills a stack of N: only the sides up to there are tried.
    """
    sized = {(s.n, s.strategy, s.card.get("pooling"), str(s.card.get("optical_center"))): s for s in specs if s.n > 1}
    largest = TILE * max((math.isqrt(s.n - 1) for s in sized.values()), default=0)
    short = [size for size in range(64, largest + 1) if any(stack_run(s, size) < s.n for s in sized.values())]
    return max(short, default=63) + 1


def size_refusal(specs: Sequence[ModelSpec], size: int) -> str | None:
    """One line refusing a ``size``² image whose tiles cannot fill a spec's stack (None when every one is full).

    There, torch would run fewer tiles per stack than the static-N ONNX file, and their rows would not compare.
    """
    short = [(s, stack_run(s, size)) for s in specs if stack_run(s, size) < s.n]
    if not short:
        return None
    spec, ran = max(short, key=lambda x: x[0].n)
    return (
        f"--size {size}: on a {size}x{size} image restore runs {spec.label} (N={spec.n}) at N={ran}, all its "
        f"{TILE}-px tiles, while its static-N ONNX export repeats tiles up to N={spec.n}: the torch and ONNX rows "
        f"would not be comparable; use --size {smallest_size(specs)} or larger"
    )


def default_size(specs: Sequence[ModelSpec], quick: bool) -> int:
    """The image side timed without ``--size``: 512 (128 quick), or the smallest whose tiles fill every stack."""
    return max(QUICK_SIZE if quick else DEFAULT_SIZE, smallest_size(specs))
