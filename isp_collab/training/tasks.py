"""What is trained: a task couples a stack sampler (training pairs) with its validation set.

- ``sharpen``: a uniform Gaussian blur shared by the N patches of a stack (SharpenSampler).
- ``lens``: a lens PSF field; stacks are the 4 mirror positions about the optical centre
  (LensSampler), optionally flipped into one orientation (``align``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.batch import StackBatch
from .config import Recipe
from .validation import REGIONS, ValGroup, _linear_photo, build_sharpen_valset, evaluate

DEAD_LEAVES = "dead-leaves (procedural)"


def validation_photos(recipe: Recipe) -> list[torch.Tensor]:
    """Validation photos as (3, H, W) float32 sRGB in [0, 1] (dead leaves when none are given)."""
    return _validation_photos(recipe)[0]


def _validation_photos(recipe: Recipe) -> tuple[list[torch.Tensor], int]:
    """The validation photos and how many files were found.

    A folder with more than ``val.max_images`` photos gives that many spread evenly over its sorted
    listing (every sub-folder represented in proportion, not the first ones in file order).
    """
    from ..data.sources import DeadLeaves, ImageFolder

    v = recipe.val
    if recipe.data.val_images:
        folder = ImageFolder(recipe.data.val_images)
        photos = list(folder.images())
        return [photos[i] for i in spread(len(photos), v.max_images)], folder.found
    photos = list(DeadLeaves(seed=v.seed).images(count=v.dead_leaves_images, size=max(256, 2 * v.tile)))
    return photos, len(photos)


def spread(count: int, k: int) -> list[int]:
    """``min(k, count)`` distinct indices of ``range(count)``, evenly spaced, first one 0.

    >>> spread(10, 4), spread(3, 5)
    ([0, 2, 5, 7], [0, 1, 2])
    """
    k = min(k, count)
    return [i * count // k for i in range(k)]


def _source(recipe: Recipe):
    """The training images (one warning, naming the recipe key, when the memory cap drops some), or dead leaves."""
    from ..data.sources import MemoryCapWarning, image_source

    if not recipe.data.images:
        return image_source(None)
    mb = recipe.data.max_megabytes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = image_source(recipe.data.images, max_bytes=mb * 2**20, seed=recipe.train.seed)
    for w in caught:
        hint = f" (raise [data] max_megabytes = {mb} to load more)" if issubclass(w.category, MemoryCapWarning) else ""
        warnings.warn(f"{w.message}{hint}", w.category, stacklevel=3)
    return source


class _Task:
    """What both tasks share: the training source, the lazily built validation set, data checks, card fields."""

    recipe: Recipe
    source: Any
    crop_size: int  # side of the crops the sampler draws from the training images
    _valset: dict[str, ValGroup] | None = None
    val_used: int = 0  # validation photos that gave tiles
    val_found: int = 0  # validation photo files found
    _val_notes: tuple[str, ...] = ()  # what the validation set lacks, said by _build_valset

    @property
    def valset(self) -> dict[str, ValGroup]:
        if self._valset is None:
            self._valset = self._build_valset()
        return self._valset

    def _build_valset(self) -> dict[str, ValGroup]:
        raise NotImplementedError

    def sample(self, stacks: int, gen: torch.Generator) -> StackBatch:
        """A training batch of ``stacks`` stacks (see :meth:`_draw`); ``data.clip`` clips ``blurry`` to [0, 1]."""
        batch = self._draw(stacks, gen)
        if self.recipe.data.clip:
            return StackBatch(batch.blurry.clamp(0.0, 1.0), batch.sharp, batch.info)
        return batch

    def _draw(self, stacks: int, gen: torch.Generator) -> StackBatch:
        raise NotImplementedError

    def _val_where(self) -> str:
        return ", ".join(self.recipe.data.val_images) or DEAD_LEAVES

    def _crop_reason(self) -> str:
        p = self.recipe.data.patch
        return f"training crops are data.patch = {p} px plus {self.crop_size - p} px for the blur"

    def check_training_images(self) -> None:
        """The training images must hold crops of ``crop_size`` px (the patch plus the blur's margin): checked
        before a run writes anything, one ``ValueError`` line naming the folders when none does (smaller
        ones are skipped: see :meth:`notes`)."""
        from ..data.sources import ImageFolder

        if isinstance(self.source, ImageFolder):
            try:
                self.source.eligible(self.crop_size)
            except ValueError as e:
                raise ValueError(f"{e} ({self._crop_reason()})") from None

    def _too_small(self) -> int:
        """How many loaded training photos are smaller than a training crop (never cropped); 0 for dead leaves."""
        from ..data.sources import ImageFolder

        if not isinstance(self.source, ImageFolder):
            return 0
        return len(self.source) - len(self.source.eligible(self.crop_size))

    def notes(self) -> list[str]:
        """Lines to print once the run is known to start: training photos skipped as too small, and (lens)
        field regions the validation set has no tiles for. Builds the validation set."""
        self.valset  # noqa: B018 - builds it, and its notes
        skipped, c = self._too_small(), self.crop_size
        if not skipped:
            return list(self._val_notes)
        return [
            f"note: {skipped} of {len(self.source)} training photos in {self.source.where} are smaller than "
            f"{c}x{c} px and are skipped ({self._crop_reason()})",
            *self._val_notes,
        ]

    def data_card(self) -> dict[str, Any]:
        """Card fields: the training and validation data, and how many images of each were used (training
        photos smaller than a training crop are skipped, and counted apart)."""
        from ..data.sources import ImageFolder

        images = isinstance(self.source, ImageFolder)
        self.valset  # noqa: B018 - counts the validation photos
        too_small = self._too_small()
        return {
            "training_data": list(self.recipe.data.images) or [DEAD_LEAVES],
            "training_images_used": len(self.source) - too_small if images else None,
            "training_images_too_small": too_small if images else None,
            "training_images_found": self.source.found if images else None,
            "validation_data": list(self.recipe.data.val_images) or [DEAD_LEAVES],
            "validation_images_used": self.val_used,
            "validation_images_found": self.val_found,
        }

    def validate(self, model: torch.nn.Module, device: torch.device) -> dict[str, Any]:
        return evaluate(model, self.valset, self.recipe.model.n, self.recipe.val.border, device)


class SharpenTask(_Task):
    """``sharpen``: stacks of N patches sharing one Gaussian blur (:class:`~isp_collab.data.sharpen.SharpenSampler`)."""

    def __init__(self, recipe: Recipe) -> None:
        from ..data.sharpen import SharpenSampler

        self.recipe = recipe
        d = recipe.data
        source = self.source = _source(recipe)

        def sampler(n: int) -> SharpenSampler:
            return SharpenSampler(
                source,
                n=n,
                patch=d.patch,
                noise=d.noise,
                sigma_range=(d.sigma_min, d.sigma_max),
                same_image=d.same_image,
                noise_per=d.noise_per,
                noise_kind_per=d.noise_kind_per,
                blur_jitter=d.blur_jitter,
                # wide enough for the widest blur drawn (33 px, the sampler's own, up to sigma 5.33)
                kernel_size=max(33, math.ceil(6 * d.sigma_max + 1) | 1),
            )

        self.sampler, self.single = sampler(recipe.model.n), sampler(1)
        self.sized = {m: sampler(m) for m in d.stack_sizes}  # data.stack_sizes: one sampler per size
        self.grouped = sampler(d.blur_group)  # data.blur_group (N=1): patches drawn as stacks of that size
        self.crop_size = d.patch + self.sampler.kernel_size - 1

    def _draw(self, stacks: int, gen: torch.Generator) -> StackBatch:
        """``stacks`` stacks of N (``stacks`` x N patches).

        With ``data.stacks_of_one``, that fraction of draws is N x ``stacks`` stacks of 1; with
        ``data.stack_sizes``, each draw picks a size m from the list and returns ``stacks`` x N / m stacks of m;
        with ``data.blur_group`` g > 1 (N=1), ``stacks`` / g stacks of g are drawn and returned as stacks of 1.
        """
        n, sizes, p = self.recipe.model.n, self.recipe.data.stack_sizes, self.recipe.data.stacks_of_one
        g = self.recipe.data.blur_group
        if g > 1:
            if stacks % g:
                raise ValueError(f"{stacks} patches cannot be drawn in groups of {g} sharing a blur")
            b = self.grouped.sample(stacks // g, gen)
            per_patch = {k: v.repeat_interleave(g, 0) for k, v in b.info.items() if k in ("kernels", "sigmas", "theta")}
            return StackBatch(b.blurry.flatten(0, 1)[:, None], b.sharp.flatten(0, 1)[:, None], per_patch)
        if sizes:
            m = sizes[int(torch.randint(len(sizes), (1,), generator=gen))]
            if (stacks * n) % m:
                raise ValueError(f"{stacks * n} patches cannot be drawn as stacks of {m}")
            return self.sized[m].sample(stacks * n // m, gen)
        if p and torch.rand(1, generator=gen).item() < p:
            return self.single.sample(stacks * n, gen)
        return self.sampler.sample(stacks, gen)

    def _build_valset(self) -> dict[str, ValGroup]:
        photos, self.val_found = _validation_photos(self.recipe)
        self.val_used = sum(min(p.shape[-2:]) >= self.recipe.val.tile for p in photos)
        return build_sharpen_valset(photos, self.recipe.val, noise=self._val_noise(), where=self._val_where())

    def _val_noise(self) -> str:
        """Validation noise: the training noise; demosaicking residual noise for ``mixed`` (comparable runs)."""
        return "demosaic" if self.recipe.data.noise == "mixed" else self.recipe.data.noise

    def describe_validation(self) -> str:
        """How the validation set is made, in words (the model card's ``validation_protocol``)."""
        v = self.recipe.val
        return (
            f"isotropic Gaussian sigma in {v.sigmas}, {self._val_noise()} noise, photos unprocessed to linear RGB "
            f"(seed {v.seed}); {v.tiles_per_image} tiles of {v.tile}px per photo stacked by N; PSNR in linear RGB "
            f"minus a {v.border}px border"
        )


class LensTask(_Task):
    """``lens``: patches blurred by a lens PSF field, N = 4 at the mirror positions about its optical centre (N = 1:
    one patch anywhere) (:class:`~isp_collab.data.lens.LensSampler`)."""

    def __init__(self, recipe: Recipe) -> None:
        from ..data.lens import LensSampler

        self.recipe = recipe
        d = recipe.data
        self.field = self._field((1024, 1536))
        where = recipe.path or recipe.name
        if d.patch % 2 or d.patch > min(self.field.image_size):
            raise ValueError(
                f"{where}: data.patch = {d.patch} must be even and fit in the image of the lens "
                f"{recipe.task.lens} ({self.field.image_size[0]}x{self.field.image_size[1]} px)"
            )
        source = self.source = _source(recipe)
        self.sampler = LensSampler(
            source,
            self.field,
            n=recipe.model.n,
            patch=d.patch,
            align=recipe.task.align,
            noise=d.noise,
            same_image=d.same_image,
        )
        self.crop_size = d.patch + self.field.ksize - 1
        missed = self.frame_not_trained
        if missed > 0.005:  # an off-centre axis: mirror patches reach only as far as the nearer edge
            warnings.warn(
                f"{where}: the optical centre of {recipe.task.lens} is off the frame's centre, so N=4 mirror stacks "
                f"never reach {missed:.1%} of the frame (the strips beyond the nearer edges' mirror images); those "
                "parts are neither trained nor validated (the card's frame_not_trained)",
                stacklevel=2,
            )

    @property
    def frame_not_trained(self) -> float:
        """Fraction of the lens's frame no mirror stack reaches (N=4: the patches of a stack sit at the four
        mirror images of one offset, so they reach only as far from the optical centre as the nearer edge on
        each axis); 0 for N=1 and for a centred axis."""
        if self.recipe.model.n == 1:
            return 0.0
        h, w = self.field.image_size
        cx, cy = (c + 0.5 for c in self.field.center)  # from the frame's top-left corner
        covered = 2 * min(cx, w - cx) * 2 * min(cy, h - cy)
        return max(0.0, 1.0 - covered / (w * h))

    def _field(self, image_size: tuple[int, int]):
        from ..physics.psf_field import load_calibration, make_lens

        lens = self.recipe.task.lens
        if Path(lens).suffix == ".npz":
            try:
                return load_calibration(lens)
            except ValueError as e:
                raise ValueError(f"{self.recipe.path or self.recipe.name}: task.lens: {e}") from None
        return make_lens(lens, image_size=image_size, seed=0)

    def _draw(self, stacks: int, gen: torch.Generator) -> StackBatch:
        return self.sampler.sample(stacks, gen)

    def data_card(self) -> dict[str, Any]:
        """The data fields, and the lens's optical centre as fractions of the frame's width and height
        (0.5, 0.5: the frame centre), which the lens stage stacks mirror tiles about."""
        h, w = self.field.image_size
        cx, cy = self.field.center
        return {
            **super().data_card(),
            "optical_center": [round((cx + 0.5) / w, 6), round((cy + 0.5) / h, 6)],
            "frame_not_trained": round(self.frame_not_trained, 4),
        }

    def _build_valset(self) -> dict[str, ValGroup]:
        """Mirror quadruplets of tiles over each photo, grouped by normalised field radius.

        A photo gives tiles when its half-size holds a tile (at least 2 x ``val.tile`` px on each side);
        a ``ValueError`` naming the folder when none does.
        """
        from ..physics.noise import add_gaussian_noise, demosaic_residual_noise
        from ..physics.psf_field import apply_psf_field

        v, t = self.recipe.val, self.recipe.val.tile
        gen = torch.Generator().manual_seed(v.seed)
        groups: dict[str, tuple[list, list]] = {r: ([], []) for r in REGIONS}
        photos, self.val_found = _validation_photos(self.recipe)
        self.val_used, radii = 0, []
        for photo in photos:
            lin = _linear_photo(photo, gen)
            _, h, w = lin.shape
            field = self._field((h, w))
            blurry = apply_psf_field(lin, field)
            if self.recipe.data.noise == "demosaic":
                blurry = demosaic_residual_noise(blurry[None], gen)[0]
            else:
                blurry = add_gaussian_noise(blurry[None], v.noise_level, gen)[0]
            # the optical centre (the frame's unless a calibration says otherwise), from the frame's top-left
            # corner; mirror tiles fit in the frame out to the nearer edge on each axis
            cx, cy = (c + 0.5 for c in (field.resized((h, w)) if field.image_size != (h, w) else field).center)
            ax, ay = min(cx, w - cx), min(cy, h - cy)
            if min(ax, ay) < t:
                continue
            self.val_used += 1
            rmax = float(np.hypot(max(cx, w - cx), max(cy, h - cy)))  # the farthest corner: field height 1
            for fy in np.linspace(0, 1, 4):
                for fx in np.linspace(0, 1, 4):
                    # tile centre offsets from the optical centre, within the frame
                    ox, oy = t / 2 + fx * (ax - t), t / 2 + fy * (ay - t)
                    r = np.hypot(ox, oy) / rmax
                    radii.append(r)
                    region = REGIONS[min(2, int(r * 3))]
                    for sx, sy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
                        x0, y0 = int(round(cx + sx * ox - t / 2)), int(round(cy + sy * oy - t / 2))
                        b, s = blurry[:, y0 : y0 + t, x0 : x0 + t], lin[:, y0 : y0 + t, x0 : x0 + t]
                        if self.recipe.task.align:  # flip into the first (+x, +y) quadrant's orientation
                            dims = [d for d, sgn in ((2, sx), (1, sy)) if sgn < 0]
                            if dims:
                                b, s = b.flip(dims), s.flip(dims)
                        groups[region][0].append(b)
                        groups[region][1].append(s)
        if not self.val_used:
            raise ValueError(
                f"{self._val_where()}: no validation photo is at least {2 * t}x{2 * t} px about the optical centre "
                f"(lens validation cuts mirror tiles of val.tile = {t} px about it)"
            )
        missing = [r for r in REGIONS if not groups[r][0]]
        if missing:  # an off-centre axis (or small photos): mirror tiles stop at the nearer frame edges
            bounds = {"centre": "below 1/3", "intermediate": "1/3 to 2/3", "edge": "above 2/3"}
            self._val_notes = (
                f"note: validation has no tiles in the field's {' or '.join(f'{r} ({bounds[r]})' for r in missing)} "
                f"region, so no figures for it: mirror tiles of val.tile = {t} px about the optical centre of "
                f"{self.recipe.task.lens} fit in the frame only at field radius {min(radii):.2f} to "
                f"{max(radii):.2f} (1 = the farthest corner)",
            )
        return {r: ValGroup(torch.stack(b).clamp(0, 1), torch.stack(s), 4) for r, (b, s) in groups.items() if b}

    def describe_validation(self) -> str:
        """How the validation set is made, in words (the model card's ``validation_protocol``)."""
        return (
            f"{self.recipe.task.lens} PSF field over each whole photo (linear RGB, {self.recipe.data.noise} noise); "
            f"mirror quadruplets of {self.recipe.val.tile}px tiles on a 4x4 grid per quadrant"
            f"{' flipped into one orientation' if self.recipe.task.align else ''}, grouped by field radius "
            "(centre < 1/3 < intermediate < 2/3 < edge); PSNR in linear RGB"
        )


def build_task(recipe: Recipe) -> SharpenTask | LensTask:
    """The recipe's task; loads its training images (the validation set is built on first use)."""
    return SharpenTask(recipe) if recipe.task.name == "sharpen" else LensTask(recipe)
