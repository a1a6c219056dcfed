"""Options shared by the drivers of ``isp-collab bench``: output folder, images, threads, models, device."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .data import VAL_DIR, load_images

Say = Callable[[str], None]
#: Sections name the images they measured when there are at most this many (else count and folder).
MAX_NAMED_IMAGES = 8


@dataclass
class BenchOptions:
    """Shared options: output folder, quick mode, image folder, threads, models, device.

    ``measured`` collects, as the drivers run, ``{section: what ran the networks}`` for the machine section.
    """

    out: Path
    quick: bool = False
    images: Path | None = None
    threads: int = 1
    models: list[str] | None = None
    device: str | None = None
    size: int | None = None  # side of the square image `speed` times (None: 512, 128 with quick)
    say: Say = print
    measured: dict[str, str] = field(default_factory=dict)

    @property
    def results(self) -> Path:
        """``out/RESULTS.md``."""
        return self.out / "RESULTS.md"

    @property
    def images_tag(self) -> str | None:
        """Suffix of sections and files for a user image folder: its name and a short hash of its path.

        ``lensA/val`` and ``lensB/val`` get ``val-<hash A>`` and ``val-<hash B>``; None for the committed set.
        """
        if self.images is None or Path(self.images).resolve() == VAL_DIR.resolve():
            return None
        path = Path(self.images).resolve()
        name = re.sub(r"[^A-Za-z0-9_.]+", "_", path.name).strip("_.") or "images"
        return f"{name}-{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"

    def section(self, name: str) -> str:
        """Section name; suffixed with :attr:`images_tag` for user images."""
        tag = self.images_tag
        return name if tag is None else f"{name}-{tag}"

    def file(self, stem: str, suffix: str) -> Path:
        """``out/<stem><suffix>``, the stem suffixed like :meth:`section` for user images."""
        return self.out / f"{self.section(stem)}{suffix}"

    def describe_images(self, images: list) -> str:
        """What a section says of the images it measured: count and folder, and their names when few.

        ``"2 images of `photos/` (`a`, `b`)"``; the committed set is named by its sources.
        """
        from .report import plural

        folder = "Set14 colour + Set5 (`benchmarks/data/val`)" if self.images_tag is None else f"`{Path(self.images)}`"
        names = f" (`{'`, `'.join(im.name for im in images)}`)" if len(images) <= MAX_NAMED_IMAGES else ""
        return f"{plural(len(images), 'image')} of {folder}{names}"

    def load(self, max_images: int | None = None) -> list:
        """The colour images of :attr:`images` (default: the committed set), at most ``max_images``."""
        return load_images(self.images, max_images=max_images)

    def models_of(self, task: str) -> list[str]:
        """``--models`` of ``task`` (card task), else the shipped models of ``task``."""
        from . import quality

        return (quality.shipped_by_task() if self.models is None else quality.by_task(self.models))[task]

    def remove_unlinked(self, body: str, stems: tuple[str, ...]) -> None:
        """Remove the plots of ``stems`` (a section's own, named for these images) that its ``body`` no longer links.

        A re-run that draws fewer plots (no sharpening model, no lens curve) would otherwise leave an earlier run's
        plot beside a RESULTS.md that no longer says what it shows.
        """
        for stem in stems:
            plot = self.file(stem, ".png")
            if f"]({plot.name})" not in body and plot.is_file() and not plot.is_symlink():
                plot.unlink()
                self.say(f"removed {plot.name}: an earlier run's plot this section no longer shows")

    @property
    def device_name(self) -> str:
        """The device the networks run on (``--device``, else CUDA when available, else CPU)."""
        from ..device import pick_device

        return str(pick_device(self.device))
