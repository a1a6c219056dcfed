"""``export_model``: a trained network -> ONNX / Core ML artefacts with sidecars and measured parity.

All inputs are checked before anything is written. Artefacts are built in a temporary folder inside
``out_dir`` and moved into place only once every requested artefact was built and checked, so an
error leaves nothing half-written (and removes ``out_dir`` again if this call created it).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..limits import MAX_TILE
from ..models import DEFAULT_MODEL, CollaborativeUNet, load_model
from ..models.weights import WEIGHTS_FILE, file_sha256, is_folder_name, resolve_model_dir
from ..restore.model_card import default_strategy
from ..restore.tiling import MAX_N, default_overlap
from .build import ExportedArtefact, build_artefacts
from .errors import ExportError
from .onnx_export import DEFAULT_OPSET, MIN_OPSET
from .plan import artefact_name, plan_variants
from .sidecar import artefact_stem, sidecar_path
from .staging import prepare_out_dir, publish, remove_empty

if TYPE_CHECKING:
    from .calibration import LensBlur

STRATEGIES = ("spread", "local", "mirror")
CALIBRATION_STACKS = 8


#: Largest N x tile² of one stack. Parity and calibration run real stacks through PyTorch, whose forward
#: pass holds about 1.8 GB per megapixel of stack (measured: 1.0 GB at 4 x 256², 2.4 GB at 4 x 512²): 16 Mpx
#: (4 x 2048²) needs about 30 GB.
MAX_STACK_PIXELS = 4 * 2048**2
GB_PER_STACK_MEGAPIXEL = 1.8


def available_memory_gb() -> float | None:
    """Memory the kernel says a new process can use (``MemAvailable``), in GB; None where it does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        pass
    return None


def _lens_blur(info: dict[str, Any], model_dir: Path) -> LensBlur | None:
    """How a lens model's check and calibration stacks are blurred (its lens, mirror tiles); None for others.

    A calibration ``.npz`` that cannot be found warns, and Gaussian stacks stand in."""
    from ..models.weights import calibration_candidates
    from ..physics.optics import LENSES
    from .calibration import LensBlur

    lens, align = info.get("lens"), info.get("align") is not False
    if not lens:
        return None
    if lens in LENSES:
        return LensBlur(str(lens), align)
    found = next((p for p in calibration_candidates(str(lens), model_dir) if p.is_file()), None)
    if found is None or Path(found).suffix.lower() != ".npz":
        warnings.warn(
            f"{info['name']}: its lens {lens!r} cannot be rebuilt (copy the .npz into {model_dir}): the parity and "
            "quality checks and int8 calibration use Gaussian-blurred stacks, not the lens's",
            stacklevel=3,
        )
        return None
    return LensBlur(str(found), align)


def _sidecar_model_block(model: CollaborativeUNet, model_dir: Path) -> dict[str, Any]:
    card = getattr(model, "card", {}) or {}
    name = card.get("name") or model_dir.resolve().name  # ``--model .`` is the folder's own name
    if not name:
        raise ValueError(f"{model_dir}: cannot name the exported files (give the model folder a name)")
    if not is_folder_name(name):  # a card built in memory: read_card checks files' cards
        raise ValueError(f"{model_dir}: the model's name {name!r} cannot name files (no / or \\)")
    return {
        "name": name,
        "task": card.get("task"),
        "arch": model.config.arch,
        "depth": model.config.depth,
        "width": model.config.width,
        "pooling": model.config.pooling,
        "merge": model.config.merge,
        "norm": model.config.norm,
        "n_trained": int(card["n_trained"]) if "n_trained" in card else None,
        **({"lens": card["lens"], "align": card.get("align")} if card.get("lens") else {}),
        # mirror stacks are gathered about this point: fractions of the frame's width and height
        **({"optical_center": card["optical_center"]} if card.get("optical_center") else {}),
        # a calibrated lens's frame (H, W) in pixels: its PSFs and centre hold for frames of that size
        **({"lens_frame": card["lens_frame"]} if card.get("lens_frame") else {}),
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": file_sha256(model_dir / WEIGHTS_FILE),
        # provenance: how the model was trained and what its card says it scores (PyTorch, validation tiles)
        "training": {
            k: card[k] for k in ("recipe", "recipe_sha256", "steps", "patches_per_step", "patch") if k in card
        },
        **({"validation": card["validation"]} if "validation" in card else {}),
        **({"validation_protocol": card["validation_protocol"]} if "validation_protocol" in card else {}),
    }


