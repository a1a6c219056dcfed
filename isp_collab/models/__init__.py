"""The collaborative UNet family, its weights format and its complexity counts."""

from ..shipped import DEFAULT_MODEL
from .collab import POOLINGS, Collaboration
from .complexity import count_params, family_table, gflops_per_megapixel
from .unet import ARCHITECTURES, CollaborativeUNet, ModelConfig, create_model
from .weights import WeightsError, load_model, read_card, save_model, shipped_models

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_MODEL",
    "POOLINGS",
    "Collaboration",
    "CollaborativeUNet",
    "ModelConfig",
    "WeightsError",
    "count_params",
    "create_model",
    "family_table",
    "gflops_per_megapixel",
    "load_model",
    "read_card",
    "save_model",
    "shipped_models",
]
