"""Image sources: a folder of photos held in memory, and a procedural dead-leaves generator.

Both give sRGB crops ``(3, size, size)`` float32 in [0, 1] with random flips and 90° rotations
(``random_crop``), batches of crops (``random_crops``, optionally all from one image), and an
iteration over whole images for validation (``images``). All randomness comes from a
``torch.Generator`` so samplers are reproducible.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..native_stderr import capture_stderr

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")  # photo files every command reads
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB of decoded pixels


class MemoryCapWarning(UserWarning):
    """An :class:`ImageFolder` reached its memory cap and loaded only some of its images."""


def _randint(high: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(high, (1,), generator=generator))


def _augment(crop: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
    """Random element of the dihedral group (transpose, vertical flip, horizontal flip) on HxWxC."""
    code = _randint(8, generator)
    if code & 1:
        crop = crop.transpose(1, 0, 2)
    if code & 2:
        crop = crop[::-1]
    if code & 4:
        crop = crop[:, ::-1]
    return crop


def _to_tensor(crop: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8/uint16/float32 → (3, H, W) float32 in [0, 1]."""
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(crop.dtype, 1.0)
    t = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float()
    return t / scale if scale != 1.0 else t


_OPENCV_LOG = re.compile(r"^\s*\[\w+:\d+@[\d.]+\]\s+global\s+\S+\s+\w+\s+")


