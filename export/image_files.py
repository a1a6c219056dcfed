"""Image files for the ONNX consumer (numpy + OpenCV): read an image as linear RGB, write one back.

Part of the torch-free example beside ``consume_onnx.py`` (which imports it; nothing here imports isp_collab).
Linear ``.npy`` / float ``.tif`` in and out; 8/16-bit ``.png`` / ``.jpg`` / ``.tif`` sRGB-encoded, turned upright
by EXIF orientation on reading, written as ``isp-collab process`` writes them (JPEG quality 95, 4:4:4; grey
stays grey), atomically, never replacing a file without ``overwrite``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

NO_EXR = "the .exr format is not supported (OpenCV's wheels are built without OpenEXR): use .npy or a float .tif"


def reason(e: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


def check_image(image: np.ndarray, name: str | os.PathLike = "image") -> np.ndarray:
    """A finite float H x W x 3 image as float32 (as ``isp_collab.restore.api.as_float32_image``); ValueError naming ``name``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"{name}: must be a non-empty H x W x 3 image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name}: must be float linear RGB, got dtype {image.dtype} (convert and linearise first)")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image.sum(dtype=np.float64)):  # NaN / inf propagate through the sum
        raise ValueError(f"{name}: contains NaN or infinite values")
    return image


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 1e-12) ** (1 / 2.4) - 0.055).astype(np.float32)


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Send what C libraries print on file descriptor 2 to /dev/null for the block (Python's stderr is kept).

    The same fd juggling as ``isp_collab.native_stderr``, kept here on purpose: this file imports nothing from
    ``isp_collab`` (whose package import pulls in torch), so it runs with numpy, OpenCV and onnxruntime only."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to silence
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int, bool]:
    """-> (H x W x 3 float32 linear RGB, bit depth: 0 for float files, else 8 / 16 of the sRGB file, greyscale file).

    Image files are turned upright by their EXIF orientation; an alpha channel is dropped with a warning.
    """
    path = Path(path)
    if path.suffix.lower() == ".exr":
        raise ValueError(f"{path}: {NO_EXR}")
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not an image file (this example restores one file at a time)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    if path.suffix.lower() in RAW_SUFFIXES:  # before decoding: OpenCV reads the small JPEG/TIFF preview of some
        raise ValueError(f"{path}: a camera RAW file; this consumer reads PNG / JPEG / TIFF (use isp-collab process)")
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY":  # numpy would say it "contains pickled (object) data"
            raise ValueError(f"{path}: not a .npy file (no NumPy header; save the array with numpy.save)")
        try:
            image = np.load(path)  # allow_pickle=False: object arrays are refused
        except (OSError, ValueError, EOFError) as e:
            raise ValueError(f"{path}: cannot read the .npy file ({reason(e)})") from None
        return check_image(image, path), 0, False
    import cv2

    data = np.fromfile(path, dtype=np.uint8)  # imdecode, not imread: OpenCV 5's imread fails on rotated TIFFs
    # ANYDEPTH | ANYCOLOR: 8/16-bit or float as stored, 2-D when grey, alpha dropped, EXIF orientation applied
    with _c_stderr_silenced():  # libpng prints "libpng error: ..." for a truncated file; we report it in one line
        img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
        stored = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if img is not None else None  # as stored, with alpha
    if stored is None:
        raise ValueError(f"{path}: cannot decode the image (not a PNG / JPEG / TIFF, or corrupt)")
    channels = 1 if stored.ndim == 2 else stored.shape[2]
    grey = channels <= 2 or (data[:8].tobytes() == b"\x89PNG\r\n\x1a\n" and data[25] == 4)  # PNG grey + alpha
    if channels in (2, 4):
        print(f"consume_onnx: warning: {path}: the alpha channel is dropped", file=sys.stderr)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img[..., ::-1]  # BGR -> RGB
    if np.issubdtype(img.dtype, np.floating):
        return check_image(img, path), 0, False
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: unsupported sample type {img.dtype} (8/16-bit integers or float only)")
    depth = 16 if img.dtype == np.uint16 else 8
    if depth == 16 and _tiff_min_is_white(data):  # OpenCV inverts 8-bit MinIsWhite samples, not 16-bit ones
        img = np.subtract(65535, img, dtype=np.uint16)
    return srgb_to_linear(img.astype(np.float32) / (2**depth - 1)), depth, grey


def _tiff_min_is_white(data: np.ndarray) -> bool:
    """Whether the file bytes ``data`` are a TIFF whose first image is PhotometricInterpretation 0 (MinIsWhite)."""
    return _ifd0_integer(memoryview(data), 262) == 0


_INTEGER_TYPES = {3: (2, False), 8: (2, True), 4: (4, False), 9: (4, True)}  # SHORT, SSHORT, LONG, SLONG: bytes, signed


def _ifd0_integer(tiff: bytes | memoryview, tag: int) -> int | None:
    """The first value of integer ``tag`` (SHORT, SSHORT, LONG or SLONG, as OpenCV and Pillow read it) in the first
    IFD of the TIFF structure ``tiff`` (a TIFF file, or the payload of a JPEG's / PNG's EXIF block); None where it is
    absent, of another type, or the bytes are no classic TIFF."""
    if bytes(tiff[:4]) not in (b"II*\x00", b"MM\x00*"):
        return None
    order = "little" if bytes(tiff[:2]) == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return None
    for k in range(int.from_bytes(tiff[ifd : ifd + 2], order)):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            return None
        if int.from_bytes(entry[:2], order) == tag:  # one value fits the entry's 4 value bytes, first
            width, signed = _INTEGER_TYPES.get(int.from_bytes(entry[2:4], order), (0, False))
            return int.from_bytes(entry[8 : 8 + width], order, signed=signed) if width else None
    return None


