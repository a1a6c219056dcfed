"""isp-collab: collaborative blind deblurring networks for camera ISPs.

Tensors inside the networks are (B, N, 3, H, W) float32 linear RGB; images at the pipeline level
are H x W x 3 float32 numpy arrays, linear RGB.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports them on first use
    from .models import create_model, load_model


def __getattr__(name: str) -> Any:
    """``create_model`` / ``load_model`` from :mod:`isp_collab.models`, imported on first use: importing the
    package (or running ``isp-collab process --onnx``) does not import torch (about 1 s)."""
    if name in ("create_model", "load_model"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:
    __version__ = version("isp-collab")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

__all__ = ["__version__", "create_model", "load_model"]
