"""The committed benchmark set and user image folders.

``benchmarks/data/val/`` holds Set14 (Zeyde et al. 2010) without its one greyscale image
(``bridge.png``) and Set5 (Bevilacqua et al. 2012): 18 colour PNGs. ``benchmarks/data/levin09.npz``
holds the 8 motion-blur kernels of Levin et al. 2009 ("Understanding and evaluating blind
deconvolution algorithms"), ``kernel1``..``kernel8``, each summing to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
DATA_DIR = BENCH_DIR / "data"
VAL_DIR = DATA_DIR / "val"
LEVIN_KERNELS = DATA_DIR / "levin09.npz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


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
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return files


def read_srgb(path: str | Path) -> np.ndarray | None:
    """Colour image file -> H x W x 3 float32 sRGB in [0, 1]; ``None`` for a greyscale one.

    Greyscale images are skipped rather than replicated to three channels: a grey image run
    through a colour unprocessing (white balance, colour matrix) is not a plausible camera image.
    """
    try:
        with Image.open(path) as im:
            if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
                return None
            if im.mode != "RGB":
                im = im.convert("RGB")
            arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError) as e:  # PIL.UnidentifiedImageError is an OSError; truncated files too
        raise ValueError(
            f"{path}: cannot read the image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        return None
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    out = arr.astype(np.float32) / scale
    if np.allclose(out[..., 0], out[..., 1]) and np.allclose(out[..., 1], out[..., 2]):
        return None  # a greyscale image stored as RGB
    return out


def load_images(folder: str | Path | None = None, max_images: int | None = None) -> list[BenchImage]:
    """Colour images of ``folder`` (default the committed set), named relative to the folder."""
    root = Path(folder) if folder is not None else VAL_DIR
    out: list[BenchImage] = []
    for path in list_images(root):
        srgb = read_srgb(path)
        if srgb is None:
            continue
        out.append(BenchImage(path.relative_to(root).with_suffix("").as_posix(), srgb))
        if max_images is not None and len(out) >= max_images:
            break
    if not out:
        raise FileNotFoundError(f"{root}: no colour images")
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
