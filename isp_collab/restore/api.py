"""``restore``: a whole linear-RGB image of any size through a collaborative network, tile by tile."""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..limits import MAX_TILE
from ..signals import check_terminated
from .backends import Backend, OnnxBackend, TorchBackend, onnx_providers
from .exposure import EXPOSURE_TARGET, exposure_gain, exposure_level
from .gathering import STRATEGIES, Stack, flip_tile, gather_stacks, stack_cap
from .model_card import center_in_pixels, default_strategy, model_card, trained_center
from .tiling import MAX_N, Stitcher, TileGrid, default_overlap, make_grid, tile_view

if TYPE_CHECKING:
    from torch import nn

# images above this many pixels get a progress bar by default (a 1-MP image takes a few seconds on a CPU)
PROGRESS_PIXELS = 1_000_000
DARK_LEVEL = 0.1  # a frame whose brightest 1% is darker than this gets a warning without exposure_target
DEFAULT_TILE = 256  # the tile for stacks of N <= 2, and exports' (a static shape) default


def default_tile(n: int, multiple: int = 1, device: str = "cpu") -> int:
    """The tile side :func:`restore` uses for stacks of ``n`` when neither the caller nor the model fixes one.

    On the CPU: 256 for N <= 2, 192 for N = 3..4, 160 above; elsewhere (``device``: a torch device type, "cuda")
    256. ``multiple``: the network's ``2**depth``; a tile that is not a multiple of it falls back to 256.

    One call holds N tiles, so its activations grow with N x tile², and on the CPU past the cache every conv slows
    per pixel. Whole 1920x1080 frames through the shipped UNet-TX, PyTorch, 2 threads, on this project's 2-core
    AMD EPYC (32 MB L3), medians of 5 interleaved rounds (RESULTS *tile-default*, ``benchmarks/tile_default.py``):
    N=4 1.15 s/MP at tile 256 against 0.90 at 192, N=8 1.45 against 1.06 at 160, N=1 0.64 at 256 against 0.68 at
    192 (smaller tiles repeat more overlap). Whole images are no worse: N=4 34.19 dB at 192 against 34.17 at 256
    on the *quality* protocol, lens-a N=4 +0.07 dB at the field edge. ONNX Runtime runs its file's static tile
    and showed no such step (0.66 / 0.63 s/MP at 256 / 192); a GPU keeps 256, what it was measured with (its time
    is mostly the host's tiling and stitching, which smaller tiles add to).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    tile = DEFAULT_TILE if device != "cpu" or n <= 2 else 192 if n <= 4 else 160
    return tile if tile % max(1, int(multiple)) == 0 else DEFAULT_TILE


def device_type(runner: object) -> str:
    """The torch device type a backend runs on ("cpu", "cuda", ...): its ``device`` attribute, else "cpu"."""
    device = getattr(runner, "device", None)
    return str(getattr(device, "type", None) or device or "cpu").split(":")[0]


def as_float32_image(image: np.ndarray) -> np.ndarray:
    """Validate an ``H x W x 3`` float linear-RGB image; returns it as float32 (no copy if already)."""
    if not isinstance(image, np.ndarray):
        hint = " (image.cpu().numpy(), H x W x 3)" if type(image).__name__ == "Tensor" else ""
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}{hint}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"image must be float linear RGB, got dtype {image.dtype} (for linear integer samples: subtract the black "
            "level and divide by (white level - black level), e.g. x.astype(np.float32) / 65535; decode sRGB first)"
        )
    given = image
    with np.errstate(over="ignore"):  # float64 past float32's range: said below, not as a cast's RuntimeWarning
        image = np.asarray(image, dtype=np.float32)
    # a float64 sum of float32 values cannot overflow, and NaN/inf propagate: no H x W x 3 mask needed
    if not np.isfinite(image.sum(dtype=np.float64)):
        if np.isfinite(given).all():
            raise ValueError(
                f"image holds values outside float32's range (|x| up to {np.abs(given).max():.3g}, past 3.4e+38)"
            )
        raise ValueError("image contains NaN or infinite values")
    return image


def _is_network(obj: object) -> bool:
    """Whether ``obj`` is a torch ``nn.Module``, without importing torch: none exists before torch is imported
    (so ``restore`` on an ``.onnx`` file never loads torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def make_backend(
    model: nn.Module | str | os.PathLike | Backend,
    backend: str | None = None,
    onnx_path: str | os.PathLike | None = None,
    device: str | None = None,
) -> Backend:
    """A :class:`Backend` from a network, a model name/folder, an ``.onnx`` path or a backend.

    backend: ``"torch"``, ``"onnx"`` or None (ONNX for an ``.onnx`` path or with ``onnx_path``, else PyTorch).
    Raises ValueError for arguments that contradict each other (an ``.onnx`` file with backend ``"torch"`` or
    a device ONNX Runtime cannot use; ``onnx_path`` with backend ``"torch"``, or beside a backend, which would run
    instead). device: for PyTorch a torch device, for ONNX cpu, cuda or cuda:K (:func:`onnx_providers`); None
    picks CUDA when present, else the CPU.
    """
    if backend not in (None, "torch", "onnx"):
        raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
    onnx_file = isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx")
    if onnx_path is not None and backend == "torch":
        raise ValueError(f"onnx_path {os.fspath(onnx_path)} is set but backend is 'torch' (drop one of the two)")
    if onnx_file and backend == "torch":
        raise ValueError(f"{os.fspath(model)}: an ONNX file runs on the onnx backend, not 'torch'")
    if isinstance(model, (TorchBackend, OnnxBackend)) or (
        not isinstance(model, (str, os.PathLike)) and not _is_network(model) and hasattr(model, "run")
    ):
        if onnx_path is not None or backend is not None or device is not None:
            raise ValueError("model is already a backend: backend, onnx_path and device cannot change what it runs")
        return model  # already a backend
    if onnx_file and onnx_path is not None and os.fspath(onnx_path) != os.fspath(model):
        raise ValueError(f"{os.fspath(model)} and onnx_path {os.fspath(onnx_path)}: two ONNX files, pass one")
    if backend == "onnx" or onnx_file or onnx_path is not None:
        path = onnx_path if onnx_path is not None else model
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError("backend='onnx' needs onnx_path (the exported .onnx file)")
        return OnnxBackend(path, providers=onnx_providers(device))  # a device refused before the file is read
    if isinstance(model, (str, os.PathLike)):
        from ..models import load_model

        model = load_model(model)
    if not _is_network(model):
        raise TypeError(
            f"model must be a network, a shipped model name or folder, an .onnx path or a backend, got {type(model).__name__}"
        )
    return TorchBackend(model, device)


def default_n(model: object, backend: Backend, warn: bool = True) -> int:
    """The stack size to use: the backend's static N, else the model card's trained N, else 4/1 (said, unless
    ``warn`` is false, for a backend of unknown kind with none of them)."""
    if getattr(backend, "n", None):
        return int(backend.n)
    card = model_card(model, backend)
    if card.get("n_trained"):
        return max(1, int(card["n_trained"]))
    config = getattr(model, "config", None) or getattr(getattr(backend, "model", None), "config", None)
    if warn and config is None and not isinstance(backend, (TorchBackend, OnnxBackend)):
        warnings.warn(  # a wrapper around a lens model would run single tiles, spread: silently worse
            f"restore: this backend ({type(backend).__name__}) has no model card, static N or network config: running "
            "stacks of N=1; pass n= and strategy= (or give the backend a `card`, the model's card dict)",
            stacklevel=3,
        )
    # an un-carded collaborative network: 4 is the project's standard stack size
    return 4 if getattr(config, "collaborative", False) else 1


def iter_batches(
    image: np.ndarray, grid: TileGrid, stacks: list[Stack], n: int, batch_size: int
) -> Iterator[tuple[list[Stack], np.ndarray]]:
    """Yield (stacks, ``(b, N, 3, T, T)`` float32 tiles) mini-batches, each tile flipped as its stack says.

    One buffer is reused: at most ``batch_size`` stacks of tiles exist at a time (bounded memory).
    """
    t = grid.tile
    buf = np.empty((batch_size, n, 3, t, t), dtype=np.float32)
    for i in range(0, len(stacks), batch_size):
        group = stacks[i : i + batch_size]
        for s, stack in enumerate(group):
            for m, (idx, (fx, fy)) in enumerate(zip(stack.tiles, stack.flips, strict=True)):
                y0, x0 = grid.position(idx)
                buf[s, m] = flip_tile(tile_view(image, y0, x0, t), fx, fy)  # one copy, into the batch
        yield group, buf[: len(group)]


def restore(
    image: np.ndarray,
    model: nn.Module | str | os.PathLike | Backend,
    *,
    n: int | None = None,
    strategy: str | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    backend: str | None = None,
    onnx_path: str | os.PathLike | None = None,
    device: str | None = None,
    center: tuple[float, float] | None = None,
    batch_size: int | None = None,
    progress: bool | Callable[[int, int], object] | None = None,
    exposure_target: float = 0.0,
) -> np.ndarray:
    """Restore a whole image with a collaborative network, tile by tile, seamlessly.

    image: ``H x W x 3`` float32 linear RGB (nominally [0, 1]; nothing is clipped), any size,
    including smaller than a tile. model: a :class:`CollaborativeUNet`, a shipped model name or
    folder, an ``.onnx`` path, or a :class:`Backend`. ``n``: stack size (None: the backend's static N,
    else the card's trained N, else 4 for a collaborative network, 1 otherwise). ``strategy``:
    ``spread`` | ``local`` | ``mirror`` (see :mod:`.gathering`; None: the one the model was trained for, its
    card's ``recommended_strategy``, for an ONNX file the sidecar's ``tiling.strategy``; else ``mirror`` for lens
    models, ``spread`` for others; :mod:`.model_card`). ``tile``: tile side, a multiple of
    the network's ``2**depth`` (None: the ONNX file's static tile, else :func:`default_tile` of N: on the CPU
    256, 192 for N = 3..4, 160 for more; 256 on a GPU: the same call then gives other pixels on a CPU and a GPU,
    pass ``tile`` (and ``overlap``) for outputs that must match across machines, as golden-image tests do);
    ``overlap`` pixels
    between tiles (None: an ONNX file's sidecar ``tiling.overlap``, else :func:`~.tiling.default_overlap` of the
    tile, 32 px at most a quarter). ``backend``: ``torch`` | ``onnx`` | None (ONNX for an ``.onnx`` model or an ``onnx_path``, else PyTorch;
    contradicting arguments are refused). ``center``: (x, y) optical
    centre for ``mirror`` in pixel-index coordinates (None: the model's calibrated ``optical_center`` from its
    card or sidecar, fractions of this image's width and height, else the image centre). ``batch_size``:
    stacks per network call (None: 1 on the CPU, where smaller activations are reused by the allocator:
    the 4K demo took 12.1-13.9 s instead of 14.2-15.3 s end to end, with 2 threads and 256-px tiles; 2 on a GPU); peak
    memory is the input, the output and one mini-batch (plus a copy of the input when it is not float32 or an
    exposure gain applies). ``progress``: True / False for a tqdm bar on stderr (None: for images above 1 MP
    when stderr is a terminal), or a callable ``progress(stacks_done, stacks_total)`` called after each network
    call, instead of the bar; an exception it raises stops the restoration there (a way to cancel).
    ``exposure_target`` > 0: a frame darker than that is restored at the gain that brings it there and
    divided back (:mod:`.exposure`; the pipeline's stages use :data:`~.exposure.EXPOSURE_TARGET`); 0: as is,
    with a warning when the frame is very dark (its brightest 1% below :data:`DARK_LEVEL`: Set5's baby, Gaussian
    blur 1.5 px, 4 stops under restored 1.8 dB *below* the blurry input, and 1.0 dB above it with 0.25).

    Nothing is clipped: values above 1 (highlights) and below 0 pass through, and the output can undershoot 0
    next to strong edges; clamp before a log or gamma step. A strategy other than the model's, or a model
    without a card, gathers what it is told; ``center`` applies to ``mirror`` only.

    Returns ``H x W x 3`` float32 linear RGB. Raises ValueError for bad arguments (TypeError for a ``model``
    or ``progress`` of another type, or a backend whose ``run`` returns no numpy array), and when the network
    returns NaN or infinity.
    """
    image = as_float32_image(image)
    for key, value in (("n", n), ("tile", tile), ("overlap", overlap), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise ValueError(f"{key} must be an integer, got {value!r}")
    if isinstance(exposure_target, bool) or not isinstance(exposure_target, numbers.Real):
        raise ValueError(f"exposure_target must be a number (0: off), got {exposure_target!r}")
    if not 0 <= exposure_target <= 1:  # NaN fails too
        raise ValueError(f"exposure_target must be in [0, 1] (0: off), got {exposure_target}")
    if center is not None:
        if isinstance(center, (str, bytes)) or not hasattr(center, "__len__") or len(center) != 2:
            raise ValueError(f"center must be 2 numbers (x, y) in pixels, got {center!r}")
        if any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) for v in center):
            raise ValueError(f"center must be 2 finite numbers (x, y) in pixels, got {center!r}")
    if not (progress is None or isinstance(progress, (bool, np.bool_)) or callable(progress)):
        raise TypeError(f"progress must be True, False, None or a callable progress(done, total), got {progress!r}")
    if exposure_target == 0 and 0 < exposure_level(image) < DARK_LEVEL:  # (black: nothing to restore)
        warnings.warn(  # one text for every frame: Python's filter says it once, not once per frame of a loop
            f"restore: a dark frame (its brightest 1% below {DARK_LEVEL}) restored as is: the networks were trained "
            f"on normally exposed frames; use exposure_target={EXPOSURE_TARGET} (a stage's default)",
            stacklevel=2,
        )
    gain = exposure_gain(image, exposure_target) if exposure_target else 1.0
    if gain > 1.0:
        image = image * np.float32(gain)
    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"unknown gathering strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    runner = make_backend(model, backend, onnx_path, device)
    # what the model was trained (an ONNX file: exported) to run with, read only where the caller left it open
    open_settings = strategy is None or overlap is None or (center is None and strategy in (None, "mirror"))
    card = model_card(model, runner) if open_settings else {}
    if strategy is None:
        strategy = default_strategy(card)
    if center is not None and strategy != "mirror":  # (the model's own strategy too: it would be dropped silently)
        raise ValueError(f"center applies to strategy 'mirror' only, got strategy={strategy!r}")
    if overlap is None and isinstance(card.get("exported_overlap"), int):
        overlap = card["exported_overlap"]
    h, w = image.shape[:2]
    if strategy == "mirror" and center is None and (trained := trained_center(card)) is not None:
        center = center_in_pixels(trained, w, h)  # pixel-index coordinates, as the lens stage
    if batch_size is None:
        batch_size = 2 if device_type(runner) == "cuda" else 1
    n = default_n(model, runner) if n is None else n
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_N:
        raise ValueError(f"n must be an integer in 1..{MAX_N}, got {n!r}")
    if getattr(runner, "n", None) and n != runner.n:
        raise ValueError(f"the model runs stacks of N={runner.n} only (static shape), got n={n}")
    multiple = int(getattr(runner, "multiple", 1) or 1)
    static_tile = getattr(runner, "tile", None)
    if tile is None:  # a static-shape file dictates the tile; otherwise the default for this stack size
        tile = static_tile or default_tile(n, multiple, device_type(runner))
    if static_tile and tile != static_tile:
        raise ValueError(f"the model runs {static_tile}x{static_tile} tiles only (static shape), got tile={tile}")
    if tile < 1 or tile > MAX_TILE or tile % multiple:
        raise ValueError(
            f"tile must be a positive multiple of {multiple} (2**depth of the network), at most {MAX_TILE}, got {tile}"
        )

    overlap = default_overlap(tile) if overlap is None else overlap
    # mirror needs the grid symmetric about the optical centre; the other strategies the fewest tiles about the
    # image centre
    grid = make_grid(h, w, tile, overlap, center if strategy == "mirror" else None, symmetric=strategy == "mirror")
    if not getattr(runner, "n", None) and getattr(runner, "pooling", "max") == "max":
        # a stack larger than the image's tiles (mirror: 4 per orbit) only repeats them: the same output for more
        # work (under max pooling; repeats change a mean, and an exported file with a static N repeats them)
        n = min(n, stack_cap(grid, n, strategy))
    stacks = gather_stacks(grid, n, strategy)
    stitcher = Stitcher(grid)
    report = progress if callable(progress) else None
    show = (h * w > PROGRESS_PIXELS) if progress is None else (report is None and bool(progress))
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(
            total=len(stacks),
            unit="stack",
            desc=f"restore {w}x{h}",
            file=sys.stderr,
            leave=False,
            disable=None if progress is None else False,  # by default, none when stderr is not a terminal (logs)
        )
    done = 0
    try:
        for group, tiles in iter_batches(image, grid, stacks, n, batch_size):
            check_terminated()  # a SIGTERM whose exception a callback swallowed (isp_collab.signals)
            out = runner.run(tiles)
            if not isinstance(out, np.ndarray):
                raise TypeError(
                    f"{type(runner).__name__}.run returned a {type(out).__name__}: a backend returns a "
                    f"numpy array of its input's shape {tiles.shape}"
                )
            if out.shape != tiles.shape:
                raise ValueError(f"backend returned shape {out.shape} for input {tiles.shape}")
            for s, stack in enumerate(group):
                for m, (idx, (fx, fy), keep) in enumerate(zip(stack.tiles, stack.flips, stack.keep, strict=True)):
                    if keep:  # padding repeats and self-mirror duplicates are discarded
                        stitcher.add(idx, flip_tile(out[s, m], fx, fy))
            if bar is not None:
                bar.update(len(group))
            if report is not None:
                done += len(group)
                report(done, len(stacks))
    finally:
        if bar is not None:
            bar.close()
    out = stitcher.finish()
    if not np.isfinite(out.sum(dtype=np.float64)):  # inputs far outside [0, 1] (1e38) overflow in the network
        raise ValueError("the network returned NaN or infinity (input values far outside [0, 1]?)")
    return out / np.float32(gain) if gain > 1.0 else out
