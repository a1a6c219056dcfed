"""``isp-collab gather``: draw which tiles are restored together (the stacks) over an image."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..pipeline.collaborative import MAX_N, MAX_TILE
from .paths import nonblank

if TYPE_CHECKING:
    from ..pipeline import LensCorrect
    from ..restore.gathering import Stack
    from ..restore.tiling import TileGrid

# what cv2.imencode can write; checked before any work so a bad name fails fast
WRITABLE = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``gather`` subcommand to ``sub``."""
    p = sub.add_parser(
        "gather",
        help="draw the tile grid and the stacks of a gathering strategy over an image",
        description="Draw the tile grid over IMAGE with each stack of N tiles (restored together by the "
        "collaborative network) in its own colour and number, so you see which regions collaborate. "
        "Mirror strategy: a ' after a number marks a tile flipped left-right or up-down before the network, "
        "'' one flipped both ways (the four mirror tiles about the optical centre then look alike). "
        "The grid is laid on the frame process restores (a RAW file's unrotated sensor frame); the picture is "
        "then turned upright by the file's orientation.",
    )
    p.add_argument(
        "image",
        metavar="IMAGE",
        help="PNG/JPEG/TIFF image, RAW file or described headerless .raw (decoded as process does)",
    )
    p.add_argument(
        "--strategy",
        choices=["spread", "local", "mirror"],
        help="gathering strategy (default: with --model, the model's own: mirror for a lens model, as process's lens "
        "stage gathers; else spread)",
    )
    p.add_argument("--n", type=int, help="stack size N (default: with --model, the model's trained N; else 4)")
    p.add_argument(
        "--tile",
        type=int,
        help="tile size in pixels, a multiple of 8 (default: the tile process uses for N: on a CPU 256, 192 for "
        "N = 3..4, 160 above; 256 on a GPU)",
    )
    p.add_argument(
        "--overlap",
        type=int,
        help="overlap between tiles in pixels, 0..tile // 2 (default: 32 px or tile // 4, whichever is smaller)",
    )
    p.add_argument(
        "--center",
        default=None,
        metavar="X,Y",
        help="optical centre for mirror, in pixels of the frame process restores (a RAW file's unrotated sensor "
        "frame, as [lens] center in a process config; default: its centre; a lens model trained on an off-centre "
        "calibration gathers about its card's optical_center, fractions of width and height: --model reads it)",
    )
    p.add_argument(
        "--model",
        metavar="MODEL",
        help="a lens model (a shipped name or a model folder): gather mirror stacks about its optical centre (its "
        "card's optical_center), as process's lens stage does; not with --center or another --strategy",
    )
    p.add_argument("-o", "--output", required=True, type=nonblank, help="output picture (.png, .jpg, .tif, ...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def parse_center(text: str | None) -> tuple[float, float] | None:
    """``"X,Y"`` -> (x, y) floats; None passes through."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"--center must be X,Y in pixels (e.g. 2000,1500), got {text!r}") from None


def lens_stage(model: str, strategy: str | None, center: tuple[float, float] | None) -> tuple[LensCorrect, str]:
    """``--model``: (the lens stage running that model, the strategy to gather with). The model's own
    strategy (its card's, as process's lens stage gathers: mirror) unless ``--strategy`` names one; refused, in
    one line, with ``--center``, with a strategy other than mirror, or for a model that is not a lens model
    (it has no optical centre to gather about)."""
    from ..models.weights import CARD_FILE, read_card, resolve_model_dir
    from ..pipeline import LensCorrect
    from ..restore.model_card import default_strategy, model_card

    if strategy not in (None, "mirror"):
        raise ValueError(
            f"--model {model} gives the optical centre of mirror gathering, and --strategy {strategy} has none: "
            "drop --model, or use --strategy mirror (the default with --model)"
        )
    if center is not None:
        raise ValueError(f"--model {model} gives the optical centre (its card's): drop --center, or drop --model")
    card_path = resolve_model_dir(model) / CARD_FILE
    task = read_card(model).get("task")
    if task is not None and not (str(task) == "lens" or str(task).startswith("lens-")):
        raise ValueError(
            f"{card_path}: a {str(task)!r} model, not a lens model: it has no optical centre to gather mirror stacks "
            "about (--model takes a lens model, e.g. lens-a-unet-tx-n4; drop it to draw any --strategy)"
        )
    lens = LensCorrect(model=model)
    card = model_card(None, lens.network())  # the network is built as process builds it (its checks, its warnings)
    strategy = strategy or default_strategy(card)
    if strategy != "mirror":  # a card that names no task and recommends another gathering
        raise ValueError(
            f"{card_path}: the model's own gathering is {strategy} (its card's recommended_strategy, or its task's), "
            "which has no optical centre; give --strategy mirror to gather about its centre"
        )
    return lens, strategy


def read_display_image(path: Path, frame_out: list | None = None) -> tuple[np.ndarray, int]:
    """An input as ``H x W x 3`` uint8 display sRGB for drawing, decoded as ``isp-collab process`` does, in
    the frame process restores it in; and the EXIF orientation that turns that frame upright.

    The camera pipeline without its restoration stages: RAW files get the same crop (DNG
    DefaultCrop), demosaicking and colour, headerless ``.raw`` files their description, and every input
    the same one-line errors and pixel cap, so the tiles drawn are the tiles ``process`` restores.
    A RAW file is restored on its unrotated sensor frame and turned upright at the end, so the image
    comes back unrotated with the file's orientation (1 for ordinary images: decoded upright).
    """
    import dataclasses

    from ..pipeline import Pipeline, PipelineWarning

    pipeline = Pipeline()
    for stage in pipeline.restoration:
        setattr(pipeline, stage.name, dataclasses.replace(stage, enabled=False))
    with warnings.catch_warnings():  # colour caveats (no white balance in the file...) do not matter for a drawing
        warnings.simplefilter("ignore", PipelineWarning)
        image, frame, _ = pipeline.read(path)
        image = pipeline.finish(image, frame.replace(orientation=1))  # where process restores: not turned yet
    if frame_out is not None:  # the decoded Frame, for a lens model's optical centre (--model)
        frame_out.append(frame)
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), frame.orientation


def draw_upright(
    rgb: np.ndarray, grid: TileGrid, stacks: list[Stack], orientation: int, *, show_center: bool = False
) -> np.ndarray:
    """The gathering drawn on ``rgb`` (the frame ``grid`` is laid on), turned by EXIF ``orientation`` for
    display, with the stack numbers written after the turn so that they read upright."""
    from ..pipeline.frame import apply_orientation, orient_box
    from ..restore.draw import draw_gathering, draw_labels, gathering_labels

    picture = draw_gathering(rgb, grid, stacks, numbers=False, show_center=show_center)
    picture = apply_orientation(picture, orientation)
    h, w = rgb.shape[:2]
    labels = [
        dataclasses.replace(label, box=orient_box(label.box, h, w, orientation))
        for label in gathering_labels(grid, stacks)
    ]
    return draw_labels(picture, labels)


def write_atomic(path: Path, rgb: np.ndarray, overwrite: bool) -> None:
    """Encode and write ``rgb`` (uint8) to ``path`` via a temp file + rename: never a partial file."""
    import cv2

    ok, buf = cv2.imencode(path.suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: could not encode the picture")
    from ..atomic import atomic_write_bytes

    # the pipeline's writer: fsync, usual permissions (not mkstemp's 0600), never clobbers without overwrite
    atomic_write_bytes(path, buf.tobytes(), overwrite=overwrite)


def run(args: argparse.Namespace) -> int:
    """Carry out ``isp-collab gather``; returns the exit status."""
    from ..atomic import check_writable_folder
    from ..restore import default_overlap, default_tile, gather_stacks, make_grid
    from ..restore.gathering import stack_cap
    from . import require_parent_folder

    src, out = Path(args.image), Path(args.output)
    # every check that can fail runs before anything is written
    if out.suffix.lower() not in WRITABLE:
        raise ValueError(f"{out}: unsupported output type {out.suffix!r}; use one of {', '.join(sorted(WRITABLE))}")
    require_parent_folder(out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: exists (use --overwrite to replace it)")
    if src.exists() and out.exists() and src.resolve() == out.resolve():
        raise ValueError(f"{out}: output would replace the input image")
    if args.n is not None and not 1 <= args.n <= MAX_N:
        raise ValueError(f"--n must be between 1 and {MAX_N}, got {args.n}")
    if args.tile is not None and not 1 <= args.tile <= MAX_TILE:
        raise ValueError(f"--tile must be between 1 and {MAX_TILE}, got {args.tile}")
    if args.tile is not None and args.tile % 8:  # the tiles drawn are tiles process could restore (2**3)
        raise ValueError(f"--tile must be a multiple of 8 (2**depth of the shipped networks), got {args.tile}")
    center = parse_center(args.center)
    lens, strategy = None, args.strategy or "spread"
    n, tile, overlap = args.n or 4, args.tile, args.overlap
    if args.model is not None:  # reads its card, and refuses a model that is not a lens model, before decoding
        lens, strategy = lens_stage(args.model, args.strategy, center)
        lens = dataclasses.replace(lens, n=args.n, tile=args.tile)
        n, tile, own_overlap = lens.tiling()  # as process's lens stage runs it (the model's N and tile)
        overlap = own_overlap if overlap is None else overlap
    elif center is not None and strategy != "mirror":
        raise ValueError(f"--center applies to --strategy mirror only, got --strategy {strategy}")
    if tile is None:
        from ..device import pick_device

        tile = default_tile(n, 8, pick_device().type)  # what process's stages pick on this machine
    overlap = default_overlap(tile) if overlap is None else overlap
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"--overlap must be in [0, tile // 2 = {tile // 2}], got {overlap}")
    check_writable_folder(out.parent)  # before decoding: a RAW file takes seconds
    frames: list = []
    rgb, orientation = read_display_image(src, frames)
    if lens is not None:
        center = lens.restore_kwargs(frames[0])["center"]  # as process's lens stage lays its mirror stacks
    h, w = rgb.shape[:2]
    try:
        grid = make_grid(h, w, tile, overlap, center if strategy == "mirror" else None, symmetric=strategy == "mirror")
    except ValueError as e:
        raise ValueError(f"{src}: {e}") from None
    with warnings.catch_warnings(record=True) as caught:  # a stack size mirror gathering wastes: one line
        warnings.simplefilter("always")
        n = stack_cap(grid, n, strategy)  # as restore: a larger stack would only repeat the image's tiles
        stacks = gather_stacks(grid, n, strategy)
    for warning in caught:
        print(f"isp-collab gather: warning: {str(warning.message).splitlines()[0]}", file=sys.stderr)
    picture = draw_upright(rgb, grid, stacks, orientation, show_center=strategy == "mirror")
    write_atomic(out, picture, args.overwrite)
    rows, cols = grid.shape
    turned = (
        f" (tiles on the unrotated {w}x{h} sensor frame, EXIF orientation {orientation})" if orientation != 1 else ""
    )
    print(
        f"wrote {out}: {picture.shape[1]}x{picture.shape[0]}{turned}, {len(grid)} tiles ({rows}x{cols}, "
        f"tile {tile}, overlap {overlap}), "
        f"{len(stacks)} stack{'s' if len(stacks) != 1 else ''} of N={n}, strategy {strategy}"
        + (f", centre ({grid.center[0]:g}, {grid.center[1]:g})" if strategy == "mirror" else "")
    )
    return 0
