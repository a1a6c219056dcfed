"""Shipped-weights format: ``models/<name>/model.safetensors`` + ``models/<name>/card.json``.

The card is data about the weights (timm-style): architecture, width, depth, pooling, the N the
model was trained with, task, colour space, training recipe and its hash, validation figures and
package version. :func:`load_model` is the one way to get a trained network; every failure is a
:class:`WeightsError` whose message is one line naming the file and the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..hashing import file_sha256
from ..shipped import DEFAULT_MODEL, shipped_path  # noqa: F401 (DEFAULT_MODEL: re-exported, its old home)
from .collab import MERGES, POOLINGS
from .unet import ARCHITECTURES, NORMS, CollaborativeUNet, ModelConfig

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
# Shipped weights live in the repository's models/ folder (a wheel carries a copy: isp_collab/shipped.py);
# ISP_COLLAB_MODELS points elsewhere (e.g. a camera maker's own model zoo).


def models_dir() -> Path:
    """The folder of named models: ``$ISP_COLLAB_MODELS`` (read at each call), else the shipped ``models/``."""
    return Path(os.environ.get("ISP_COLLAB_MODELS") or shipped_path("models"))


class WeightsError(ValueError):
    """A weights folder that cannot be loaded; str(error) is one line naming the file."""


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """A shipped model name (``sharpen-unet-tx-n4``), a folder path or the path of its weights or card -> the
    model folder."""
    if isinstance(name_or_path, str) and not name_or_path:  # Path("") is the current folder
        raise WeightsError(f"empty model name: pass a shipped model ({', '.join(shipped_models())}) or a model folder")
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if p.name in (WEIGHTS_FILE, CARD_FILE) and p.parent.is_dir():
        return p.parent
    shipped = models_dir() / str(name_or_path)
    if shipped.is_dir():
        return shipped
    known = ", ".join(shipped_models()) or "none"
    raise WeightsError(f"{name_or_path}: no such model folder or shipped model (shipped: {known})")


def shipped_models() -> list[str]:
    """Names of the models under ``models/`` that have weights and a card."""
    folder = models_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p / WEIGHTS_FILE).is_file() and (p / CARD_FILE).is_file()
    )


def read_card(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Parse ``card.json`` of a model folder; raises :class:`WeightsError`."""
    card_path = resolve_model_dir(model_dir) / CARD_FILE
    if not card_path.is_file():
        raise WeightsError(f"{card_path}: missing model card")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{card_path}: not valid JSON ({e.__class__.__name__}: {e})") from None
    for key in ("arch", "depth", "width", "pooling", "n_trained"):
        if key not in card:
            raise WeightsError(f"{card_path}: card lacks the key {key!r}")
    _check_card(card, card_path)
    return card


