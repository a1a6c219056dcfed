"""Training: recipes (TOML → dataclasses), tasks (sampler + validation), the trainer loop."""

from .config import Recipe, load_recipe
from .trainer import train

__all__ = ["Recipe", "load_recipe", "train"]
