"""isp-collab: collaborative blind deblurring networks for camera ISPs.

Tensors inside the networks are (B, N, 3, H, W) float32 linear RGB; images at the pipeline level
are H x W x 3 float32 numpy arrays, linear RGB.
"""

from importlib.metadata import PackageNotFoundError, version

from .models import create_model, load_model

try:
    __version__ = version("isp-collab")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

__all__ = ["__version__", "create_model", "load_model"]