def is_folder_name(name: object) -> bool:
    """Whether ``name`` can name a model folder or a file stem: a non-empty string that is not ``.`` or ``..`` and
    holds no path separator or control character (a card's name makes the exported files' names)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in name)
    )


def _check_card(card: dict[str, Any], card_path: Path) -> None:
    """Types and values of the keys that build the network or name its files; WeightsError naming the card."""
    if "name" in card and not is_folder_name(card["name"]):
        raise WeightsError(f"{card_path}: name must be a plain file name (no / or \\), got {card['name']!r}")
    if not isinstance(card["arch"], str) or card["arch"] not in ARCHITECTURES:
        raise WeightsError(f"{card_path}: unknown architecture {card['arch']!r} (known: {', '.join(ARCHITECTURES)})")
    depth, width = ARCHITECTURES[card["arch"]]
    for key, expected in (("depth", depth), ("width", width)):
        if card[key] != expected or isinstance(card[key], bool):
            raise WeightsError(f"{card_path}: {key} {card[key]!r} does not match {card['arch']} ({key} {expected})")
    n = card["n_trained"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise WeightsError(f"{card_path}: n_trained must be an integer >= 1, got {n!r}")
    if not isinstance(card["pooling"], str) or card["pooling"] not in POOLINGS:
        raise WeightsError(f"{card_path}: pooling must be one of {', '.join(POOLINGS)}, got {card['pooling']!r}")
    merge = card.get("merge", "concat")
    if not isinstance(merge, str) or merge not in MERGES:
        raise WeightsError(f"{card_path}: merge must be one of {', '.join(MERGES)}, got {merge!r}")
    norm = card.get("norm", "batch")  # cards before the key: BatchNorm
    if not isinstance(norm, str) or norm not in NORMS:
        raise WeightsError(f"{card_path}: norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if not isinstance(card.get("collaborative", True), bool):
        raise WeightsError(f"{card_path}: collaborative must be true or false, got {card['collaborative']!r}")


def config_from_card(card: dict[str, Any]) -> ModelConfig:
    """The network a card (as :func:`read_card` gives it) describes; keys older cards lack take their old meaning:
    ``collaborative`` when ``n_trained`` > 1, ``merge`` "concat", ``norm`` "batch"."""
    return ModelConfig(
        arch=card["arch"],
        depth=card["depth"],
        width=card["width"],
        collaborative=card.get("collaborative", card["n_trained"] > 1),
        pooling=card["pooling"],
        merge=card.get("merge", "concat"),
        norm=card.get("norm", "batch"),
    )


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> CollaborativeUNet:
    """Load a shipped or user model in eval mode. Accepts a shipped name, a folder path, or its
    ``model.safetensors`` or ``card.json``.

    The returned network takes (B, N, 3, H, W) float32 linear RGB at any N; ``model.card`` holds
    the card. Raises :class:`WeightsError` (one line, naming the file) for a missing, truncated or
    corrupted weights file, or a card that does not match the tensors.
    """
    from ..device import pick_device

    device = pick_device(device)  # "cuda" without a GPU, or "gpu": one line, before any reading
    model_dir = resolve_model_dir(name_or_path)
    card = read_card(model_dir)
    weights = model_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise WeightsError(f"{weights}: missing weights file")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise WeightsError(f"{weights}: corrupted or truncated safetensors ({reason})") from None
    with torch.random.fork_rng(devices=[]):  # the init is overwritten: leave the caller's seeded generator alone
        model = CollaborativeUNet(config_from_card(card))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}"
        raise WeightsError(f"{weights}: tensors do not match the card ({card['arch']}, {what})")
    for key, t in state.items():
        if t.shape != expected[key].shape:
            raise WeightsError(
                f"{weights}: tensor {key} has shape {tuple(t.shape)}, card expects {tuple(expected[key].shape)}"
            )
        if t.is_floating_point() and not torch.isfinite(t).all():  # would restore black or NaN images
            raise WeightsError(f"{weights}: tensor {key} holds NaN or infinite values")
    model.load_state_dict(state)
    model.card = card
    return model.to(device).eval()


def save_model(
    model: CollaborativeUNet,
    out_dir: str | os.PathLike,
    card: dict[str, Any],
    extra_files: dict[str, str | bytes] | None = None,
) -> Path:
    """Write ``model.safetensors``, ``card.json`` and ``extra_files`` (name -> text or bytes) as one folder.

    The files are written to a temporary folder beside ``out_dir``, which then takes its place: a crash
    leaves the old model or the new one, never new weights with an old card, and the files of a replaced
    model go with it. A folder that holds anything else (``out_dir`` is a working folder) gets the files
    one by one instead, each atomically. A card holding NaN or infinity is refused (``ValueError``):
    it would not be JSON.
    """
    out = Path(out_dir)
    from .. import __version__

    full = {"colour_space": "linear RGB", "package_version": __version__, **model.config.to_dict(), **card}
    try:
        json.dumps(full, allow_nan=False)
    except ValueError:
        raise ValueError(f"{out / CARD_FILE}: the card holds NaN or infinity; nothing written") from None
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        save_file(state, str(tmp / WEIGHTS_FILE))
        full["weights_sha256"] = file_sha256(tmp / WEIGHTS_FILE)
        (tmp / CARD_FILE).write_text(json.dumps(full, indent=2, allow_nan=False) + "\n")
        for name, content in (extra_files or {}).items():
            if isinstance(content, bytes):
                (tmp / name).write_bytes(content)
            else:
                (tmp / name).write_text(content)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        _put_in_place(tmp, out, {WEIGHTS_FILE, CARD_FILE, *(extra_files or {})})
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def calibration_candidates(lens: str, model_dir: str | os.PathLike) -> list[Path]:
    """Where a card's calibration ``lens`` (a ``.npz`` path) may be, in order.

    A bare name (what training records: it copies the file into the model folder) is the model folder's
    file first, so a file of that name in the current folder never stands in for it; a path with folders
    (older cards) is tried as written (from the current folder), then in the model folder."""
    path = Path(lens)
    if path.is_absolute():
        return [path]
    here = Path(model_dir) / path.name
    if len(path.parts) == 1:
        return [here, path]
    return list(dict.fromkeys([path, Path(model_dir) / path, here]))


# files a model folder may hold besides the weights and card (what training writes next to them)
MODEL_FOLDER_FILES = {WEIGHTS_FILE, CARD_FILE, "train_log.jsonl"}


def _put_in_place(tmp: Path, out: Path, names: set[str]) -> None:
    """Move the finished folder ``tmp`` to ``out``: a rename when ``out`` is absent or a model folder."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: a file is there, not a model folder; nothing written")
    if out.exists():
        known = MODEL_FOLDER_FILES | names
        others = [f for f in out.iterdir() if not f.is_file() or (f.name not in known and not f.name.endswith(".tmp"))]
        if others or out.is_symlink():
            for name in sorted(names, key=lambda n: n == CARD_FILE):  # the card last
                os.replace(tmp / name, out / name)
            return
        os.chmod(tmp, stat.S_IMODE(out.stat().st_mode))
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        os.replace(out, old)  # onto the empty placeholder
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
