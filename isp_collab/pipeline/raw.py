"""RAW decoding with LibRaw (rawpy): every Bayer format LibRaw reads (DNG, NEF, CR2/CR3, ARW, RAF, ORF, RW2, KDC...),
and LinearRaw DNGs (camera RGB already demosaicked, e.g. Apple ProRAW: (H, W, 3), no CFA pattern).

Only the undemosaicked sensor data and its metadata are taken from LibRaw; demosaicking, white
balance and colour are the pipeline's own stages. (A file without a colour matrix gets LibRaw's own
camera->sRGB matrix, fitted from two small LibRaw renderings: :func:`libraw_cam_to_srgb`.) Every failure is an :class:`InputError` whose
message is one line naming the file (LibRaw's own stderr chatter is captured into that line).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..native_stderr import capture_stderr
from .frame import CFAPattern, Frame, cfa_from_colors
from .io import DEFAULT_MAX_PIXELS, InputError, PipelineWarning, check_input_file, check_pixels
from .raw_exif import raw_exif
from .raw_layout import FLIP_TO_EXIF, RawLayout, check_tiff_extent

if TYPE_CHECKING:
    import rawpy

# sRGB (linear, D65) -> CIE XYZ, IEC 61966-2-1; used to turn LibRaw's XYZ->camera matrix into camera->sRGB.
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(512)
    if not head or b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _libraw_reason(err: Exception, messages: list[str], path: Path) -> str:
    """One human-readable reason from a rawpy exception and what LibRaw printed."""
    import rawpy

    said = [m.split(": ", 1)[1] if m.startswith(str(path)) and ": " in m else m for m in messages if m.strip()]
    said_text = "; ".join(dict.fromkeys(s.strip() for s in said))
    if "end of file" in said_text.lower():
        return "truncated or corrupt RAW file (LibRaw: unexpected end of file)"
    if isinstance(err, rawpy.LibRawFileUnsupportedError):
        return "not a RAW file LibRaw can read (unsupported format or corrupt header)"
    if isinstance(err, rawpy.LibRawIOError):
        return "cannot read as RAW: not a RAW file, or a corrupt one (LibRaw: input/output error)"
    if isinstance(err, rawpy.LibRawTooBigError):
        return "image too big for LibRaw"
    if isinstance(err, (rawpy.LibRawUnsufficientMemoryError, rawpy.LibRawMemPoolOverflowError)):
        return "out of memory while decoding the RAW file"
    if isinstance(err, rawpy.LibRawDataError):
        return f"corrupt RAW data (LibRaw: {said_text or 'data error'})"
    detail = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else str(err)
    return f"cannot decode RAW file (LibRaw: {said_text or detail or err.__class__.__name__})"


def cam_to_srgb_from_xyz(cam_xyz: np.ndarray) -> np.ndarray:
    """Camera->sRGB for white-balanced data from an XYZ->camera matrix (dcraw's ``cam_xyz_coeff``).

    cam_xyz: (3, 3) XYZ(D65) -> camera RGB. Rows of camera<-sRGB are normalised so that sRGB
    white maps to camera white (white balance is applied separately), then inverted.
    """
    cam_rgb = cam_xyz @ SRGB_TO_XYZ
    cam_rgb = cam_rgb / cam_rgb.sum(axis=1, keepdims=True)
    return np.linalg.inv(cam_rgb)


def _wb_gains(raw: rawpy.RawPy, stated: bool = False) -> tuple[float, float, float] | None:
    """As-shot (R, G, B) gains with G = 1, or None when the file has none: LibRaw's all-equal placeholder (the Kodak
    DC50 KDC: 1, 1, 1, 1), unless the file ``stated`` them (a DNG's AsShotNeutral 1, 1, 1: camera RGB already
    balanced; read as "none", gray world cast a grey of 168 to [170, 168, 175])."""
    cam = [float(x) for x in raw.camera_whitebalance]
    r, g, b = cam[0], cam[1], cam[2]  # cam[3] is G2, often 0 meaning "same as G"
    if min(r, g, b) <= 0 or not all(map(math.isfinite, (r, g, b))) or (r == g == b and not stated):
        return None
    return (r / g, 1.0, b / g)


# The fit of LibRaw's camera->sRGB matrix (see :func:`fit_cam_to_srgb`): pixels used, and what it must meet.
_FIT_SAMPLES = 20_000  # at most, evenly spaced over the usable pixels
_FIT_MIN_SAMPLES = 1_000
_FIT_MAX_COND = 1e3  # condition number of the samples, columns scaled to unit norm (natural scenes: 50-100)
_FIT_MAX_RESIDUAL = 1e-3  # RMS residual / RMS of the sRGB values (an exact 3x3 map leaves ~4e-5: rounding)


def fit_cam_to_srgb(cam: np.ndarray, srgb: np.ndarray) -> np.ndarray | None:
    """The (3, 3) matrix M with ``srgb = M @ cam`` per pixel, from two 16-bit renderings of one frame.

    cam, srgb: (H, W, 3) uint16, LibRaw's linear renderings of the same frame with
    ``output_color`` raw and sRGB (LibRaw computes the second from the first with its camera->sRGB
    matrix ``rgb_cam``, then truncates to integers and clips at 0 and 65535). Pixels with a clipped or
    near-black channel are left out. None when the fit cannot be trusted: too few usable pixels,
    samples too close to one colour to separate the channels (ill-conditioned), or a residual no
    3x3 matrix would leave.
    """
    x = cam.reshape(-1, 3)
    y = srgb.reshape(-1, 3)
    ok = np.ones(x.shape[0], dtype=bool)
    for c in range(3):  # channel by channel: min/max over a trailing axis of 3 is slow in numpy
        ok &= (x[:, c] >= 0.01 * 65535) & (x[:, c] <= 0.98 * 65535) & (y[:, c] > 0) & (y[:, c] < 65535)
    usable = np.flatnonzero(ok)
    if usable.size < _FIT_MIN_SAMPLES:
        return None
    pick = usable[:: -(-usable.size // _FIT_SAMPLES)]
    xs = x[pick].astype(np.float64)
    ys = y[pick].astype(np.float64) + 0.5  # LibRaw truncates its sRGB values: 0.5 low on average
    gram = xs.T @ xs  # least squares by the normal equations: 3x3, well within double precision at cond <= 1e3
    norms = np.sqrt(np.diag(gram))
    if not np.all(norms > 0) or np.sqrt(np.linalg.cond(gram / np.outer(norms, norms))) > _FIT_MAX_COND:
        return None
    m = np.linalg.solve(gram, xs.T @ ys)
    residual = np.sqrt(np.mean((xs @ m - ys) ** 2) / np.mean(ys**2))
    if not (np.all(np.isfinite(m)) and residual <= _FIT_MAX_RESIDUAL):
        return None
    return m.T


def libraw_cam_to_srgb(raw: rawpy.RawPy) -> np.ndarray | None:
    """LibRaw's own camera->sRGB matrix (``rgb_cam``, which rawpy does not expose), or None.

    Fitted (:func:`fit_cam_to_srgb`) on two half-size renderings of the frame (no demosaicking, unit
    white balance, linear, 16 bits): camera RGB and LibRaw's sRGB. For files whose colour data LibRaw
    keeps in its own tables rather than in the file (the Kodak DC50's KDC). None when the fit is not
    trustworthy, when it is the identity (LibRaw has no matrix either), or when LibRaw fails.
    """
    import rawpy

    common = dict(
        half_size=True,
        user_wb=[1.0, 1.0, 1.0, 1.0],
        use_camera_wb=False,
        use_auto_wb=False,
        gamma=(1.0, 1.0),
        no_auto_bright=True,
        output_bps=16,
    )
    try:
        cam = raw.postprocess(output_color=rawpy.ColorSpace.raw, **common)
        srgb = raw.postprocess(output_color=rawpy.ColorSpace.sRGB, **common)
    except (rawpy.LibRawError, MemoryError):
        return None
    if cam.shape != srgb.shape or cam.ndim != 3 or cam.shape[2] != 3:
        return None
    m = fit_cam_to_srgb(cam, srgb)
    if m is None or np.allclose(m, np.eye(3), atol=1e-3):
        return None
    return m


def _cam_to_srgb(raw: rawpy.RawPy, path: Path) -> tuple[tuple[float, float, float], ...] | None:
    cm = np.asarray(raw.color_matrix, dtype=np.float64)[:3, :3]
    if np.any(cm) and np.all(np.isfinite(cm)):
        if abs(np.linalg.det(cm)) < 1e-6:  # a broken ColorMatrix: every colour onto one line (a red image)
            warnings.warn(
                f"{path}: the camera->sRGB matrix LibRaw derives from the file's colour matrix is singular (rows "
                f"{np.round(cm, 3).tolist()}); camera RGB is used as sRGB (identity)",
                PipelineWarning,
                stacklevel=2,
            )
            return None
        return tuple(tuple(float(v) for v in row) for row in cm)
    xyz = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3]  # zero for DNGs: LibRaw fills color_matrix
    if np.any(xyz) and abs(np.linalg.det(xyz)) > 1e-12:
        return tuple(tuple(float(v) for v in row) for row in cam_to_srgb_from_xyz(xyz))
    fitted = libraw_cam_to_srgb(raw)  # LibRaw may still know the camera (a built-in table)
    if fitted is not None:
        warnings.warn(
            f"{path}: no colour matrix in the file; using LibRaw's camera->sRGB matrix for it, "
            "recovered from LibRaw's rendering",
            PipelineWarning,
            stacklevel=2,
        )
        return tuple(tuple(float(v) for v in row) for row in fitted)
    warnings.warn(
        f"{path}: no colour matrix in the file; camera RGB is used as sRGB (identity)", PipelineWarning, stacklevel=2
    )
    return None


def _check_strips(layout: RawLayout, path: Path) -> None:
    """Refuse a DNG whose raw image cannot be what its tags say (:attr:`RawLayout.damage`), and a lossless-JPEG DNG
    stored in several strips: LibRaw decodes only the first (the rest came out black, or stale data from an earlier
    file, with no error)."""
    if layout.damage:
        raise InputError(f"{path}: a damaged RAW file: {layout.damage}")
    if layout.ljpeg_strips > 1:
        raise InputError(
            f"{path}: a lossless-JPEG DNG in {layout.ljpeg_strips} strips, of which LibRaw decodes only the first; "
            "convert it with Adobe DNG Converter (tiled) or write it uncompressed"
        )


def _check_ljpeg_components(layout: RawLayout, path: Path) -> None:
    """Refuse a lossless-JPEG LinearRaw DNG whose JPEG streams hold another number of components than its samples
    per pixel (legal: the DNG spec asks only that the sample counts match). LibRaw reads each JPEG row as that many
    pixels of SamplesPerPixel samples: one component at 3x the width came out with two rows in three black and the
    picture squashed into its top third, with no error. (The Adobe DNG SDK writes SamplesPerPixel components.)"""
    if layout.samples > 1 and layout.ljpeg_components and layout.ljpeg_components != layout.samples:
        raise InputError(
            f"{path}: a lossless-JPEG LinearRaw DNG whose JPEG streams hold {layout.ljpeg_components} component(s) "
            f"for its {layout.samples} samples per pixel, which LibRaw decodes wrong; convert it with Adobe DNG "
            "Converter or write it uncompressed"
        )


@dataclass(frozen=True)
class RawDecode:
    """Decode a RAW file to its Bayer mosaic and :class:`Frame` metadata.

    ``__call__(path) -> (mosaic, frame)``: mosaic (H, W) uint16 raw digital numbers exactly as
    stored (visible area, then the file's default crop when ``crop``); frame with the CFA pattern
    (from ``raw_colors_visible``), per-site black levels, white level, as-shot WB gains, the
    camera->sRGB matrix and the orientation to apply at the end. A LinearRaw DNG gives (H, W, 3) uint16 camera
    RGB instead, its frame no CFA pattern and the black levels per channel (R, G, B, G).
    """

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    crop: bool = True

    def __call__(self, path: str | os.PathLike) -> tuple[np.ndarray, Frame]:
        """Decode ``path`` (see the class); :class:`InputError` naming the file when LibRaw cannot."""
        import rawpy

        p = check_input_file(path)
        if _looks_like_text(p):
            raise InputError(f"{p}: a text file, not a RAW file")
        check_tiff_extent(p)
        messages: list[str] = []
        raw = None

        # LibRaw prints its errors on fd 2, which is the whole process's: captured only while LibRaw opens and
        # unpacks the file, not while this code warns; its words about this file ("PATH: ...") are ours to say,
        # other lines (another thread's log) are passed on.
        def others(line: str) -> bool:
            return not line.startswith(f"{p}:")

        try:
            try:
                with capture_stderr(messages, pass_on=others):
                    raw = rawpy.imread(str(p))
                check_pixels(p, raw.sizes.raw_height, raw.sizes.raw_width, self.max_pixels)  # before unpacking
                with capture_stderr(messages, pass_on=others):
                    raw.raw_image  # noqa: B018 - unpacks the sensor data
            except (rawpy.NotSupportedError, AttributeError) as e:  # no raw image LibRaw hands out
                raise InputError(f"{p}: not a Bayer RAW file ({e})") from None
            except rawpy.LibRawError as e:
                raise InputError(f"{p}: {_libraw_reason(e, messages, p)}") from None
            said = "; ".join(dict.fromkeys(m[len(f"{p}:") :].strip() for m in messages if not others(m)))
            if said:  # LibRaw complained and decoded all the same (a cut file it fills with zeros...): not silently
                warnings.warn(
                    f"{p}: LibRaw reported a problem and decoded the file all the same; check the picture ({said})",
                    PipelineWarning,
                    stacklevel=2,
                )
            try:
                return self._read(raw, p)
            except rawpy.LibRawError as e:
                raise InputError(f"{p}: {_libraw_reason(e, [], p)}") from None
        finally:
            if raw is not None:
                raw.close()

    def _read(self, raw: rawpy.RawPy, p: Path) -> tuple[np.ndarray, Frame]:
        import rawpy

        if _is_linear_raw(raw):
            return self._read_linear(raw, p)
        if raw.raw_type != rawpy.RawType.Flat or raw.num_colors != 3:
            raise InputError(f"{p}: not a Bayer mosaic (LibRaw raw type {raw.raw_type.name}, {raw.num_colors} colours)")
        sizes = raw.sizes
        layout = RawLayout.of(p)
        _check_strips(layout, p)
        window = layout.window(sizes, raw.raw_image.shape[:2], p, self.crop)
        if window is not None:
            mosaic, colors = raw.raw_image[window], raw.raw_colors[window]
        else:
            mosaic, colors = raw.raw_image_visible, raw.raw_colors_visible
        mosaic = np.array(mosaic, dtype=np.uint16, copy=True)  # owns its memory after the file closes
        try:
            pattern = cfa_from_colors(colors)
        except ValueError as e:
            raise InputError(f"{p}: {e}") from None
        per_channel = list(raw.black_level_per_channel)
        black = tuple(float(per_channel[int(c)]) for c in colors[:2, :2].ravel())
        origin = (window[0].start, window[1].start) if window is not None else (sizes.top_margin, sizes.left_margin)
        black = layout.site_blacks(*origin, sizes) or black  # (LibRaw's mapping is off at an odd active area)
        frame = _frame(raw, p, mosaic, pattern, black, layout)  # type: ignore[arg-type]
        return mosaic, frame

    def _read_linear(self, raw: rawpy.RawPy, p: Path) -> tuple[np.ndarray, Frame]:
        """A LinearRaw DNG (Apple ProRAW, a converter's linear output): (H, W, 3) camera RGB already demosaicked, with
        its black and white levels, white balance, colour matrix and default crop; no CFA pattern."""
        sizes = raw.sizes
        layout = RawLayout.of(p)
        _check_strips(layout, p)
        _check_ljpeg_components(layout, p)
        window = layout.window(sizes, raw.raw_image.shape[:2], p, self.crop)
        image = (raw.raw_image[window] if window is not None else raw.raw_image_visible)[..., :3]  # (4th plane: empty)
        image = np.array(image, dtype=np.uint16, copy=True)
        black = tuple(float(b) for b in list(raw.black_level_per_channel)[:4])  # R, G, B, G
        frame = _frame(raw, p, image, None, black, layout)  # type: ignore[arg-type]
        return image, frame


def _orientation(raw: rawpy.RawPy, layout: RawLayout, path: Path) -> int:
    """The EXIF orientation (1..8) to turn the picture upright: LibRaw's, or 1 (with a warning) for a DNG whose
    Orientation tag is none of 1..8 (LibRaw maps it through its low 3 bits: 0 turned the picture a quarter)."""
    if layout.orientation is not None and not 1 <= layout.orientation <= 8:
        warnings.warn(
            f"{path}: its Orientation tag {layout.orientation} is not a valid one (1..8); the picture is left as stored",
            PipelineWarning,
            stacklevel=3,
        )
        return 1
    return FLIP_TO_EXIF.get(int(raw.sizes.flip), 1)


def _frame(
    raw: rawpy.RawPy,
    p: Path,
    samples: np.ndarray,
    pattern: CFAPattern | None,
    black: tuple[float, float, float, float],
    layout: RawLayout,
) -> Frame:
    """The frame of decoded ``samples`` (a mosaic of CFA ``pattern``, or demosaicked RGB with ``pattern`` None, its
    ``black`` per channel; ``layout``: what the file's DNG tags say): the white level where the sensor clips, white
    balance, colour matrix, orientation, EXIF."""
    levels = black if pattern is not None else black[:3]
    white = float(raw.white_level)
    if white <= max(levels):
        raise InputError(f"{p}: white level {white:g} is not above the black level {max(levels):g}")
    white = saturation_level(samples, white, max(levels))
    gains = _wb_gains(raw, stated=layout.as_shot_neutral)
    return Frame(
        source=p,
        kind="raw",
        height=samples.shape[0],
        width=samples.shape[1],
        bit_depth=max(1, math.ceil(math.log2(white + 1))),
        cfa_pattern=pattern,
        black_level=black,
        white_level=white,
        wb_gains=gains,
        wb_source="as_shot" if gains else "none",
        cam_to_srgb=_cam_to_srgb(raw, p),
        orientation=_orientation(raw, layout, p),
        exif=raw_exif(p),
    )


def saturation_level(samples: np.ndarray, white: float, black: float) -> float:
    """Where the sensor really clips: the file's ``white`` level, or below it the value a clipped area piles up at.

    Many sensors saturate a little below the white level their files state (the demo DNG at 65472 of 65535; others
    several percent below). Normalised by the stated level, a clipped highlight then stays below 1 in green while
    the white balance lifts red and blue past it: blown whites come out pink. A clipped area is a spike: at least 16
    samples (and 2 in 100 000) at the largest value, within the top 15% of the range, and at least 4 times as many
    as at the next value present. A bright area that is not clipped tails off towards its largest value instead.
    """
    top = int(samples.max(initial=0))
    if not black + 0.85 * (white - black) <= top < white:
        return white
    bright = samples[samples >= black + 0.85 * (white - black)]  # (a small share of a frame, mostly)
    at_top = int(np.count_nonzero(bright == top))
    if at_top < max(16, 2e-5 * samples.size):
        return white
    below = bright < top
    if not below.any():
        return float(top)
    after = int(bright.max(where=below, initial=0))  # the next value present
    return float(top) if at_top >= 4 * int(np.count_nonzero(bright == after)) else white


def _is_linear_raw(raw: rawpy.RawPy) -> bool:
    """A demosaicked RAW: LibRaw's 3-colour "stack" (a LinearRaw DNG), not a Bayer mosaic."""
    import rawpy

    try:
        return raw.raw_type == rawpy.RawType.Stack and raw.num_colors == 3 and raw.raw_image_visible.ndim == 3
    except Exception:  # noqa: BLE001 - no raw image at all: the Bayer path says why
        return False