def read_image(path: str | Path) -> np.ndarray:
    """Decode a PNG/JPEG/TIFF (8 or 16 bit) to an HxWx3 RGB uint8/uint16 array.

    Greyscale is repeated to 3 channels, alpha dropped, float images converted to uint16.
    Raises ``ValueError`` naming the file if it cannot be decoded.
    """
    libpng: list[str] = []  # a truncated PNG makes libpng print on fd 2: kept for the one-line error
    with capture_stderr(libpng):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        # libpng's words, or OpenCV's log line without its "[ERROR:0@1.371] global grfmt_png.cpp:296 readHeader"
        said = [_OPENCV_LOG.sub("", line).strip() for line in libpng if line.strip()]
        detail = said[-1] if said else "not an image, truncated or corrupt"
        raise ValueError(f"{path}: cannot read the image ({detail})")
    if img.ndim == 2:
        img = img[..., None]
    # 1 channel = grey, 2 = grey + alpha, 3 = BGR, 4 = BGRA.
    img = np.repeat(img[..., :1], 3, axis=2) if img.shape[2] < 3 else cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    if img.dtype not in (np.uint8, np.uint16):
        img = (np.clip(img.astype(np.float32), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    return np.ascontiguousarray(img)


def image_files(folder: str | Path) -> list[Path]:
    """The photo files (:data:`IMAGE_SUFFIXES`, any case) under ``folder``, recursive and sorted; hidden files and
    folders left out (macOS's ``._IMG.png`` AppleDouble files are metadata, not photos, and stopped a run)."""
    root = Path(folder)
    return sorted(
        f
        for f in root.rglob("*")
        if f.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in f.relative_to(root).parts)
        and f.is_file()
    )


def _list_images(paths: Sequence[str | Path]) -> list[list[Path]]:
    """The image files of each path (a folder, recursive and sorted, or one file)."""
    groups: list[list[Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            groups.append(image_files(p))
        elif p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            groups.append([p])
    return groups


def _reading_order(sizes: list[int], seed: int) -> list[int]:
    """A seeded order of ``sum(sizes)`` files (numbered group after group): one file of every group first, then
    the rest so that every prefix holds each group in proportion to its size (each group shuffled, its k-th
    file of n keyed ``(k + u) / n`` with ``u`` uniform in [0, 1))."""
    rng = np.random.default_rng(seed)
    keyed, first = [], 0
    for n in sizes:
        for k, j in enumerate(rng.permutation(n).tolist()):
            keyed.append((k > 0, (k + rng.random()) / n, first + j))
        first += n
    return [i for *_, i in sorted(keyed)]


class ImageFolder:
    """Photos from folders (recursive) or files, decoded once and kept in memory as uint8/uint16.

    Args:
        paths: a folder/file or a list of them; PNG, JPEG, TIFF, 8 or 16 bit.
        max_bytes: cap on the decoded pixels held. Files are read in a seeded random order that
            interleaves the folders in proportion to their sizes, so a cap keeps a random sample of
            every folder; past the cap loading stops with one warning (how many of how many images were
            loaded). The loaded images are kept in file order, so an uncapped folder gives the same
            images, in the same order, as a plain sorted listing.
        seed: seed of that reading order.

    Attributes:
        found: how many image files were found (``len(self)`` were loaded).

    Raises:
        ValueError: (one line, naming the folder) if no image is found.
    """

    def __init__(
        self, paths: str | Path | Sequence[str | Path], max_bytes: int = DEFAULT_MAX_BYTES, seed: int = 0
    ) -> None:
        roots = [paths] if isinstance(paths, (str, Path)) else list(paths)
        self.where = ", ".join(map(str, roots)) or "(no path given)"
        groups = _list_images(roots)
        files = [f for g in groups for f in g]
        if not files:
            raise ValueError(f"no PNG/JPEG/TIFF images found in {self.where}")
        self.found = len(files)
        loaded: dict[int, np.ndarray] = {}
        total = 0
        for i in _reading_order([len(g) for g in groups], seed):
            img = read_image(files[i])
            if total + img.nbytes > max_bytes:
                warnings.warn(
                    f"{self.where}: loaded {len(loaded)} of {len(files)} images (a random sample of every folder): "
                    f"the memory cap of {max_bytes / 2**20:.0f} MiB is reached",
                    MemoryCapWarning,
                    stacklevel=2,
                )
                break
            loaded[i] = img
            total += img.nbytes
        if not loaded:
            raise ValueError(f"no image of {self.where} fits in max_bytes={max_bytes}")
        self.arrays: list[np.ndarray] = [loaded[i] for i in sorted(loaded)]
        self.paths: list[Path] = [files[i] for i in sorted(loaded)]
        self.nbytes = total

    def __len__(self) -> int:
        return len(self.arrays)

    def eligible(self, size: int) -> list[int]:
        """Indices of the images at least ``size`` px on each side; ``ValueError`` naming the folders if none."""
        idx = [i for i, a in enumerate(self.arrays) if min(a.shape[:2]) >= size]
        if not idx:
            raise ValueError(f"{self.where}: no image is at least {size}x{size} px")
        return idx

    def _crop(self, i: int, size: int, generator: torch.Generator | None) -> torch.Tensor:
        a = self.arrays[i]
        y = _randint(a.shape[0] - size + 1, generator)
        x = _randint(a.shape[1] - size + 1, generator)
        return _to_tensor(_augment(a[y : y + size, x : x + size], generator))

    def random_crops(
        self, size: int, count: int, generator: torch.Generator | None = None, same_image: bool = False
    ) -> torch.Tensor:
        """``count`` random crops, each from a random image (or all from one if ``same_image``).

        Returns:
            ``(count, 3, size, size)`` float32 sRGB in [0, 1].
        """
        _check_count(count)
        idx = self.eligible(size)
        first = idx[_randint(len(idx), generator)]
        picks = [first if same_image or j == 0 else idx[_randint(len(idx), generator)] for j in range(count)]
        return torch.stack([self._crop(i, size, generator) for i in picks])

    def random_crop(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """One random crop with a random flip/rotation: ``(3, size, size)`` float32 sRGB in [0, 1]."""
        return self.random_crops(size, 1, generator)[0]

    def images(self) -> Iterator[torch.Tensor]:
        """Every loaded image as ``(3, H, W)`` float32 sRGB in [0, 1], in file order."""
        for a in self.arrays:
            yield _to_tensor(a)


def _check_count(count: int) -> None:
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1, got {count!r}")


class DeadLeaves:
    """Procedural dead-leaves images: occluding discs with power-law radii and random colours.

    Disc radii follow p(r) ∝ r^-3 on [r_min, r_max], the scale-invariant law that gives
    dead leaves the 1/f² power spectrum and edge statistics of natural images (Lee, Mumford &
    Huang 2001). An optional slight Gaussian blur (σ ≤ 0.8 px) softens the edges like optics.
    Rendering uses numpy/cv2 seeded from the torch generator, so crops are reproducible.

    Args:
        seed: seed of the fixed validation images (:meth:`images`).
        r_min: smallest disc radius in px.
        blur: add a random slight blur to each rendered image.
    """

    def __init__(self, seed: int = 0, r_min: float = 2.0, blur: bool = True) -> None:
        if not (math.isfinite(r_min) and r_min > 0):
            raise ValueError(f"r_min must be a finite radius > 0 px, got {r_min!r}")
        self.seed = seed
        self.r_min = r_min
        self.blur = blur

    def render(self, size: int, seed: int) -> np.ndarray:
        """One ``size x size x 3`` float32 sRGB image in [0, 1], deterministic in ``seed``."""
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a whole number of pixels >= 1, got {size!r}")
        rng = np.random.default_rng(seed)
        r_min, r_max = self.r_min, max(self.r_min * 2, size / 2)
        # Mean disc area under p(r) ∝ r^-3 is 2π r_min² ln(r_max/r_min) / (1 - (r_min/r_max)²);
        # draw enough discs to cover the (margin-extended) canvas ~5 times so the background rarely shows.
        mean_area = 2 * np.pi * r_min**2 * np.log(r_max / r_min) / (1 - (r_min / r_max) ** 2)
        count = int(5 * (size + r_max) ** 2 / mean_area) + 1
        u = rng.random(count)
        radii = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5  # inverse CDF of r^-3
        centres = rng.uniform(-r_max / 2, size + r_max / 2, (count, 2))
        # Colours: random luminance times a mild random chroma, as photos are mostly unsaturated.
        lum = rng.random((count, 1))
        colours = np.clip(lum * (1 + 0.6 * rng.uniform(-1, 1, (count, 3))), 0.0, 1.0)
        img = np.empty((size, size, 3), np.float32)
        img[:] = rng.random(3)
        shift = 4  # sub-pixel precision of cv2 drawing (1/16 px)
        for (cx, cy), r, c in zip(centres * 16, radii * 16, colours.tolist(), strict=True):
            cv2.circle(img, (int(cx), int(cy)), int(r), c, -1, cv2.LINE_AA, shift)
        if self.blur:
            sigma = rng.uniform(0.0, 0.8)
            if sigma > 0.2:
                img = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        return np.clip(img, 0.0, 1.0)

    def random_crops(
        self, size: int, count: int, generator: torch.Generator | None = None, same_image: bool = False
    ) -> torch.Tensor:
        """``count`` images ``(count, 3, size, size)`` float32 sRGB; crops of one larger image if ``same_image``."""
        _check_count(count)
        if not same_image:
            return torch.stack([self.random_crop(size, generator) for _ in range(count)])
        big = self.render(2 * size, _randint(2**31 - 1, generator))
        crops = []
        for _ in range(count):
            y, x = _randint(size + 1, generator), _randint(size + 1, generator)
            crops.append(_to_tensor(_augment(big[y : y + size, x : x + size], generator)))
        return torch.stack(crops)

    def random_crop(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A fresh dead-leaves image ``(3, size, size)`` float32 sRGB in [0, 1]."""
        return _to_tensor(self.render(size, _randint(2**31 - 1, generator)))

    def images(self, count: int = 8, size: int = 256) -> Iterator[torch.Tensor]:
        """``count`` fixed validation images ``(3, size, size)`` float32 sRGB, from ``seed``."""
        for i in range(count):
            yield _to_tensor(self.render(size, self.seed * 100_003 + i))


def image_source(paths: Sequence[str | Path] | str | Path | None = None, **kwargs) -> ImageFolder | DeadLeaves:
    """``ImageFolder(paths, **kwargs)``, or ``DeadLeaves(**kwargs)`` when ``paths`` is None/empty."""
    if not paths:
        return DeadLeaves(**kwargs)
    return ImageFolder(paths, **kwargs)
