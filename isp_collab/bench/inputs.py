"""Up-front checks of ``isp-collab bench``: which flags an action uses, and the image sizes it needs.

Everything here runs before the first file is written, so a refused run leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Actions that run networks given with ``--models`` / on the ``--device``.
USES_MODELS = ("quality", "lens", "speed", "training", "all")
USES_DEVICE = ("quality", "lens", "training", "all")
#: Tile sizes of the collaboration-gain table (``bench training``): quick, full.
COLLAB_TILES = {True: (32,), False: (32, 64, 128)}


def unused_flag(action: str, models: Sequence[str] | None, device: str | None) -> str | None:
    """A one-line refusal for a given flag ``action`` would ignore (``--models``, ``--device``), else None."""
    if models is not None and action not in USES_MODELS:
        return f"--models does not apply to `bench {action}` (it runs no network); drop it"
    if device is not None and action not in USES_DEVICE:
        why = (
            "it times each runtime on its own device: CPU, and CUDA when available"
            if action == "speed"
            else "it runs no network"
        )
        return f"--device does not apply to `bench {action}` ({why}); drop it"
    return None


def _kernels_min(quick: bool) -> int:
    from .data import load_levin_kernels
    from .kernel_estimation import DEFAULT_PATCH

    kernels = list(load_levin_kernels().values())
    if quick:
        kernels = kernels[:3]  # as bench_kernels
    return DEFAULT_PATCH + 2 * max(k.shape[0] for k in kernels)


def min_image_side(action: str, quick: bool, lens_ksize: int = 0) -> tuple[int, str]:
    """Smallest image side ``bench <action>`` can use, and why (for the refusal message).

    ``lens_ksize``: the largest PSF of the lens models benchmarked (the lens field pads by half of it).
    """
    from .metrics import DEFAULT_BORDER
    from .protocol import KERNEL_SIZE

    scored = max(2 * DEFAULT_BORDER + 1, KERNEL_SIZE // 2 + 1, lens_ksize // 2 + 1)
    needs = {
        "quality": (
            scored,
            f"bench quality (scores without a {DEFAULT_BORDER}-px border, {KERNEL_SIZE}x{KERNEL_SIZE} blurs)",
        ),
        "lens": (scored, f"bench lens (scores without a {DEFAULT_BORDER}-px border, the lens PSFs)"),
        "tune": (KERNEL_SIZE // 2 + 1, f"bench tune ({KERNEL_SIZE}x{KERNEL_SIZE} blurs, reflected borders)"),
        "speed": (1, "bench speed"),
    }
    if action in ("kernels", "all"):
        k = _kernels_min(quick)
        needs["kernels"] = (k, "bench kernels (64-px crops away from the kernel-sized margins)")
    if action in ("training", "all"):
        t = max(COLLAB_TILES[quick])
        needs["training"] = (t, f"bench training (collaboration-gain tiles of {t} px)")
    if action == "all":
        return max((needs[a] for a in ("kernels", "training", "quality", "speed")), key=lambda x: x[0])
    return needs[action]


def check_images(folder: Path | None, action: str, quick: bool, lens_ksize: int = 0) -> None:
    """Refuse (ValueError naming the file) an image of ``folder`` below what ``action`` needs."""
    from .data import check_min_size

    side, why = min_image_side(action, quick, lens_ksize)
    check_min_size(folder, side, why)
