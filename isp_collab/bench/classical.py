"""The classical sharpeners a user would otherwise pick: unsharp mask and Polyblur.

Both take and return ``H x W x 3`` float32 numpy images in linear RGB, range [0, 1], and are blind
(one parameter set for every blur; the values tuned on the validation set live in
``benchmarks/classical_params.json``, written by :mod:`isp_collab.bench.tune`).

* Unsharp mask: ``out = (1 + amount) x - amount G_radius * x`` with OpenCV's ``GaussianBlur``
  (std ``radius`` px, reflect-101 borders) and ``addWeighted``, clipped to [0, 1].
* Polyblur: Delbracio, Garcia-Dorado, Choi, Kelly & Milanfar, "Polyblur: Removing mild blur by
  polynomial reblurring", IEEE TCI 2021, through the implementation of Eboli, Delbracio & Morel,
  "Breaking down Polyblur: Fast blind correction of small anisotropic blurs", IPOL 2022 — the
  ``polyblur`` package on PyPI (``pip install --no-build-isolation polyblur``, the ``bench``
  extra). Its entry point ``polyblur.polyblur_deblurring(img, n_iter, c, b, alpha, beta, ...)``
  estimates a Gaussian blur from the gradients (``c``, ``b``: the affine std model), then applies a
  cubic polynomial of the reblurring operator (``alpha``: mid frequencies, ``beta``: high
  frequencies), ``n_iter`` times.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..shipped import shipped_path

PARAMS_FILE = shipped_path("benchmarks/classical_params.json")

#: Unsharp-mask starting point (a common photo-editor default).
DEFAULT_UNSHARP: dict[str, float] = {"amount": 1.0, "radius": 1.0}
#: ``polyblur.polyblur_deblurring``'s own defaults (the weak ones the issue mentions).
DEFAULT_POLYBLUR: dict[str, Any] = {
    "alpha": 2.0,
    "beta": 3.0,
    "n_iter": 1,
    "remove_halo": False,
    "c": 0.352,
    "b": 0.768,
}
#: The keys :func:`polyblur_deblur` takes from a parameter record.
POLYBLUR_KEYS = ("alpha", "beta", "n_iter", "remove_halo", "c", "b")
UNSHARP_KEYS = ("amount", "radius")

Restorer = Callable[[np.ndarray], np.ndarray]


def unsharp_mask(image: np.ndarray, amount: float = 1.0, radius: float = 1.0) -> np.ndarray:
    """Unsharp mask with OpenCV: ``(1 + amount) x - amount * GaussianBlur(x, std=radius)``.

    Args:
        image: H x W x 3 float32 linear RGB in [0, 1].
        amount: gain of the high-pass detail (0 = identity).
        radius: std in pixels of the Gaussian low-pass (OpenCV picks the kernel size from it).

    Returns:
        H x W x 3 float32, clipped to [0, 1].
    """
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    x = np.ascontiguousarray(image, dtype=np.float32)
    low = cv2.GaussianBlur(x, (0, 0), sigmaX=float(radius), sigmaY=float(radius), borderType=cv2.BORDER_REFLECT_101)
    out = cv2.addWeighted(x, 1.0 + float(amount), low, -float(amount), 0.0)
    return np.clip(out, 0.0, 1.0)


def polyblur_status() -> tuple[bool, str]:
    """``(True, version)`` when the ``polyblur`` package imports, else ``(False, reason)``."""
    import warnings

    try:
        with warnings.catch_warnings():  # polyblur's modules use the deprecated torch.jit.script
            warnings.simplefilter("ignore", DeprecationWarning)
            import polyblur  # noqa: F401
    except Exception as e:  # ImportError, or a broken install (scipy / torch mismatch)
        return False, (
            f"polyblur is not usable ({e.__class__.__name__}: {e}); install the bench extra: "
            "pip install --no-build-isolation polyblur  (after torch)"
        )
    from importlib.metadata import PackageNotFoundError, version

    try:
        return True, version("polyblur")
    except PackageNotFoundError:
        return True, "unknown"


def polyblur_deblur(
    image: np.ndarray,
    alpha: float = DEFAULT_POLYBLUR["alpha"],
    beta: float = DEFAULT_POLYBLUR["beta"],
    n_iter: int = DEFAULT_POLYBLUR["n_iter"],
    remove_halo: bool = DEFAULT_POLYBLUR["remove_halo"],
    c: float = DEFAULT_POLYBLUR["c"],
    b: float = DEFAULT_POLYBLUR["b"],
    **kwargs: Any,
) -> np.ndarray:
    """Blind Polyblur on one image (the ``polyblur`` package, FFT path, on CPU).

    Args:
        image: H x W x 3 float32 linear RGB in [0, 1].
        alpha, beta: the polynomial filter's mid / high frequency parameters (Eboli et al. 2022).
        n_iter: blur-estimation + deblurring rounds.
        remove_halo: the package's halo masking (gradient-inversion check).
        c, b: slope and intercept of the affine blur-size model (Eboli et al. 2022, Eq. 24):
            ``sigma^2 = c^2 / max_gradient^2 - b^2`` on the range-normalised grey image.
        kwargs: passed to ``polyblur.polyblur_deblurring`` (``ker_size``, ``q``, ...).

    Returns:
        H x W x 3 float32 in [0, 1].

    Raises:
        RuntimeError: the package is missing (message says how to install it).
    """
    ok, why = polyblur_status()
    if not ok:
        raise RuntimeError(why)
    import polyblur
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = polyblur.polyblur_deblurring(
            x,
            n_iter=int(n_iter),
            alpha=float(alpha),
            beta=float(beta),
            remove_halo=bool(remove_halo),
            c=float(c),
            b=float(b),
            **kwargs,
        )
    return np.ascontiguousarray(y[0].permute(1, 2, 0).numpy(), dtype=np.float32)


def read_params_json(path: Path) -> Any:
    """The parsed parameters file; a corrupt one is a ValueError naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable tuned parameters ({str(e).splitlines()[0]}); rerun bench tune") from None


def load_params(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Chosen parameters ``{"unsharp": {...}, "polyblur": {...}}`` from the JSON file.

    Falls back to :data:`DEFAULT_UNSHARP` / :data:`DEFAULT_POLYBLUR` (per method) when the file or
    the method is missing; ``"source"`` says which.
    """
    path = Path(path) if path is not None else PARAMS_FILE
    data: dict[str, Any] = {}
    if path.is_file():
        data = read_params_json(path)
    out: dict[str, dict[str, Any]] = {}
    for name, default in (("unsharp", DEFAULT_UNSHARP), ("polyblur", DEFAULT_POLYBLUR)):
        chosen = data.get(name, {}).get("chosen")
        out[name] = {**default, **chosen, "source": str(path)} if chosen else {**default, "source": "defaults"}
    return out


def classical_methods(params: dict[str, dict[str, Any]] | None = None, verbose: bool = True) -> dict[str, Restorer]:
    """``{"unsharp mask": f, "Polyblur": f}`` with the given (or the tuned) parameters.

    Polyblur is left out, with a printed reason, when its package is missing.
    """
    params = params if params is not None else load_params()
    u = {k: v for k, v in params["unsharp"].items() if k in UNSHARP_KEYS}
    p = {k: v for k, v in params["polyblur"].items() if k in POLYBLUR_KEYS}
    methods: dict[str, Restorer] = {"unsharp mask": lambda x: unsharp_mask(x, **u)}
    ok, why = polyblur_status()
    if ok:
        methods["Polyblur"] = lambda x: polyblur_deblur(x, **p)
    elif verbose:
        print(f"bench: skipping Polyblur: {why}")
    return methods
