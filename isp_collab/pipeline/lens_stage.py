"""The lens-correction stage: :class:`LensCorrect` runs a lens model on mirror stacks about the optical centre
(:class:`~.collaborative.CollaborativeStage`), on (H, W, 3) float32 linear camera RGB."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..restore.detail import keep_local_level
from ..restore.model_card import center_in_pixels, trained_center
from .collaborative import LENS_MODEL, CollaborativeStage
from .frame import Frame, orient_point
from .io import PipelineWarning


@dataclass
class LensCorrect(CollaborativeStage):
    """Lens-aberration correction; ``mirror`` stacks about the optical centre: ``center`` (x, y) in pixels, else
    the frame's, else the one the model was trained with (its card's ``optical_center``, fractions of the
    width and height: a calibration's off-centre axis), else the frame centre."""

    name: ClassVar[str] = "lens"
    task: ClassVar[str] = "lens"
    strategy: ClassVar[str] = "mirror"
    default_model: ClassVar[str] = LENS_MODEL
    center: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.center is not None:
            c = self.center
            if isinstance(c, (str, bytes)) or not hasattr(c, "__len__") or len(c) != 2:
                raise ValueError(f"lens.center must be 2 numbers (x, y), got {c!r}")
            if any(isinstance(v, bool) or not isinstance(v, (int, float, np.number)) for v in c):
                raise ValueError(f"lens.center must be 2 numbers (x, y), got {c!r}")
            self.center = (float(c[0]), float(c[1]))

    def restore_kwargs(self, frame: Frame) -> dict[str, Any]:
        """The shared tiling, plus the optical centre (x, y pixels) for mirror stacks; warns when the frame is not
        the size of the calibration the model was trained on."""
        kw = super().restore_kwargs(frame)
        if kw["strategy"] == "mirror":  # an export for another gathering has no centre (it is warned of at export)
            kw["center"] = self._optical_center(frame)
        self._check_lens_frame(frame)
        return kw

    def _check_lens_frame(self, frame: Frame) -> None:
        """A model trained on a calibrated lens knows its PSFs in the calibration frame's pixels (its card's
        ``lens_frame``, H x W): a frame of another size or shape (a crop, a resized or other camera's image) runs,
        but is said, since the blur it was trained to undo is not this frame's."""
        cal = self._model_card.get("lens_frame")
        if not (
            isinstance(cal, (list, tuple))
            and len(cal) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in cal)
        ):
            return
        h, w = (frame.width, frame.height) if frame.turned in (5, 6, 7, 8) else (frame.height, frame.width)
        if abs(h / cal[0] - 1) <= 0.02 and abs(w / cal[1] - 1) <= 0.02:  # in the sensor's orientation
            return
        warnings.warn(
            f"{frame.source}: the lens model {self._model_name} was trained on a "
            f"calibration of {cal[0]}x{cal[1]} (H x W) frames, and this frame is {h}x{w} (H x W, sensor orientation): "
            "its PSFs (in pixels) and optical centre are the calibration frame's, so the correction may be wrong; "
            "resize the frame to the calibration's size, or train on a calibration of this camera's frame",
            PipelineWarning,
            stacklevel=3,
        )

    def apply(self, image: np.ndarray, frame: Frame) -> np.ndarray:
        """The corrected image (the network's output, its local level kept with ``keep_level``)."""
        out = super().apply(image, frame)
        return keep_local_level(image, out) if self.keep_level else out

    def _optical_center(self, frame: Frame) -> tuple[float, float]:
        if self.center is not None:
            return tuple(self.center)
        trained = trained_center(self._model_card)
        if frame.optical_center is None and trained is not None:
            fx, fy = trained
            if frame.turned != 1:  # an image turned upright at decode: the sensor's point, turned with it
                fy, fx = orient_point(fy, fx, 2, 2, frame.turned)  # on the unit square
            return center_in_pixels((fx, fy), frame.width, frame.height)
        return frame.center
