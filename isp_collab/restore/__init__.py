"""Whole-image restoration: tiling, stack gathering, backends and seamless stitching.

``restore(image, model, strategy=...)`` takes an ``H x W x 3`` float32 linear-RGB image of any size
and returns the restored image (same shape and colour space, float32); ``make_backend(model)`` builds the
network once for a loop of frames (pass the backend as ``model``). See :mod:`.tiling`,
:mod:`.gathering`, :mod:`.backends`, :mod:`.api` and :mod:`.draw`.
"""

from .api import default_tile, make_backend, restore
from .backends import Backend, OnnxBackend, TorchBackend
from .draw import draw_gathering
from .gathering import STRATEGIES, Stack, flip_tile, gather_stacks, gilbert_order
from .tiling import (
    Stitcher,
    TileGrid,
    default_overlap,
    extract_tile,
    hann_taper_window,
    make_grid,
    reflect_index,
)

__all__ = [
    "STRATEGIES",
    "Backend",
    "OnnxBackend",
    "Stack",
    "Stitcher",
    "TileGrid",
    "TorchBackend",
    "default_overlap",
    "default_tile",
    "draw_gathering",
    "extract_tile",
    "flip_tile",
    "gather_stacks",
    "gilbert_order",
    "hann_taper_window",
    "make_backend",
    "make_grid",
    "reflect_index",
    "restore",
]