def exif_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation (1..8) :func:`read_image` turns the file upright by (OpenCV's decoder does): tag 274
    of a TIFF's first IFD, of a JPEG's APP1 Exif block (the first one, before the scan) or of a PNG's eXIf chunk
    (anywhere before IEND); 1 for none, an invalid value, or a ``.npy``. A point of the sensor's frame (a lens's
    optical centre) moves with the picture: :func:`turn_fractions`."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return 1
    data = path.read_bytes()
    tiff = data if data[:4] in (b"II*\x00", b"MM\x00*") else b""
    if data[:2] == b"\xff\xd8":  # JPEG: the segments before the scan
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            if data[pos + 1] == 0xFF:  # a fill byte before the marker
                pos += 1
                continue
            if data[pos + 1] in (0xD9, 0xDA):
                break
            size = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if data[pos + 1] == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                tiff = data[pos + 10 : pos + 2 + size]
                break
            pos += 2 + size
    elif data[:8] == b"\x89PNG\r\n\x1a\n":  # PNG: every chunk up to IEND
        pos = 8
        while pos + 8 <= len(data) and data[pos + 4 : pos + 8] != b"IEND":
            size = int.from_bytes(data[pos : pos + 4], "big")
            if data[pos + 4 : pos + 8] == b"eXIf":
                tiff = data[pos + 8 : pos + 8 + size]
                break
            pos += 12 + size
    value = _ifd0_integer(tiff, 274)
    return value if value in range(1, 9) else 1


def turn_fractions(x: float, y: float, orientation: int) -> tuple[float, float]:
    """Where the point at fractions (``x``, ``y``) of a stored picture's width and height lies, in the same
    fractions, once the picture is turned upright by EXIF ``orientation`` (1..8): as ``isp-collab process`` turns
    a lens card's optical centre (``isp_collab.pipeline.frame.orient_point`` on the unit square)."""
    moves = {1: (x, y), 2: (1 - x, y), 3: (1 - x, 1 - y), 4: (x, 1 - y)}
    moves.update({5: (y, x), 6: (1 - y, x), 7: (1 - y, 1 - x), 8: (y, 1 - x)})
    return moves[orientation]


# camera RAW files (LibRaw's usual suffixes): refused by name before decoding, since OpenCV would decode the
# embedded thumbnail of some (a .kdc's 96x64 preview) and the consumer would restore that
# camera RAW suffixes (isp_collab.pipeline.io.RAW_EXTENSIONS, copied: this consumer imports no isp_collab)
RAW_SUFFIXES = {
    *(".3fr", ".arw", ".cap", ".cr2", ".cr3", ".crw", ".dcr", ".dcs", ".dng", ".erf", ".fff", ".gpr", ".iiq"),
    *(".k25", ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".ptx", ".raf", ".raw", ".rw2"),
    *(".rwl", ".sr2", ".srf", ".srw", ".x3f"),
}


OUTPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"}


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: .exr, a missing folder, an existing file."""
    path = Path(path)
    if path.suffix.lower() == ".exr":
        raise ValueError(f"{path}: {NO_EXR}")
    if path.suffix.lower() not in OUTPUT_SUFFIXES:  # what isp-collab process writes, and .npy
        raise ValueError(
            f"{path}: cannot write {path.suffix or 'a file without a suffix'} (use .png, .jpg, .tif or .npy)"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the output folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an output file")
    if path.exists() and not overwrite:
        raise ValueError(f"{path}: output exists (pass --overwrite to replace it)")
    return path


def write_image(
    path: str | os.PathLike, image: np.ndarray, depth: int = 8, overwrite: bool = False, grey: bool = False
) -> None:
    """Write linear RGB: ``.npy`` / ``.tif`` (with depth 0) as float; others sRGB-encoded 8/16-bit, one
    channel when ``grey`` (OpenCV's ``RGB2GRAY`` luma of the encoded image, as ``isp-collab process``).

    Atomic (encoded in memory, written to a temporary file beside ``path``, then renamed or hard-linked);
    an existing ``path`` is replaced only with ``overwrite``.
    """
    path = check_output(path, overwrite)
    ext = path.suffix.lower()
    if ext == ".npy":
        buf = io.BytesIO()
        np.save(buf, image.astype(np.float32))
        payload = buf.getvalue()
    else:
        import cv2

        if ext in (".tif", ".tiff") and depth == 0:
            data = image[..., ::-1].astype(np.float32)
        else:
            if depth == 16 and ext in (".jpg", ".jpeg"):  # said, as isp-collab process says it
                print(
                    f"consume_onnx: warning: {path}: JPEG holds 8-bit samples; the 16-bit input is written at 8 "
                    "bits (.png or .tif keep 16)",
                    file=sys.stderr,
                )
            depth = 16 if depth == 16 and ext in (".png", ".tif", ".tiff") else 8
            srgb = linear_to_srgb(image)
            srgb = cv2.cvtColor(srgb, cv2.COLOR_RGB2GRAY) if grey else srgb[..., ::-1]  # RGB -> grey / BGR
            data = np.round(srgb * (2**depth - 1)).astype(np.uint16 if depth == 16 else np.uint8)
        # JPEG as isp-collab process writes it: quality 95, full-resolution colour (4:4:4, not OpenCV's 4:2:0)
        jpeg = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        try:
            ok, encoded = cv2.imencode(ext, data, jpeg if ext in (".jpg", ".jpeg") else [])
        except cv2.error:
            ok = False
        if not ok:
            raise ValueError(f"{path}: cannot encode the image as {ext or 'an image (no extension)'}")
        payload = encoded.tobytes()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and never replaces a file that appeared meanwhile
            except FileExistsError:
                raise ValueError(f"{path}: output exists (pass --overwrite to replace it)") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
