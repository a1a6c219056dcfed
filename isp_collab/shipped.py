"""Where the files the package ships beside its code live: the shipped weights and the benchmark set.

In a source checkout (editable install) they are the repository's ``models/`` and ``benchmarks/``
folders. A wheel (``pip install .``) carries copies under ``isp_collab/_shipped/`` (see ``setup.py``),
so a non-editable install finds its default model and benchmark images too.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = "sharpen-unet-tx-n4"  # the model process, export and the demo use unless told otherwise
REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALLED_ROOT = Path(__file__).resolve().parent / "_shipped"


def in_checkout() -> bool:
    """Whether the package runs from a source checkout (not site-packages, where a stray models/ may sit)."""
    return (REPO_ROOT / "pyproject.toml").is_file()


def shipped_path(relative: str) -> Path:
    """``relative`` (e.g. ``"models"``, ``"benchmarks/data"``) in the checkout, else in the installed copy.

    Returns the checkout path when neither exists, so error messages name the folder a developer expects.
    """
    if in_checkout() and (REPO_ROOT / relative).exists():
        return REPO_ROOT / relative
    if (INSTALLED_ROOT / relative).exists():
        return INSTALLED_ROOT / relative
    return REPO_ROOT / relative
