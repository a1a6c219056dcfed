"""What an ordinary image says about its colours, against what the pipeline assumes (sRGB, no alpha).

The pipeline reads every PNG/JPEG/TIFF as sRGB-encoded and writes sRGB. An input that says otherwise is still
processed (as sRGB), with a :class:`~.io.PipelineWarning`: an alpha channel (dropped), an ICC profile that does
not map colours as sRGB does (judged by converting colours through it, not by its name: a "Linear sRGB" profile
is not sRGB), or, without a profile, an EXIF colour space other than sRGB (a camera's Adobe RGB mode).
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

# Pillow modes with an alpha channel ("LAB" has an "A" that is not one)
ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})

# A profile is taken as sRGB when no test colour moves by more than this many 8-bit levels through it (a
# re-issued sRGB profile: 0-1 level; gamma 2.2 or Display P3: 5-80 levels).
SRGB_TOLERANCE = 2

# EXIF ColorSpace (1 sRGB, 0xFFFF uncalibrated: Adobe RGB in a camera's DCF files) and the Interoperability IFD
COLOR_SPACE, INTEROP = 0xA001, 0xA005


def colour_caveats(im: Image.Image) -> list[str]:
    """Why an open Pillow image's colours will not come out as it meant them, each a clause for a warning
    ("the alpha channel is dropped ..."); empty for an sRGB image without alpha."""
    said = []
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        said.append("the alpha channel is dropped (transparent pixels become visible)")
    icc = im.info.get("icc_profile")
    if icc:
        if not is_srgb_profile(icc, grey=icc[16:20] == b"GRAY"):  # (a grey photo saved with its colour profile: RGB)
            said.append(
                f"embedded colour profile {profile_name(icc)} is not sRGB; the image is read as sRGB "
                "(convert it to sRGB first for correct colours)"
            )
    elif (space := _exif_colour_space(im)) not in (None, 1):
        what = "Adobe RGB" if _interop_index(im) == "R03" else "not sRGB (EXIF ColorSpace 'Uncalibrated')"
        said.append(
            f"its EXIF says its colours are {what} and it has no colour profile; the image is read as sRGB "
            "(convert it to sRGB first for correct colours)"
            if space == 0xFFFF
            else f"its EXIF colour space {space} is not sRGB; the image is read as sRGB"
        )
    return said


def profile_name(icc: bytes) -> str:
    """The description of an ICC profile, quoted; ``(unreadable)`` for one LittleCMS cannot parse."""
    try:
        from PIL import ImageCms

        return repr(ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(BytesIO(icc))).strip())
    except Exception:
        return "(unreadable)"


def is_srgb_profile(icc: bytes, grey: bool = False) -> bool:
    """Whether an ICC profile maps colours (a grey profile: grey levels) as sRGB does, within
    :data:`SRGB_TOLERANCE` 8-bit levels over a grid of test colours; False for one that cannot be read."""
    from PIL import Image, ImageCms

    levels = np.array([0, 16, 48, 96, 128, 160, 208, 255], np.uint8)
    if grey:
        test = levels.reshape(1, -1)
        expected = np.repeat(test[..., None], 3, axis=2)
    else:
        test = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
        expected = test
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        transform = ImageCms.buildTransform(
            source, ImageCms.createProfile("sRGB"), "L" if grey else "RGB", "RGB", ImageCms.Intent.RELATIVE_COLORIMETRIC
        )
        out = np.asarray(ImageCms.applyTransform(Image.fromarray(test), transform))
    except Exception:  # unreadable, or a profile of another colour space (CMYK...): not sRGB
        return False
    return int(np.abs(out.astype(np.int16) - expected.astype(np.int16)).max()) <= SRGB_TOLERANCE


def _exif_colour_space(im: Image.Image) -> int | None:
    try:
        exif = im.getexif()
        value = exif.get_ifd(0x8769).get(COLOR_SPACE) if 0x8769 in exif else None
    except Exception:
        return None
    return int(value) if isinstance(value, int) else None


def _interop_index(im: Image.Image) -> str | None:
    try:
        exif = im.getexif()
        value = exif.get_ifd(INTEROP).get(1) if 0x8769 in exif else None  # InteroperabilityIndex
    except Exception:
        return None
    return value.strip("\x00 ") if isinstance(value, str) else None
