"""Where a TIFF-based RAW file (DNG, NEF, CR2, ARW, KDC...) keeps its picture, read from its own tags with tifffile
where LibRaw's reading is not enough: a file cut short, the DNG default crop, the orientation, lossless-JPEG strips.

LibRaw's crop margins count from the full sensor frame while ``raw_image_visible`` starts at the active area, and
LibRaw reports no crop that spans a whole axis and rounds odd ones to even; so a DNG's ``DefaultCropOrigin`` /
``DefaultCropSize`` (relative to its ``ActiveArea``) are taken from the file, exactly. (An odd crop origin is fine:
the CFA pattern is read from the cropped colours.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .io import InputError
from .raw_damage import data_problem, tag_numbers
from .tiff_log import quiet_tifffile

if TYPE_CHECKING:
    import rawpy
    import tifffile

# LibRaw ``sizes.flip`` -> EXIF orientation: dcraw reads EXIF orientation o as flip "50132467"[o & 7]
FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

_CFA, _LINEAR_RAW = 32803, 34892  # PhotometricInterpretation of a colour filter array / a LinearRaw image
_DNG_VERSION, _CROP_ORIGIN, _CROP_SIZE, _ACTIVE_AREA = 50706, 50719, 50720, 50829
_BLACK_REPEAT, _BLACK, _BLACK_DELTA_H, _BLACK_DELTA_V = 50713, 50714, 50715, 50716
_AS_SHOT_NEUTRAL = 50728
_ORIENTATION = 274


@dataclass(frozen=True)
class RawLayout:
    """What a DNG's raw image directory says about where its picture is (None: not a DNG, or not said).

    crop: (top, left, height, width) of the default crop, relative to the active area; active: (top, left) of the
    active area in the stored frame, active_size its (height, width) when the file states one; ljpeg_strips: how many strips a lossless-JPEG raw image is stored in (LibRaw
    decodes only the first of several);
    black: the BlackLevel pattern (rows, cols, values row-major, the mean BlackLevelDeltaH + DeltaV added), which
    repeats from the active area's top-left corner;
    ljpeg_components / samples: the component count of the first lossless-JPEG strip or tile's frame header (0: not
    lossless JPEG, or not read) and the image's SamplesPerPixel (LibRaw decodes a multi-sample LinearRaw image right
    only when the two match); as_shot_neutral: whether the DNG states its white balance (AsShotNeutral); damage:
    why its raw image cannot be what its tags say (:func:`~.raw_damage.data_problem`), None if nothing is seen;
    orientation: the Orientation tag as the file states it (LibRaw maps an invalid one through its low 3 bits: 0
    turned the picture a quarter).
    """

    crop: tuple[int, int, int, int] | None = None
    active: tuple[int, int] = (0, 0)
    active_size: tuple[int, int] | None = None
    ljpeg_strips: int = 0
    black: tuple[int, int, tuple[float, ...]] | None = None
    ljpeg_components: int = 0
    samples: int = 1
    as_shot_neutral: bool = False
    damage: str | None = None
    orientation: int | None = None

    def site_blacks(self, top: int, left: int, sizes: rawpy.ImageSizes) -> tuple[float, float, float, float] | None:
        """The black level of the 2x2 sites of a mosaic whose top-left sample is the whole frame's (``top``,
        ``left``), from the file's BlackLevel pattern, where LibRaw's per-colour levels are wrong: a visible area
        that starts on another row or column parity than the active area (an odd ActiveArea origin) shifts LibRaw's
        mapping of the pattern onto the colours (a 2x2 pattern landed on the wrong sites: 98 levels off). None
        otherwise (LibRaw's levels are right)."""
        if self.black is None:
            return None
        rows, cols, values = self.black
        y, x = top - self.active[0], left - self.active[1]
        if (sizes.top_margin - self.active[0]) % 2 == 0 and (sizes.left_margin - self.active[1]) % 2 == 0:
            return None
        return tuple(values[((y + i) % rows) * cols + (x + j) % cols] for i in (0, 1) for j in (0, 1))  # type: ignore[return-value]

    @classmethod
    def of(cls, path: Path) -> RawLayout:
        """The layout of ``path``; an empty one for a file tifffile cannot read or that is not a DNG."""
        import tifffile

        try:
            with quiet_tifffile(), tifffile.TiffFile(path) as tif:
                if _DNG_VERSION not in tif.pages[0].tags:
                    return cls()
                pages = [page for page in _tiff_pages(tif.pages) if _is_main_raw(page)]
                if not pages:
                    return cls()
                page = max(pages, key=lambda pg: (pg.photometric == _CFA, int(pg.imagelength) * int(pg.imagewidth)))
                tags = page.tags
                area = tag_numbers(tags[_ACTIVE_AREA]) if _ACTIVE_AREA in tags else (0, 0)
                size = (round(area[2] - area[0]), round(area[3] - area[1])) if len(area) == 4 else None
                crop = None
                where = tags if _CROP_ORIGIN in tags else tif.pages[0].tags  # (some writers put them in IFD0)
                if _CROP_ORIGIN in where and _CROP_SIZE in where:
                    (x, y), (w, h) = tag_numbers(where[_CROP_ORIGIN]), tag_numbers(where[_CROP_SIZE])
                    crop = (round(y), round(x), round(h), round(w))
                strips = len(page.dataoffsets) if 273 in tags and page.compression == 7 else 0
                components = _ljpeg_components(tif.filehandle, page) if page.compression == 7 else 0
                return cls(
                    crop,
                    (round(area[0]), round(area[1])),
                    size,
                    strips,
                    _black_pattern(tags),
                    components,
                    int(page.samplesperpixel),
                    _AS_SHOT_NEUTRAL in tif.pages[0].tags,
                    data_problem(tif.filehandle, page),
                    int(tif.pages[0].tags[_ORIENTATION].value) if _ORIENTATION in tif.pages[0].tags else None,
                )
        except Exception:  # noqa: BLE001 - not a TIFF tifffile reads (CR3, RAF...), or a broken one: LibRaw decides
            return cls()

    def window(
        self, sizes: rawpy.ImageSizes, full: tuple[int, int], path: Path | None = None, crop: bool = True
    ) -> tuple[slice, slice] | None:
        """Where the picture is in LibRaw's whole ``raw_image`` (of shape ``full``), as (rows, cols) slices: the DNG's
        default crop (relative to its active area; with ``crop``), else its active area where LibRaw's visible area
        starts a row or column into it (an odd origin: LibRaw drops that row / column), else LibRaw's own crop
        (counted from the whole frame; with ``crop``); None: LibRaw's visible area as it is. A window outside the
        frame is not applied, with a :class:`~.io.PipelineWarning` naming ``path``."""
        own = True  # the file's own tags (a window outside the frame is said), or LibRaw's crop (quietly left)
        if crop and self.crop is not None:
            top, left, h, w = self.crop
            y0, x0 = self.active[0] + top, self.active[1] + left
        elif self.active_size is not None and (sizes.top_margin, sizes.left_margin) != self.active:
            (y0, x0), (h, w) = self.active, self.active_size
        elif crop and sizes.crop_width > 0 and sizes.crop_height > 0:
            y0, x0, h, w = sizes.crop_top_margin, sizes.crop_left_margin, sizes.crop_height, sizes.crop_width
            own = False
        else:
            return None
        if y0 < 0 or x0 < 0 or h < 1 or w < 1 or y0 + h > full[0] or x0 + w > full[1]:
            if not own:  # (LibRaw marks an unset inset crop 0xffff; some maker notes set it partly)
                return None
            import warnings

            from .io import PipelineWarning

            warnings.warn(
                f"{path}: the default crop or active area ({w}x{h} at x={x0}, y={y0}) lies outside the "
                f"{full[1]}x{full[0]} frame; not applied",
                PipelineWarning,
                stacklevel=2,
            )
            return None
        return slice(y0, y0 + h), slice(x0, x0 + w)


def _is_main_raw(page: tifffile.TiffPage) -> bool:
    """The main raw image of a DNG: a CFA or LinearRaw page that is not a preview, a reduced or an "enhanced" one
    (NewSubFileType 0; DNG 1.6 keeps an enhanced, demosaicked copy beside the raw, which LibRaw leaves alone)."""
    kind = page.tags[254].value if 254 in page.tags else 0
    return page.photometric in (_CFA, _LINEAR_RAW) and kind == 0


def _ljpeg_components(fh: tifffile.FileHandle, page: tifffile.TiffPage) -> int:
    """The component count (Nf) in the lossless-JPEG frame header (SOF3) of ``page``'s first strip or tile; 0 when
    none is found in its first 4 KiB (or it cannot be read: LibRaw decides)."""
    try:
        fh.seek(page.dataoffsets[0])
        data = fh.read(min(int(page.databytecounts[0]), 4096))
    except Exception:  # noqa: BLE001 - no or unreadable data: the layout's other facts still hold
        return 0
    if data[:2] != b"\xff\xd8":
        return 0
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xC3:
            return data[i + 9] if i + 9 < len(data) else 0
        if marker == 0xDA:  # start of scan: no frame header before it
            return 0
        i += 2 + length
    return 0


def _black_pattern(tags: tifffile.TiffTags) -> tuple[int, int, tuple[float, ...]] | None:
    """A one-sample-per-pixel DNG's BlackLevel pattern (rows, cols, values), with the mean of its per-column and
    per-row deltas added as LibRaw adds them; None without one or for a layout this does not read (LibRaw's
    levels are used then), a malformed tag included."""
    try:
        if _BLACK not in tags:
            return None
        rows, cols = (round(v) for v in tag_numbers(tags[_BLACK_REPEAT])) if _BLACK_REPEAT in tags else (1, 1)
        values = tag_numbers(tags[_BLACK])
        if rows < 1 or cols < 1 or len(values) != rows * cols:
            return None
        deltas = [tag_numbers(tags[t]) for t in (_BLACK_DELTA_H, _BLACK_DELTA_V) if t in tags]
        delta = sum(float(np.mean(d)) for d in deltas if d)
        pattern = tuple(v + delta for v in values)
        return (rows, cols, pattern) if all(np.isfinite(pattern)) else None
    except Exception:  # noqa: BLE001 - a malformed tag: LibRaw's levels
        return None


# IFDs read at most from one file (a DNG has a few; a camera's TIFF/EP RAW a dozen): past them it is taken as damaged
_MAX_IFDS = 1024


class IFDLoopError(ValueError):
    """A TIFF whose image directories point back to one already read (or are past count): a damaged file."""


def _tiff_pages(pages: Iterable[tifffile.TiffPage], seen: set[int] | None = None) -> Iterator[tifffile.TiffPage]:
    """Every IFD of a TIFF: the main chain and, recursively, the SubIFDs (where DNGs keep the raw image). Raises
    :class:`IFDLoopError` at a directory read before: tifffile follows a next-IFD offset that points back forever
    (4 bytes changed in a DNG hung the reading, its memory growing past 3 GB)."""
    import tifffile

    seen = set() if seen is None else seen
    for page in pages:
        if page.offset in seen or len(seen) >= _MAX_IFDS:
            raise IFDLoopError(f"its image directories loop (the one at byte {page.offset:,} is reached again)")
        seen.add(page.offset)
        yield page
        if getattr(page, "subifds", None):
            yield from _tiff_pages(tifffile.TiffPages(page), seen)


def check_tiff_extent(p: Path) -> None:
    """Refuse a TIFF-based RAW (DNG, NEF, CR2, ARW, KDC, ...) cut short: its raw image's data, or an IFD
    it points to, lies past the end of the file.

    LibRaw opens such a file without an error and returns whatever its buffer held (zeros, or stale
    memory from an earlier decode). Only what the file states is checked: the largest image among the
    IFDs with explicit strip/tile byte counts (the raw data, not a preview), the SubIFD offsets and the
    next-IFD offsets of the main chain.
    Files tifffile cannot parse (CR3, RAF, ...) are left to LibRaw.
    """
    import tifffile

    size = p.stat().st_size
    try:  # tifffile logs every tag it cannot read in a cut header: none of it is shown
        with quiet_tifffile() as said, tifffile.TiffFile(p) as tif:
            pages = list(_tiff_pages(tif.pages))
            # a main-chain IFD past the end: tifffile logs "invalid page offset N" and stops the chain there
            chain = [int(m.group(1)) for m in map(re.compile(r"invalid page offset (\d+)").search, said) if m]
            subifds = [o for page in pages for o in (getattr(page, "subifds", None) or ())]
            beyond = [o for o in subifds + chain if o >= size]
            counted = [page for page in pages if 279 in page.tags or 325 in page.tags]  # Strip/TileByteCounts
            raw = max(counted, key=lambda page: int(np.prod(page.shape)), default=None)
            end = (
                max((o + c for o, c in zip(raw.dataoffsets, raw.databytecounts, strict=False)), default=0) if raw else 0
            )
    except IFDLoopError as e:
        raise InputError(f"{p}: a damaged RAW file: {e}") from None
    except Exception:  # noqa: BLE001 - not a TIFF (or not one tifffile reads): LibRaw decides
        return
    if beyond:
        raise InputError(
            f"{p}: truncated RAW file: an image directory at byte {min(beyond):,} is past its end ({size:,})"
        )
    if end > size:
        raise InputError(f"{p}: truncated RAW file: its image data runs to byte {end:,} but the file has {size:,}")
