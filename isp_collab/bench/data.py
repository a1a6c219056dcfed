"""The committed benchmark set and user image folders.

``benchmarks/data/val/`` holds Set14 (Zeyde et al. 2010) without its two greyscale images
(``bridge.png``, ``man.png``) and Set5 (Bevilacqua et al. 2012): 17 colour PNGs (12 + 5). ``benchmarks/data/levin09.npz``
holds the 8 motion-blur kernels of Levin et al. 2009 ("Understanding and evaluating blind
deconvolution algorithms"), ``kernel1``..``kernel8``, each summing to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..data.sources import IMAGE_SUFFIXES, image_files
from ..shipped import REPO_ROOT, shipped_path

BENCH_DIR = REPO_ROOT / "benchmarks"  # RESULTS.md and plots: a source checkout
DATA_DIR = shipped_path("benchmarks/data")  # the benchmark set: the checkout's, or the wheel's copy
VAL_DIR = DATA_DIR / "val"
LEVIN_KERNELS = DATA_DIR / "levin09.npz"


@dataclass
class BenchImage:
    """One benchmark image: ``name`` (``set14/baboon``) and ``srgb`` H x W x 3 float32 sRGB in [0, 1]."""

    name: str
    srgb: np.ndarray


def list_images(folder: str | Path | None = None) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted); default: the committed benchmark set."""
    root = Path(folder) if folder is not None else VAL_DIR
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such image folder")
    files = image_files(root)
    if not files:
        raise FileNotFoundError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return files


def read_srgb(path: str | Path) -> np.ndarray | None:
    """Colour image file -> H x W x 3 float32 sRGB in [0, 1]; ``None`` for a greyscale one.

    Decoded by :func:`isp_collab.data.sources.read_image`, the reader of training and validation, so
    a 16-bit PNG/TIFF keeps its 65536 levels here too. Greyscale images are skipped rather than
    replicated to three channels: a grey image run through a colour unprocessing (white balance,
    colour matrix) is not a plausible camera image.
    """
    from ..data.sources import read_image

    try:
        arr = read_image(path)
    except ValueError as e:  # already one line naming the file
        raise ValueError(str(e).splitlines()[0]) from None
    except (OSError, cv2.error) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: cannot read the image ({reason})") from None
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    out = arr.astype(np.float32) / scale
    if np.allclose(out[..., 0], out[..., 1]) and np.allclose(out[..., 1], out[..., 2]):
        return None  # a greyscale image (read_image repeats one channel to three)
    return out


#: Pillow modes of greyscale files (skipped by :func:`load_images`).
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def image_header(path: str | Path) -> tuple[int, int, bool]:
    """``(width, height, greyscale)`` of an image file, from its header when Pillow reads it.

    Raises ValueError naming the file when it cannot be read at all.
    """
    try:
        with Image.open(path) as im:
            return im.size[0], im.size[1], im.mode in GREY_MODES
    except (OSError, SyntaxError, ValueError) as e:  # PIL.UnidentifiedImageError is an OSError
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    from ..data.sources import read_image

    try:  # a file Pillow cannot open may still decode with OpenCV, the benchmark's reader
        arr = read_image(path)
    except (ValueError, OSError, cv2.error):
        raise ValueError(f"{path}: cannot read the image ({reason})") from None
    return arr.shape[1], arr.shape[0], False


def check_min_size(folder: str | Path | None, min_side: int, why: str) -> None:
    """Refuse (ValueError, one line naming the file) a colour image of ``folder`` below ``min_side`` px.

    ``why`` names what needs the size (``"bench quality (a 16-px border on each side)"``).
    """
    root = Path(folder) if folder is not None else VAL_DIR
    for path in list_images(root):
        w, h, grey = image_header(path)
        if not grey and min(w, h) < min_side:
            raise ValueError(f"{path}: {w}x{h} px is too small; {why} needs at least {min_side} px on each side")


def load_images(
    folder: str | Path | None = None, max_images: int | None = None, skipped: list[Path] | None = None
) -> list[BenchImage]:
    """Colour images of ``folder`` (default the committed set), named relative to the folder.

    Greyscale images are left out (:func:`read_srgb`); ``skipped``, when given, collects their paths
    so the caller can say which were left out.
    """
    root = Path(folder) if folder is not None else VAL_DIR
    out: list[BenchImage] = []
    grey: list[Path] = []
    for path in list_images(root):
        srgb = read_srgb(path)
        if srgb is None:
            grey.append(path)
            continue
        out.append(BenchImage(path.relative_to(root).with_suffix("").as_posix(), srgb))
        if max_images is not None and len(out) >= max_images:
            break
    if skipped is not None:
        skipped.extend(grey)
    if not out:
        names = ", ".join(p.relative_to(root).as_posix() for p in grey[:5]) + (" ..." if len(grey) > 5 else "")
        count = f"{len(grey)} greyscale image{'s' * (len(grey) != 1)}"
        why = f": {count} skipped ({names}), the colour unprocessing needs colour"
        raise FileNotFoundError(f"{root}: no colour images{why if grey else ''}")
    return out


def load_levin_kernels(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Levin et al. 2009's kernels: ``{"kernel1": (k, k) float64 summing to 1, ...}`` in file order 1..8."""
    path = Path(path) if path is not None else LEVIN_KERNELS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing kernel file")
    with np.load(path) as d:
        names = sorted(d.files, key=lambda s: int("".join(c for c in s if c.isdigit()) or 0))
        kernels = {n: d[n].astype(np.float64) for n in names}
    return {n: k / k.sum() for n, k in kernels.items()}
