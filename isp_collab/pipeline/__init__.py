"""Linear-RGB camera pipeline with collaborative restoration stages.

RAW (LibRaw or headerless) -> normalise -> demosaic -> lens / sharpen / unsharp -> white balance
-> colour matrix -> tone -> encode; ordinary sRGB images enter through ``Linearize``. Images
between stages are (H, W, 3) float32 linear RGB; see :mod:`.stages` for the protocol.
"""

from ..atomic import OutputError, atomic_write_bytes
from .collaborative import Sharpen
from .decode import ImageDecode
from .demosaic import DEMOSAIC_METHODS, Demosaic, demosaic, normalize_mosaic
from .encode import Encode, encode_image, output_bit_depth
from .frame import CFA_PATTERNS, CFAPattern, Frame, apply_orientation, cfa_from_colors
from .headerless import HeaderlessDecode, SensorDescription, read_description
from .io import DEFAULT_MAX_PIXELS, InputError, PipelineWarning
from .lens_stage import LensCorrect
from .pipeline import RESTORATION_STAGES, Pipeline, Result
from .raw import RawDecode
from .stages import (
    ColorCorrect,
    Linearize,
    Stage,
    Tone,
    UnsharpMask,
    WhiteBalance,
    linear_to_srgb,
    srgb_to_linear,
)

__all__ = [
    "CFA_PATTERNS",
    "DEFAULT_MAX_PIXELS",
    "DEMOSAIC_METHODS",
    "RESTORATION_STAGES",
    "CFAPattern",
    "ColorCorrect",
    "Demosaic",
    "Encode",
    "Frame",
    "HeaderlessDecode",
    "ImageDecode",
    "InputError",
    "LensCorrect",
    "Linearize",
    "OutputError",
    "Pipeline",
    "PipelineWarning",
    "RawDecode",
    "Result",
    "SensorDescription",
    "Sharpen",
    "Stage",
    "Tone",
    "UnsharpMask",
    "WhiteBalance",
    "apply_orientation",
    "atomic_write_bytes",
    "cfa_from_colors",
    "demosaic",
    "encode_image",
    "linear_to_srgb",
    "normalize_mosaic",
    "output_bit_depth",
    "read_description",
    "srgb_to_linear",
]