def _cost(model: CollaborativeUNet, n: int, tile: int, overlap: int) -> dict[str, Any]:
    """The exported network's size and compute for a runtime's budget (``torch.utils.flop_counter``)."""
    import copy

    from ..models.complexity import count_params, gflops_per_megapixel

    per_mp = gflops_per_megapixel(copy.deepcopy(model).to("meta"), n=n, size=tile)  # counted, not run
    return {
        "parameters": count_params(model),
        "gflops_per_call": round(per_mp * n * tile * tile / 1e6, 3),
        "gflops_per_megapixel": round(per_mp, 2),
        "note": "the network alone, one [1, N, 3, T, T] call; a multiply-add counts 2 FLOPs. Tiles overlap, so an "
        "image runs about (tile / (tile - overlap))^2 times its own pixels through the network (plus the tiles "
        "leaving the image at its borders)",
    }


def export_model(
    model_name_or_path: str | os.PathLike = DEFAULT_MODEL,
    n: int | None = None,
    tile: int = 256,
    formats: Sequence[str] = ("onnx", "coreml"),
    precisions: Sequence[str] | None = None,
    out_dir: str | os.PathLike = "export",
    overwrite: bool = False,
    *,
    overlap: int | None = None,
    strategy: str | None = None,
    opset: int = DEFAULT_OPSET,
    coreml_target: str = "iOS16",
    calibration_stacks: int = CALIBRATION_STACKS,
    calibration_images: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ExportedArtefact]:
    """Export a shipped model (name) or a model folder for static stacks (1, n, 3, tile, tile).

    Args:
        model_name_or_path: shipped model name or folder with ``model.safetensors`` + ``card.json``.
        n: tiles per stack (>= 1); None: the card's ``n_trained`` (4 for a card without it). A value other
            than ``n_trained`` warns (quality not validated); for mirror stacks (lens), one that is not 1, 2 or a
            multiple of 4 warns why as well.
        tile: tile size, a multiple of 2**depth of the network.
        formats: any of ``onnx``, ``coreml``.
        precisions: any of ``fp32``, ``fp16``, ``int8`` (int8: ONNX only); ``None`` = ONNX fp32 and
            Core ML fp16 (compute precision FLOAT16, Apple's recommendation for the Neural Engine).
        out_dir: destination folder (created if missing).
        overwrite: replace existing artefacts; without it an existing one is an error.
        overlap / strategy: tiling recorded in the sidecars (defaults: ``default_overlap(tile)``, 32 px at most tile / 4, and
            :func:`default_strategy` of the card).
        opset: ONNX opset (>= 17). coreml_target: Core ML minimum deployment target (>= iOS15).
        calibration_stacks: validation stacks used to calibrate int8.
        calibration_images: folder of photos (sRGB files) for int8 calibration and the parity and
            quality checks, taken to linear camera RGB (:mod:`.calibration`); default: the validation
            photos of a source checkout. Without photos of at least ``tile`` px a side, synthetic
            images stand in, with a warning.
        log: called with progress lines.

    Returns:
        The written artefacts (``.path``, ``.sidecar``, ``.parity``, ``.seconds``), in plan order.

    Raises:
        ValueError (incl. ``WeightsError``), FileExistsError: bad input, nothing written.
        ExportError: a built artefact failed its parity check, or publishing it failed; nothing written.

    fp16 and int8 variants that lose more restoration PSNR against PyTorch than
    :data:`QUALITY_TOLERANCE_DB` warn (the sidecar's ``parity.quality`` records the figures).
    """
    from .. import __version__

    say = log or (lambda _msg: None)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N):
        raise ValueError(f"n must be an integer between 1 and {MAX_N}, got {n!r}")
    plan = plan_variants(formats, precisions)
    model_dir = resolve_model_dir(model_name_or_path)
    model = load_model(model_dir)
    if n is None:  # the stack size the model was trained and validated with
        n = max(1, int((getattr(model, "card", {}) or {}).get("n_trained", 4)))
    m = model.multiple
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < m or tile % m:
        raise ValueError(f"tile must be a positive multiple of {m} (2**depth of {model.config.arch}), got {tile!r}")
    if tile > MAX_TILE:  # parity and calibration run real [1, N, 3, T, T] stacks: keep them in memory
        raise ValueError(f"tile must be at most {MAX_TILE} px (got {tile}); whole images are restored tile by tile")
    if n * tile * tile > MAX_STACK_PIXELS:
        gb = n * tile * tile / 1e6 * GB_PER_STACK_MEGAPIXEL
        raise ValueError(
            f"a [1, {n}, 3, {tile}, {tile}] stack needs about {gb:.0f} GB to check against PyTorch; N x tile² may "
            f"be at most 4 x 2048² (use a smaller tile or N)"
        )
    need, available = n * tile * tile / 1e6 * GB_PER_STACK_MEGAPIXEL, available_memory_gb()
    if available is not None and need > available:
        raise ValueError(
            f"a [1, {n}, 3, {tile}, {tile}] stack needs about {need:.1f} GB to check against PyTorch, and this machine "
            f"has {available:.1f} GB available (use a smaller tile or N)"
        )
    if calibration_images is not None:  # named by the user: no silent fallback to synthetic images
        from .calibration import check_photo_folder

        check_photo_folder(calibration_images, min_size=tile)
    overlap = default_overlap(tile) if overlap is None else overlap
    if isinstance(overlap, bool) or not isinstance(overlap, int):
        raise ValueError(f"overlap must be an integer number of pixels, got {overlap!r}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap must be in [0, tile // 2 = {tile // 2}], got {overlap}")
    trained_strategy = default_strategy(model.card)
    strategy = strategy or trained_strategy
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown gathering strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if strategy == "mirror" and (n == 3 or (n > 4 and n % 4)):
        from ..restore.gathering import mirror_size_note

        warnings.warn(mirror_size_note(n), stacklevel=2)
    if opset < MIN_OPSET:
        raise ValueError(f"ONNX opset must be >= {MIN_OPSET}, got {opset}")
    if calibration_stacks < 1:
        raise ValueError(f"calibration_stacks must be >= 1, got {calibration_stacks}")
    if any(f == "coreml" for f, _ in plan):
        from .coreml_export import deployment_target

        deployment_target(coreml_target)
    info = _sidecar_model_block(model, model_dir)
    info["cost"] = _cost(model, n, tile, overlap)
    lens = _lens_blur(info, model_dir)
    if strategy != trained_strategy:
        warnings.warn(
            f"{info['name']} is meant to run with {trained_strategy} stacks; the sidecar will tell runtimes to "
            f"gather {strategy} stacks, whose quality was not validated",
            stacklevel=2,
        )
    if info["n_trained"] is not None and n != info["n_trained"]:
        warnings.warn(
            f"{info['name']} was trained with N={info['n_trained']}; quality at N={n} was not validated",
            stacklevel=2,
        )

    out = Path(out_dir)
    stem = artefact_stem(info["name"], n, tile)
    targets = [(f, p, out / artefact_name(stem, f, p)) for f, p in plan]
    for *_, path in targets:
        for p in (path, sidecar_path(path)):
            package = p.suffix == ".mlpackage" and (p / "Manifest.json").is_file()
            if p.is_dir() and not p.is_symlink() and not package:  # --overwrite replaces artefacts, not folders
                raise FileExistsError(
                    f"{p}: a folder is there, not an exported artefact; not replaced, even with --overwrite"
                )
            if not overwrite and (p.exists() or p.is_symlink()):
                raise FileExistsError(f"{p}: already exists (pass --overwrite to replace it)")

    created, tmp = prepare_out_dir(out)
    try:
        built = build_artefacts(
            model,
            info,
            plan,
            tmp,
            stem,
            n,
            tile,
            overlap,
            strategy,
            opset,
            coreml_target,
            calibration_stacks,
            calibration_images,
            lens,
            __version__,
            say,
        )
        try:
            publish([(src, out / src.name) for art in built for src in (art.sidecar, art.path)], tmp, overwrite)
        except FileExistsError as e:
            raise FileExistsError(f"{e} (pass --overwrite to replace it); nothing written") from None
        except OSError as e:
            where = e.filename or out
            raise ExportError(f"{where}: cannot write ({e.strerror or e}); nothing written") from None
        for art in built:
            art.path, art.sidecar = out / art.path.name, out / art.sidecar.name
        return built
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(created)
        if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "allocate" in str(e)):
            raise ExportError(
                f"out of memory checking a [1, {n}, 3, {tile}, {tile}] stack against PyTorch (about {need:.1f} GB "
                "needed); use a smaller tile or N; nothing written"
            ) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
