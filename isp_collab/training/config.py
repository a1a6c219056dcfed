"""Training recipes: TOML files read with ``tomllib`` into dataclasses (one file per shipped model).

A recipe names the task, the architecture, N, the pooling, the patch size, the steps, the learning
rate schedule, the data sources and the degradations. Unknown keys are errors, so a typo in a
recipe is caught before a 90-minute run starts.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config_paths import beside


@dataclass
class ModelSection:
    """``[model]``: the network (architecture name, stack size N, pooling and collaboration layers)."""

    arch: str = "unet-tx"
    n: int = 4
    pooling: str = "max"
    # N>1: how the merge convs of the collaboration layers start. "identity" ([I | 0]: the pooled
    # features are ignored, the untrained network is the N=1 one) or "random" (PyTorch's default
    # conv init: the pooled features are mixed in from the first step; RESULTS.md, collab-init-sharpen)
    collab_init: str = "identity"
    # N>1: "concat" (the paper's conv1x1 of [own | pooled]) or "film" (also scales the channels by a
    # stack-wide descriptor; RESULTS.md, film-sharpen)
    merge: str = "concat"
    # "batch" (BatchNorm after every 3x3 conv) or "none" (convs with a bias, no normalisation; an experiment,
    # docs/collaboration.md)
    norm: str = "batch"


@dataclass
class TaskSection:
    """``[task]``: what the network learns to undo."""

    name: str = "sharpen"  # "sharpen" (one Gaussian blur per stack) or "lens" (PSF field, mirror stacks)
    lens: str = "lens-a"  # lens task: a named lens or a calibration .npz path
    align: bool = True  # lens task: flip mirror patches into the first quadrant's orientation


@dataclass
class DataSection:
    """``[data]``: training images, patch size, blur and noise."""

    # image folders, relative ones taken from the recipe's folder (--images / --val-images: from the current one)
    images: list[str] = field(default_factory=list)  # empty -> procedural dead leaves
    val_images: list[str] = field(default_factory=list)  # empty -> dead leaves (seeded)
    patch: int = 64
    # "demosaic" (residual noise after demosaicking), "gaussian", or "mixed" (sharpen only: either, half each)
    noise: str = "demosaic"
    sigma_min: float = 0.3
    sigma_max: float = 4.0
    same_image: bool = False  # draw the N patches of a stack from one photo (sharpen and lens)
    # clip the noisy training inputs to [0, 1], as the pipeline's white balance and the validation tiles do
    # (false: noise may take them below 0 or above 1, as in every run before this option)
    clip: bool = False
    noise_per: str = "patch"  # sharpen: noise level + Bayer pattern per patch, or one per stack ("stack")
    noise_kind_per: str = "patch"  # sharpen, mixed noise: demosaicking-or-white coin per patch or per stack
    # sharpen, N>1: fraction of steps drawn as stacks of 1 (N times as many stacks, same patches per step),
    # so the single-patch path sees as many blurs as an N=1 run (RESULTS.md, pooling-sharpen)
    stacks_of_one: float = 0.0
    # sharpen, N>1: draw each step's stack size from this list (uniformly) at equal patches per step,
    # e.g. [2, 4, 8]: the model learns to use stacks of every size it may meet (measured: no better, RESULTS.md stack-draws-sharpen);
    # empty: always model.n. Validation stays at model.n.
    stack_sizes: list[int] = field(default_factory=list)
    # sharpen: each patch's blur is its stack's, its stds scaled by up to exp(+-j) and turned by up to j*45
    # degrees (see SharpenSampler), so N>1 training meets as many blurs as N=1; 0: one blur exactly
    blur_jitter: float = 0.0
    # sharpen, N=1: groups of this many patches share one blur (and the noise kind with noise_kind_per =
    # "stack"), drawn as stacks of that size, but the network sees each patch alone: an N>1 run's data
    # without its stack (a control)
    blur_group: int = 1
    max_megabytes: int = 3000  # cap on decoded training images held in memory


@dataclass
class TrainSection:
    """``[train]``: steps, learning-rate schedule, seed, checkpoint and validation intervals."""

    steps: int = 10000
    patches_per_step: int = 32  # equal for every N: an N=1 run uses N times more stacks per step
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 200  # a recipe that leaves it unset gets max(1, steps // 10) when 200 >= its steps
    grad_clip: float = 1.0
    seed: int = 0
    val_every: int = 500
    ckpt_every: int = 250
    threads: int = 0  # 0: torch default
    # > 0: batches drawn by that many worker processes, one seed per step (see training/loader.py)
    workers: int = 0
    # > 0: validate, checkpoint and ship an exponential moving average of the weights (and BatchNorm
    # statistics) with this decay, e.g. 0.999 (warmed up as min(ema, (1 + t) / (10 + t)) at update t)
    ema: float = 0.0
    # N>1: the learning rate of the collaboration layers (their merge convs, and with merge = "film" their
    # scale layers), as a multiple of lr (1: the same)
    collab_lr: float = 1.0


@dataclass
class ValSection:
    """``[val]``: the seeded validation set (blur stds in px, tiles, border) and its size."""

    sigmas: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0])
    tile: int = 128
    tiles_per_image: int = 8
    border: int = 8
    noise_level: float = 0.5 / 255  # with data.noise = "gaussian": the validation inputs' white noise (the paper's)
    max_images: int = 19
    dead_leaves_images: int = 4
    seed: int = 1234


# Recipe keys that only one task reads; the other task's runs ignore them (reports do not compare them there).
TASK_ONLY_KEYS = {
    "sharpen": (
        "data.sigma_min",
        "data.sigma_max",
        "data.noise_per",
        "data.noise_kind_per",
        "data.stacks_of_one",
        "data.stack_sizes",
        "data.blur_jitter",
        "data.blur_group",
        "val.sigmas",
        "val.tiles_per_image",
    ),
    "lens": ("task.lens", "task.align"),
}


@dataclass
class Recipe:
    """A training recipe (:func:`load_recipe`): one dataclass per TOML table; the file's ``path`` and ``sha256``."""

    name: str
    model: ModelSection = field(default_factory=ModelSection)
    task: TaskSection = field(default_factory=TaskSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    val: ValSection = field(default_factory=ValSection)
    path: str = ""
    sha256: str = ""

    @property
    def stacks_per_step(self) -> int:
        """Stacks of N per step: ``patches_per_step // N``, at least 1."""
        return max(1, self.train.patches_per_step // self.model.n)


def _type_error(value: Any, default: Any) -> str | None:
    """What ``value`` should be, judged by the field's default; None when it fits."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    if isinstance(default, list):
        return None if isinstance(value, list) else "a list"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _section(cls: type, raw: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    defaults = cls()
    for key, value in raw.items():
        expected = _type_error(value, getattr(defaults, key))
        if expected:
            raise ValueError(f"{where}: {key} must be {expected}, got {value!r}")
    return cls(**raw)


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe TOML into a :class:`Recipe`; errors are one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: recipe not found")
    data = path.read_bytes()
    try:
        raw = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid TOML recipe ({e})") from None
    sections = {
        "model": ModelSection,
        "task": TaskSection,
        "data": DataSection,
        "train": TrainSection,
        "val": ValSection,
    }
    unknown = sorted(set(raw) - set(sections) - {"name"})
    if unknown:  # (a key outside any section is one of them: only name may stand there)
        raise ValueError(
            f"{path}: unknown section(s) or top-level key(s) {unknown}; known: name, {', '.join(sections)}"
        )
    for key in sections:
        if key in raw and not isinstance(raw[key], dict):  # model = 3, [[train]]: a section is a [table]
            raise ValueError(f"{path}: {key} must be a [{key}] table, got {raw[key]!r}")
    if not set(raw) & set(sections):  # an empty file would silently train every default
        raise ValueError(
            f"{path}: empty recipe: no [model], [task], [data], [train] or [val] section (see train/*.toml)"
        )
    try:
        parts = {k: _section(cls, raw.get(k, {}), f"{path} [{k}]") for k, cls in sections.items()}
    except TypeError as e:
        raise ValueError(f"{path}: {e}") from None
    for key in ("images", "val_images"):  # a recipe's folders are relative to the recipe, not to where it is run
        folders = getattr(parts["data"], key)
        if not all(isinstance(f, str) for f in folders):
            raise ValueError(f"{path} [data]: {key} must be a list of folder paths, got {folders!r}")
        setattr(parts["data"], key, [beside(path, f) for f in folders])
    if Path(parts["task"].lens).suffix == ".npz":  # a calibration file, like the folders, beside the recipe
        parts["task"].lens = beside(path, parts["task"].lens)
    task_name = parts["task"].name
    for other, keys in TASK_ONLY_KEYS.items():  # a key only the other task reads is a mistake, not a no-op
        set_here = [k for k in keys if k.split(".")[1] in raw.get(k.split(".")[0], {})]
        if other != task_name and set_here and task_name in TASK_ONLY_KEYS:
            hint = ' (set task.name = "lens" in [task])' if other == "lens" else ""
            raise ValueError(
                f"{path}: {', '.join(set_here)} only appl{'y' if len(set_here) > 1 else 'ies'} to the {other} task, "
                "but task.name is "
                f"{task_name!r}{hint}; remove them or change the task"
            )
    if "noise_level" in raw.get("val", {}) and parts["data"].noise in ("demosaic", "mixed"):  # others: validate()
        raise ValueError(
            f"{path}: val.noise_level is the white noise of the validation inputs, used with data.noise = "
            f"'gaussian' only (this recipe's validation inputs get its {parts['data'].noise!r} noise); remove it"
        )
    if not isinstance(raw.get("name", path.stem), str):
        raise ValueError(f"{path}: name must be a string, got {raw['name']!r}")
    recipe = Recipe(name=raw.get("name", path.stem), path=str(path), sha256=hashlib.sha256(data).hexdigest(), **parts)
    t = recipe.train
    if "warmup" not in raw.get("train", {}) and isinstance(t.steps, int) and t.warmup >= t.steps:
        t.warmup = short_warmup(t.steps)  # the default warmup fits a short recipe (tiny.toml)
    validate(recipe)
    return recipe


def short_warmup(steps: int) -> int:
    """The warmup of a run too short for its recipe's: a tenth of the steps, at least 1."""
    return max(1, steps // 10)


# The largest training patch and validation tile (paper: 64-128 px; a 4096-px tile asked for 662 GB), and seed
# (the batch generator is seeded with seed * 1000 + rank, a 64-bit integer).
MAX_PATCH = 1024
MAX_SEED = 2**32 - 1


def validate(r: Recipe) -> None:
    """Every value checked before a run starts: one line naming the recipe, or nothing."""
    from ..models.collab import COLLAB_INITS, MAX_N, MERGES, POOLINGS
    from ..models.unet import ARCHITECTURES, NORMS
    from ..models.weights import is_folder_name
    from ..physics.optics import LENSES

    where = r.path or r.name
    if not is_folder_name(r.name):
        raise ValueError(f"{where}: name must be a non-empty string usable as a folder name, got {r.name!r}")
    if not 1 <= r.model.n <= MAX_N:
        raise ValueError(f"{where}: model.n must be between 1 and {MAX_N}, got {r.model.n}")
    if r.model.arch not in ARCHITECTURES:
        raise ValueError(f"{where}: model.arch must be one of {', '.join(ARCHITECTURES)}, got {r.model.arch!r}")
    if r.model.pooling not in POOLINGS:
        raise ValueError(f"{where}: model.pooling must be one of {', '.join(POOLINGS)}, got {r.model.pooling!r}")
    if r.model.collab_init not in COLLAB_INITS:
        raise ValueError(
            f"{where}: model.collab_init must be one of {', '.join(COLLAB_INITS)}, got {r.model.collab_init!r}"
        )
    if r.model.merge not in MERGES:
        raise ValueError(f"{where}: model.merge must be one of {', '.join(MERGES)}, got {r.model.merge!r}")
    if r.model.norm not in NORMS:
        raise ValueError(f"{where}: model.norm must be one of {', '.join(NORMS)}, got {r.model.norm!r}")
    m = 2 ** ARCHITECTURES[r.model.arch][0]  # H and W must be multiples of 2**depth
    for key, size in (("data.patch", r.data.patch), ("val.tile", r.val.tile)):
        if size < m or size % m or size > MAX_PATCH:
            raise ValueError(
                f"{where}: {key} must be a multiple of {m} for {r.model.arch}, at most {MAX_PATCH}, got {size}"
            )
    if not 0 <= 2 * r.val.border < r.val.tile:
        raise ValueError(f"{where}: val.border must be >= 0 and less than half of val.tile, got {r.val.border}")
    if not r.val.sigmas or not all(_is_number(s) and math.isfinite(s) and s > 0 for s in r.val.sigmas):
        raise ValueError(f"{where}: val.sigmas must be a non-empty list of positive numbers, got {r.val.sigmas!r}")
    if not (math.isfinite(r.val.noise_level) and r.val.noise_level >= 0):
        raise ValueError(f"{where}: val.noise_level must be a finite number >= 0, got {r.val.noise_level!r}")
    for key in ("max_images", "dead_leaves_images"):
        if getattr(r.val, key) < 1:
            raise ValueError(f"{where}: val.{key} must be >= 1, got {getattr(r.val, key)}")
    if not 0 <= r.val.seed <= MAX_SEED:
        raise ValueError(f"{where}: val.seed must be in 0..{MAX_SEED}, got {r.val.seed}")
    if r.data.max_megabytes < 1:
        raise ValueError(f"{where}: data.max_megabytes must be >= 1, got {r.data.max_megabytes}")
    if r.task.name == "lens" and Path(r.task.lens).suffix != ".npz" and r.task.lens not in LENSES:
        raise ValueError(
            f"{where}: task.lens must be one of {', '.join(LENSES)} or a calibration .npz file, got {r.task.lens!r}"
        )
    if r.val.tiles_per_image < 1 or (r.task.name == "sharpen" and r.val.tiles_per_image % r.model.n):
        raise ValueError(
            f"{where}: val.tiles_per_image must be a positive multiple of model.n (the tiles of a photo are "
            f"stacked), got {r.val.tiles_per_image} for n = {r.model.n}"
        )
    d = r.data
    if not (math.isfinite(d.sigma_min) and math.isfinite(d.sigma_max) and 0 < d.sigma_min <= d.sigma_max <= 16):
        raise ValueError(
            f"{where}: need 0 < data.sigma_min <= data.sigma_max <= 16 (px), got {d.sigma_min!r} and {d.sigma_max!r}"
        )
    if r.train.threads < 0:
        raise ValueError(f"{where}: train.threads must be >= 0 (0: torch default), got {r.train.threads}")
    if not 0 <= r.train.seed <= MAX_SEED:
        raise ValueError(f"{where}: train.seed must be in 0..{MAX_SEED}, got {r.train.seed}")
    if r.train.workers < 0:
        raise ValueError(
            f"{where}: train.workers must be >= 0 (0: batches drawn in the training process), got {r.train.workers}"
        )
    if r.task.name not in ("sharpen", "lens"):
        raise ValueError(f"{where}: task.name must be 'sharpen' or 'lens', got {r.task.name!r}")
    if r.task.name == "lens" and r.model.n not in (1, 4):
        raise ValueError(f"{where}: the lens task stacks the 4 mirror positions: n must be 1 or 4")
    if r.train.patches_per_step % r.model.n:
        raise ValueError(
            f"{where}: train.patches_per_step must be a multiple of model.n (equal patches per stack), got "
            f"{r.train.patches_per_step} for n = {r.model.n}"
        )
    t = r.train
    for key in ("steps", "patches_per_step", "val_every", "ckpt_every"):
        if not isinstance(getattr(t, key), int) or getattr(t, key) < 1:
            raise ValueError(f"{where}: train.{key} must be a whole number >= 1, got {getattr(t, key)!r}")
    if not (math.isfinite(t.lr) and t.lr > 0 and 0 <= t.lr_min <= t.lr):
        raise ValueError(f"{where}: need train.lr > 0 and 0 <= train.lr_min <= train.lr, got {t.lr!r} and {t.lr_min!r}")
    if t.warmup < 0 or not t.grad_clip > 0:
        raise ValueError(f"{where}: need train.warmup >= 0 and train.grad_clip > 0")
    if t.warmup > 1 and t.warmup >= t.steps:  # warmup 0 and 1 both start at the peak
        raise ValueError(
            f"{where}: train.warmup must be less than train.steps (the learning rate would never reach its peak and "
            f"decay), got warmup = {t.warmup} for {t.steps} steps"
        )
    if not (math.isfinite(r.train.collab_lr) and r.train.collab_lr > 0):
        raise ValueError(f"{where}: train.collab_lr must be a positive number, got {r.train.collab_lr!r}")
    if r.train.collab_lr != 1.0 and r.model.n == 1:
        raise ValueError(f"{where}: train.collab_lr is for model.n > 1 (an N=1 network has no collaboration layers)")
    if not 0.0 <= r.train.ema < 1.0:
        raise ValueError(f"{where}: train.ema must be in [0, 1), got {r.train.ema}")
    if not 0.0 <= r.data.stacks_of_one <= 1.0:
        raise ValueError(f"{where}: data.stacks_of_one must be in [0, 1], got {r.data.stacks_of_one}")
    if r.data.stacks_of_one and (r.task.name != "sharpen" or r.model.n == 1):
        raise ValueError(f"{where}: data.stacks_of_one is for the sharpen task with model.n > 1")
    sizes = r.data.stack_sizes
    if sizes:
        if r.task.name != "sharpen" or r.model.n == 1:
            raise ValueError(f"{where}: data.stack_sizes is for the sharpen task with model.n > 1")
        if r.data.stacks_of_one:
            raise ValueError(f"{where}: set data.stack_sizes or data.stacks_of_one, not both")
        if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in sizes):
            raise ValueError(f"{where}: data.stack_sizes must be whole numbers >= 1, got {sizes!r}")
        uneven = [m for m in sizes if r.train.patches_per_step % m]
        if uneven:
            raise ValueError(
                f"{where}: train.patches_per_step = {r.train.patches_per_step} is not a multiple of the stack "
                f"size(s) {uneven} in data.stack_sizes (every step has the same number of patches)"
            )
    if not 0.0 <= r.data.blur_jitter < 1.0:
        raise ValueError(f"{where}: data.blur_jitter must be in [0, 1), got {r.data.blur_jitter}")
    if r.data.blur_jitter and r.task.name != "sharpen":
        raise ValueError(f"{where}: data.blur_jitter is for the sharpen task")
    g = r.data.blur_group
    if g < 1:
        raise ValueError(f"{where}: data.blur_group must be >= 1, got {g}")
    if g > 1 and (r.task.name != "sharpen" or r.model.n != 1):
        raise ValueError(f"{where}: data.blur_group is for the sharpen task with model.n = 1")
    if r.train.patches_per_step % g:
        raise ValueError(
            f"{where}: train.patches_per_step = {r.train.patches_per_step} is not a multiple of data.blur_group = {g}"
        )
    for key in ("noise_per", "noise_kind_per"):
        if getattr(r.data, key) not in ("patch", "stack"):
            raise ValueError(f"{where}: data.{key} must be 'patch' or 'stack', got {getattr(r.data, key)!r}")
    if r.data.noise_kind_per == "stack" and (r.task.name != "sharpen" or r.data.noise != "mixed"):
        raise ValueError(f"{where}: data.noise_kind_per = 'stack' is for the sharpen task with noise = 'mixed'")
    noises = ("demosaic", "gaussian", "mixed") if r.task.name == "sharpen" else ("demosaic", "gaussian")
    if r.data.noise not in noises:
        raise ValueError(
            f"{where}: data.noise must be one of {noises} for the {r.task.name} task, got {r.data.noise!r}"
        )
