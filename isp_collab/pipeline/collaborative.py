"""The collaborative network stages: :class:`Sharpen` here and :class:`~.lens_stage.LensCorrect` run a trained
stack network over the whole image with :func:`isp_collab.restore.restore` (PyTorch or ONNX Runtime), on
(H, W, 3) float32 linear camera RGB; :class:`CollaborativeStage` is what they share. The classical stages are in
:mod:`.stages`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ..limits import MAX_TILE
from ..restore.detail import DETAILS, Detail, keep_local_level, transfer_luma_detail
from ..restore.exposure import EXPOSURE_TARGET
from ..restore.gathering import STRATEGIES
from ..restore.model_card import model_card, onnx_sidecar
from ..restore.tiling import MAX_N
from .frame import Frame
from .io import PipelineWarning
from .stages import StageBase, check_number

if TYPE_CHECKING:
    from ..restore.backends import Backend

LENS_MODEL = "lens-a-unet-tx-n4"


@dataclass
class CollaborativeStage(StageBase):
    """A collaborative network run over the whole image with :func:`isp_collab.restore.restore`.

    ``stage(image, frame)``: ``image`` (H, W, 3) float32 linear camera RGB (linear sRGB for an ordinary image),
    black at 0 and the sensor's clip at 1, white balance not yet applied (``frame.wb_gains`` says it: the stage needs it for ``detail="luma"`` and works
    on the balanced brightness); ``frame`` the image's :class:`~.frame.Frame` (``Frame.for_image(image)`` for an
    array of your own). Returns the same shape, linear camera RGB, not clipped: values above 1 pass through and
    strong edges can dip slightly below 0.

    model: a shipped model name or a model folder (None = the stage's default model); from Python also a network
    in memory (``nn.Module``) or a :class:`~isp_collab.restore.Backend` to share between stages or wrap another
    runtime (its ``card``, if any, is checked and used as a model's); n: stack size,
    1..``MAX_N`` (None = the model's trained N, or the ONNX file's static N); tile/overlap: restore
    tiling in pixels (tile 1..``MAX_TILE``) (tile None = the ONNX file's static tile, else restore's default for N:
    on a CPU 256, 192 for N = 3..4, 160 above, 256 on a GPU; overlap None = restore's
    default, 32 px at most tile / 4); backend: ``"torch"`` or ``"onnx"`` (None = ``"onnx"`` when
    ``onnx_path`` is given, else ``"torch"``); onnx_path: an exported model (its sidecar names the
    model: a ``model`` given too must be that one; a file without its sidecar is refused, since a network
    of another task would otherwise run unchecked); device: torch device, for ONNX cpu, cuda or cuda:K (None = best
    available);
    exposure_target: a frame whose brightest 1% is darker than this is restored at the gain that brings it
    there, then divided back (:mod:`isp_collab.restore.exposure`; 0: off). keep_level: True (default): take the
    low frequencies out of the network's change (:func:`isp_collab.restore.detail.keep_local_level`), so the
    stage keeps the local level and colour; without it the shipped sharpening networks darken dark textured
    areas by 4-11% (the bundled DNG's grass) and shift their hue, and lens-b casts dark areas magenta on
    ``bridge.jpg``. The backend is built once and reused for every image of a batch; building it checks that the
    model was trained for this stage's ``task`` (the card's, or the ONNX sidecar's) and that n / tile
    / overlap fit it, so a bad setting stops a batch before any file is decoded; a tile smaller than the
    model's training patches (:attr:`trained_patch`, 32 px for the shipped models) is warned about
    (a :class:`~.io.PipelineWarning`), not refused.
    """

    task: ClassVar[str] = ""
    strategy: ClassVar[str] = "spread"
    default_model: ClassVar[str] = ""
    model: str | None = None
    n: int | None = None
    tile: int | None = None
    overlap: int | None = None
    backend: Literal["torch", "onnx"] | None = None
    onnx_path: str | None = None
    device: str | None = None
    exposure_target: float = EXPOSURE_TARGET
    keep_level: bool = True
    _runner: Any = field(default=None, init=False, repr=False, compare=False)
    _exported_tiling: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    # what the model says of itself: its card, or the sidecar's model block for an exported file
    _model_card: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.keep_level, bool):
            raise ValueError(f"{self.name}.keep_level must be true or false, got {self.keep_level!r}")
        if self.backend not in (None, "torch", "onnx"):
            raise ValueError(f"{self.name}.backend must be 'torch' or 'onnx', got {self.backend!r}")
        if self.backend == "torch" and self.onnx_path:
            raise ValueError(
                f"{self.name}: onnx_path {self.onnx_path} is set but backend is 'torch' (drop one of the two)"
            )
        for key in ("n", "tile", "overlap"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
                raise ValueError(f"{self.name}.{key} must be an integer, got {value!r}")
        if self.n is not None and not 1 <= self.n <= MAX_N:
            raise ValueError(f"{self.name}.n must be between 1 and {MAX_N}, got {self.n}")
        if self.tile is not None and not 1 <= self.tile <= MAX_TILE:
            raise ValueError(f"{self.name}.tile must be between 1 and {MAX_TILE}, got {self.tile}")
        if self.overlap is not None and self.tile is not None and not 0 <= self.overlap <= self.tile // 2:
            raise ValueError(f"{self.name}.overlap must be in [0, tile // 2 = {self.tile // 2}], got {self.overlap}")
        check_number(self.exposure_target, f"{self.name}.exposure_target")
        if not 0 <= self.exposure_target <= 1:
            raise ValueError(f"{self.name}.exposure_target must be in [0, 1] (0: off), got {self.exposure_target}")
        if self.overlap is not None and self.overlap < 0:
            raise ValueError(f"{self.name}.overlap must be >= 0, got {self.overlap}")
        if isinstance(self.model, (str, os.PathLike)):
            self.model = os.fspath(self.model)
        elif self.model is not None:
            if not (hasattr(self.model, "run") or hasattr(self.model, "forward")):
                raise ValueError(
                    f"{self.name}.model must be a model name or folder, a network or a backend, "
                    f"got {type(self.model).__name__}"
                )
            if self.onnx_path:
                raise ValueError(f"{self.name}: a model object and onnx_path {self.onnx_path} (pass one)")
        if self.device is not None and self.enabled:  # a stage that does not run may name another machine's device
            self._check_device()

    def _check_device(self) -> None:
        """A device this machine (for ONNX: this ONNX Runtime) cannot use is refused when the stage is made, so a
        config file's ``device`` is refused as the file is read, naming it: ``sharpen.device 'cuda' ...``."""
        from ..device import pick_device
        from ..restore.backends import onnx_providers

        try:
            onnx_providers(str(self.device)) if self.runtime == "onnx" else pick_device(str(self.device))
        except ValueError as e:  # their messages start "device 'cuda'..."
            message = str(e).splitlines()[0]
            raise ValueError(
                f"{self.name}.{message}" if message.startswith("device ") else f"{self.name}.device: {message}"
            ) from None

    @property
    def runtime(self) -> Literal["torch", "onnx"]:
        """The backend that runs: ``backend``, else ONNX when ``onnx_path`` is given, else PyTorch."""
        return self.backend or ("onnx" if self.onnx_path else "torch")

    def network(self) -> Backend:
        """The :class:`~isp_collab.restore.Backend` running the model (built on first use)."""
        if self._runner is None:
            from ..restore import OnnxBackend, TorchBackend

            if self.runtime == "onnx":
                if not self.onnx_path:
                    raise ValueError(f"{self.name}: backend 'onnx' needs onnx_path (an exported .onnx file)")
                if not Path(self.onnx_path).exists():  # said as such, not as a missing sidecar
                    raise ValueError(f"{self.onnx_path}: no such ONNX model file")
                data, sidecar = onnx_sidecar(self.onnx_path)
                if not sidecar.is_file():  # refused, not warned: a network of another task would run silently
                    raise ValueError(
                        f"{self.onnx_path}: no sidecar {sidecar.name} beside it, so the model's task cannot be "
                        f"checked against the {self.name} stage; put the {sidecar.name} that isp-collab export wrote "
                        f'with it there (or, for an ONNX file from elsewhere, one with {{"model": {{"task": '
                        f'"{self.task}"}}}})'
                    )
                exported = data.get("model") if isinstance(data.get("model"), dict) else {}
                self._check_task(exported.get("task"), self.onnx_path, f" (task from {sidecar.name})")
                self._check_exported_model(exported.get("name"), sidecar)
                recorded = data.get("file_sha256")  # the file the sidecar was written for (another precision?)
                if isinstance(recorded, str):
                    from ..hashing import file_sha256

                    if recorded != file_sha256(Path(self.onnx_path)):
                        raise ValueError(
                            f"{sidecar}: written for another file than {self.onnx_path} (its file_sha256 differs: "
                            "another precision or export of the model?); use that file's own sidecar"
                        )
                runner = OnnxBackend(self.onnx_path, device=self.device)
                tiling = data.get("tiling")
                self._exported_tiling = tiling if isinstance(tiling, dict) else {}
                self._model_card = exported
            else:
                from ..models import load_model
                from ..models.weights import CARD_FILE, resolve_model_dir

                model = self.model if self.model is not None else self.default_model
                if isinstance(model, str):
                    net = load_model(model)
                    self._check_task((net.card or {}).get("task"), resolve_model_dir(model) / CARD_FILE)
                    self._model_card = dict(net.card or {})
                    runner = TorchBackend(net, self.device)
                else:  # a network or a backend given from Python: its card, or an ONNX backend's sidecar
                    if hasattr(model, "run") and (self.device is not None or self.backend is not None):
                        raise ValueError(
                            f"{self.name}: {self._model_name} already runs somewhere: device and backend cannot "
                            "change it (drop them, or give the network or a model name)"
                        )
                    runner = model if hasattr(model, "run") else TorchBackend(model, self.device)
                    self._model_card = dict(model_card(model, runner))
                    self._check_task(self._model_card.get("task"), self._model_name)
                    if str(getattr(runner, "path", "")).lower().endswith(".onnx"):
                        tiling = onnx_sidecar(runner.path)[0].get("tiling")
                        self._exported_tiling = tiling if isinstance(tiling, dict) else {}
            # align matters to stacks only: an N=1 model was trained on single patches, never flipped (its recipe's
            # align = false changed nothing), and its tiles are restored one by one
            if (
                self.task == "lens"
                and self._model_card.get("align") is False
                and self._model_card.get("n_trained") != 1
            ):
                raise ValueError(
                    f"{self._model_name}: trained on mirror stacks left unflipped (task.align = false), "
                    "but the lens stage flips every mirror tile into one orientation; retrain it with align = true"
                )
            self._warn_if_below_input()
            self._check_fit(runner)
            self._runner = runner
        return self._runner

    def _warn_if_below_input(self) -> None:
        """A model whose own validation (its card's, or its ONNX sidecar's) does not beat the blurry input is run,
        since the user asked for it, but said: a short or failed training run ships such weights."""
        val = self._model_card.get("validation")
        if not isinstance(val, dict):
            return
        restored, blurry = val.get("mean_psnr"), val.get("mean_blurry")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (restored, blurry)) and not (
            restored > blurry
        ):
            warnings.warn(
                f"{self._model_name}: its validation ({restored:.2f} dB) does not "
                f"beat the blurry input ({blurry:.2f} dB): this {self.name} network may do more harm than good "
                "(train it longer, or check its recipe)",
                PipelineWarning,
                stacklevel=3,
            )

    @property
    def _model_name(self) -> str:
        """The model as messages name it: the ONNX file, the name or folder, or what was given from Python."""
        if self.onnx_path or isinstance(self.model, str):
            return str(self.onnx_path or self.model)
        return f"the {type(self.model).__name__} given as model" if self.model is not None else self.default_model

    def _check_task(self, task: Any, source: str | os.PathLike, note: str = "") -> None:
        """Refuse a model trained for another task (``task`` None: unknown, accepted)."""
        if task is None or not self.task:
            return
        if not (str(task) == self.task or str(task).startswith(f"{self.task}-")):
            raise ValueError(
                f"{source}: a {task!r} model{note} cannot run the {self.name} stage (it needs a {self.task!r} model)"
            )

    def _check_exported_model(self, exported: Any, sidecar: Path) -> None:
        """A ``model`` asked for beside an ONNX file must be the one the file was exported from."""
        if self.model is None or exported is None or Path(self.model).name == str(exported):
            return
        raise ValueError(
            f"{self.onnx_path}: exported from {exported!r} (see {sidecar.name}), not the model {self.model!r} "
            "asked for; the ONNX file is the network that runs (drop the model or export it)"
        )

    def _planned(self, runner: Any) -> tuple[int, int, bool]:
        """(n, tile, whether the tile is restore's default) as :func:`restore` will run this stage's network."""
        from ..restore.api import default_n, default_tile, device_type

        n = self.n or default_n(self.model, runner, warn=False)  # (a static N first; restore says it, once)
        if self.tile or getattr(runner, "tile", None):
            return n, self.tile or runner.tile, False
        multiple = int(getattr(runner, "multiple", 1) or 1)
        return n, default_tile(n, multiple, device_type(runner)), True

    def tiling(self) -> tuple[int, int, int]:
        """(n, tile, overlap) that :func:`restore` lays out for this stage (the network is built, and checked,
        first): what ``isp-collab gather --model`` draws. n before the cap at an image's tile count."""
        from ..restore.tiling import default_overlap

        runner = self.network()
        n, tile, _ = self._planned(runner)
        overlap = self._overlap()
        return n, tile, default_overlap(tile) if overlap is None else overlap

    def _check_fit(self, runner: Any) -> None:
        """n / tile / overlap against what the loaded network accepts (as :func:`restore` would, per image)."""
        static_n, static_tile = getattr(runner, "n", None), getattr(runner, "tile", None)
        if static_n and self.n is not None and self.n != static_n:
            raise ValueError(f"{self.name}.n: the model runs stacks of N={static_n} only (static shape), got {self.n}")
        if static_tile and self.tile is not None and self.tile != static_tile:
            raise ValueError(
                f"{self.name}.tile: the model runs {static_tile}x{static_tile} tiles only (static shape), got {self.tile}"
            )
        n, tile, defaulted = self._planned(runner)
        multiple = int(getattr(runner, "multiple", 1) or 1)
        if tile % multiple:
            raise ValueError(f"{self.name}.tile must be a multiple of {multiple} (2**depth of the network), got {tile}")
        if self.overlap is not None and self.overlap > tile // 2:
            why = f", the default tile for N={n}" if defaulted else ""
            raise ValueError(
                f"{self.name}.overlap must be in [0, tile // 2 = {tile // 2}] (tile {tile}{why}), got {self.overlap}"
            )
        patch = self.trained_patch
        if patch and tile < patch:
            # Warned, not refused: the network runs on any multiple of 2**depth, and small tiles have their uses
            # (latency and memory experiments); but a tile smaller than every patch the network saw gives it too
            # little context, and its per-tile result shows as a grid of blocks (--tile 8 on the shipped models).
            warnings.warn(
                f"{self.name}.tile {tile} is smaller than the {patch}-px patches the model was trained on: "
                f"expect a visible grid of tiles (use {patch} or more)",
                PipelineWarning,
                stacklevel=2,
            )

    @property
    def trained_patch(self) -> int | None:
        """Side of the training patches, from the model card (``patch``) or the ONNX sidecar's model block
        (``training.patch``); None when the model does not say (then no tile is warned about)."""
        info = self._model_card
        training = info.get("training") if isinstance(info.get("training"), dict) else {}
        patch = info.get("patch", training.get("patch"))
        return patch if isinstance(patch, int) and not isinstance(patch, bool) and patch > 0 else None

    def restore_kwargs(self, frame: Frame) -> dict[str, Any]:
        """Tiling for :func:`restore`. An exported file is tiled as its sidecar says (``overlap`` unless
        set here, ``strategy``), as ``export/consume_onnx.py`` does, so one file gives one image."""
        self.network()  # reads the sidecar of an exported file
        exported = self._exported_tiling
        strategy = exported.get("strategy") if exported.get("strategy") in STRATEGIES else self.strategy
        kw: dict[str, Any] = dict(n=self.n, strategy=strategy, tile=self.tile, exposure_target=self.exposure_target)
        overlap = self._overlap()
        if overlap is not None:
            kw["overlap"] = overlap  # else restore's default_overlap of the tile it uses
        return kw

    def _overlap(self) -> int | None:
        """The overlap set here, else an exported file's sidecar ``tiling.overlap``, else None (restore's default)."""
        overlap = self.overlap if self.overlap is not None else self._exported_tiling.get("overlap")
        return overlap if isinstance(overlap, int) and not isinstance(overlap, bool) else None

    def __call__(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """Run the stage (see the class); ValueError when ``image`` is not the size ``frame`` says."""
        if self.enabled and isinstance(image, np.ndarray) and image.shape[:2] != (frame.height, frame.width):
            raise ValueError(  # tiles and the lens centre are laid out on the frame's size
                f"{self.name}: the image is {image.shape[1]}x{image.shape[0]} but its frame says "
                f"{frame.width}x{frame.height} (make the frame for this image: Frame.for_image(image))"
            )
        return super().__call__(image, frame)

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """The network's output over the whole image, tiled as :meth:`restore_kwargs` says."""
        from ..restore import restore

        out = restore(image, self.network(), **self.restore_kwargs(frame))
        return np.ascontiguousarray(out, dtype=np.float32)


@dataclass
class Sharpen(CollaborativeStage):
    """Blind sharpening with a collaborative network; ``spread`` stacks (tiles far apart share one blur).

    detail: ``"luma"`` (default) keeps the network's luminance change only (see
    :func:`isp_collab.restore.detail.transfer_luma_detail`) — on the real Blackmagic DNG the shipped models' per-channel output
    put green/magenta fringes on thin dark branches once white balance scaled R and B by ~2;
    ``"rgb"`` keeps the network's three channels as they are.
    keep_level (both stages, see :class:`CollaborativeStage`) comes after ``detail``.
    strength: how much of the network's change is kept, ``input + strength * (restored - input)``: 1 (default)
    is the network's sharpening, 0 the input, up to 2; the tuning knob of a sharpening stage (e.g. less on
    noisy frames). Order: network, ``detail``, ``keep_level``, ``strength``.
    """

    name: ClassVar[str] = "sharpen"
    task: ClassVar[str] = "sharpen"
    strategy: ClassVar[str] = "spread"
    default_model: ClassVar[str] = "sharpen-unet-tx-n4"
    detail: Detail = "luma"
    strength: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.detail not in DETAILS:
            raise ValueError(f"sharpen.detail must be 'luma' or 'rgb', got {self.detail!r}")
        check_number(self.strength, "sharpen.strength")
        if not 0 <= self.strength <= 2:  # NaN fails too
            raise ValueError(f"sharpen.strength must be in [0, 2] (1: the network's sharpening), got {self.strength}")

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """The sharpened image: network, ``detail``, ``keep_level``, ``strength``, in that order (see the class)."""
        if self.strength == 0:
            return image.copy()  # an output, not the caller's array
        out = super().apply(image, frame)
        out = out if self.detail == "rgb" else transfer_luma_detail(image, out, frame.wb_gains)
        if self.keep_level:
            out = keep_local_level(image, out)
        if self.strength != 1:
            out = image + np.float32(self.strength) * (out - image)
        return np.ascontiguousarray(out, dtype=np.float32)
