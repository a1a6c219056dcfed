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


def skipped_warning(folder: Path, skipped: Sequence[Path], named: int = 5) -> str:
    """One line naming the photos of ``folder`` left out (greyscale: the unprocessing needs colour)."""
    from .report import plural

    names = [str(Path(p).relative_to(folder)) if Path(p).is_relative_to(folder) else str(p) for p in skipped]
    more = f" and {len(names) - named} more" if len(names) > named else ""
    return (
        f"skipped {plural(len(names), 'greyscale image')} of {folder} (the colour unprocessing needs colour): "
        f"{', '.join(names[:named])}{more}"
    )


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


#: Centre crop of the lens table in quick runs (``bench_lens``).
LENS_QUICK_CROP = 160


def check_images(folder: Path | None, action: str, quick: bool, lens_ksize: int = 0) -> None:
    """Refuse (ValueError naming the file) an image of ``folder`` below what ``action`` needs.

    ``lens_ksize`` > 0 (lens models are benchmarked): every image must also keep a scored pixel in each
    field region of the lens table (:func:`~isp_collab.bench.lens.missing_regions`), which takes more
    than the border alone: a region left empty would be a NaN cell, or a column of fewer images.
    """
    from .data import check_min_size

    side, why = min_image_side(action, quick, lens_ksize)
    check_min_size(folder, side, why)
    if lens_ksize > 0 and action in ("quality", "lens", "all"):
        check_lens_regions(folder, action, quick)


def check_lens_regions(folder: Path | None, action: str, quick: bool) -> None:
    """Refuse (ValueError naming the file) an image with an empty lens-table region once the border is removed."""
    from .data import VAL_DIR, image_header, list_images
    from .lens import min_lens_side, missing_regions
    from .metrics import DEFAULT_BORDER

    crop = LENS_QUICK_CROP if quick else None
    for path in list_images(folder if folder is not None else VAL_DIR):
        w, h, grey = image_header(path)
        if grey:
            continue
        shape = (h, w) if crop is None else (min(h, crop), min(w, crop))
        empty = missing_regions(shape, DEFAULT_BORDER)
        if empty:
            raise ValueError(
                f"{path}: {w}x{h} px is too small; bench {action} (the lens table, scored without a "
                f"{DEFAULT_BORDER}-px border) would have no {' or '.join(empty)} region (a square image needs at "
                f"least {min_lens_side(DEFAULT_BORDER)} px on each side)"
            )
