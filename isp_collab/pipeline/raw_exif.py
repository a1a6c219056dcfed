"""The camera, date and exposure tags of a TIFF-based RAW file, as an EXIF block for the outputs.

LibRaw (rawpy) does not expose a file's EXIF; DNG, KDC, NEF, CR2, ARW... are TIFF-structured, so tifffile
reads their tags and Pillow writes the block. Other RAWs (CR3, RAF...) carry none.
"""

from __future__ import annotations

import os

from .exif_text import TextBytes
from .tiff_log import quiet_tifffile

# What a RAW file's TIFF tags carry to the outputs: the camera, the software, the date and the exposure.
_IFD0_TAGS = {"Make": 271, "Model": 272, "Software": 305, "DateTime": 306, "Artist": 315, "Copyright": 33432}
EXPOSURE_TAGS = {
    "ExposureTime": 33434,
    "FNumber": 33437,
    "ISOSpeedRatings": 34855,
    "DateTimeOriginal": 36867,
    "ExposureBiasValue": 37380,
    "FocalLength": 37386,
    "LensModel": 42036,
}


_RATIONAL_TAGS = {"ExposureTime", "FNumber", "ExposureBiasValue", "FocalLength"}


def raw_exif(path: str | os.PathLike) -> bytes | None:
    """The camera and exposure tags of a TIFF-based RAW file (DNG, KDC, NEF, CR2, ARW...) as an EXIF block
    (TIFF-structured bytes, orientation 1: the pixels are turned upright at decode), for the outputs.

    Only the tags in ``_IFD0_TAGS`` / ``EXPOSURE_TAGS`` are carried (a DNG's ``UniqueCameraModel`` stands in for a
    missing ``Model``); None for a file that is not TIFF-structured (CR3, RAF...) or has none of them.
    """
    import tifffile
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational

    def value(v: object, rational: bool = False) -> object:
        if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) for x in v) and rational:
            return IFDRational(v[0], v[1]) if v[1] else None
        if isinstance(v, tuple) and v and isinstance(v[0], int) and not rational:  # a list of shorts: ISO
            return v[0]
        if isinstance(v, bytes):  # an IFD0 text tag's own bytes: UTF-8, else a Windows / Latin-1 code page
            data = v.split(b"\x00")[0]
            try:
                v = data.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    v = data.decode("cp1252")
                except UnicodeDecodeError:
                    v = data.decode("latin-1")
        if isinstance(v, str):  # (a sub-IFD's text, as tifffile decoded it: UTF-8, else cp1252) written as UTF-8
            text = v.split("\x00")[0].strip()
            return (text if text.isascii() else TextBytes.of(text.encode("utf-8"))) or None
        return v if isinstance(v, (int, float)) else None

    def raw(tf: tifffile.TiffFile, tag: tifffile.TiffTag) -> object:
        """A tag's value; a text tag's bytes as the file has them (tifffile decodes the whole field, text after a
        NUL included, and falls back to cp1252 where that is not UTF-8, or gives up)."""
        if tag.dtype != 2:  # not ASCII
            return tag.value
        tf.filehandle.seek(tag.valueoffset)
        return tf.filehandle.read(tag.count)

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tf:
            tags = tf.pages[0].tags
            ifd0 = {name: raw(tf, tags[name]) for name in _IFD0_TAGS if name in tags}
            if "Model" not in ifd0 and "UniqueCameraModel" in tags:
                ifd0["Model"] = raw(tf, tags["UniqueCameraModel"])
            sub = tags["ExifTag"].value if "ExifTag" in tags else {}
            sub = dict(sub) if isinstance(sub, dict) else {}
            for name in EXPOSURE_TAGS:  # DNG writers may put them in IFD0 itself
                if name not in sub and name in tags:
                    sub[name] = raw(tf, tags[name])
        exif = Image.Exif()
        for name, v in ifd0.items():
            if value(v) is not None:
                exif[_IFD0_TAGS[name]] = value(v)
        exposure = {tag: value(sub.get(name), name in _RATIONAL_TAGS) for name, tag in EXPOSURE_TAGS.items()}
        exposure = {tag: v for tag, v in exposure.items() if v is not None}
        if not len(exif) and not exposure:
            return None
        if exposure:
            exif.get_ifd(0x8769).update(exposure)
        exif[0x0112] = 1
        data = exif.tobytes()
        return data[6:] if data.startswith(b"Exif\x00\x00") else data  # the TIFF structure alone, as encode wants
    except Exception:  # not TIFF-structured, or a tag Pillow cannot write: the metadata is simply not carried
        return None
