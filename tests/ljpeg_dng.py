"""Minimal, self-contained DNG writer for RAW-decoding tests (CFA or LinearRaw; uncompressed or lossless JPEG;
one strip, several strips, or tiles), plus a known synthetic scene.

Lossless JPEG payloads come from libjpeg-turbo (``imagecodecs.jpeg8_encode(lossless=True)``), laid out the way the
Adobe DNG SDK writes them (dng_image_writer.cpp: CFA with a 2-wide repeat -> 2 "fake" components at half width;
LinearRaw -> SamplesPerPixel components at full tile width; edge tiles padded to the full tile size).
``ljpeg_layout="flat"`` instead writes ONE component at (width * samples): legal per the DNG spec ("only the total
sample counts need to match") but not what Adobe writes.

Writing one 128x96 DNG takes a few ms.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

H, W = 96, 128  # scene size (even: whole 2x2 CFA cells)
BLACK, WHITE = 256, 4095  # 12-bit data
# XYZ(D65) -> linear sRGB, so that LibRaw's camera->sRGB comes out as the identity (camera RGB == linear sRGB)
XYZ_TO_SRGB = np.linalg.inv(
    np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
)


def scene(h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) float64 linear camera RGB in [0, 1]: a 4x6 chart of flat patches over the top 3/4, a horizontal
    grey ramp 0 -> 1 in the bottom quarter. Deterministic."""
    rng = np.random.default_rng(1234)
    patches = rng.uniform(0.05, 0.9, (4, 6, 3))
    patches[0, :] = np.linspace(0.05, 0.9, 6)[:, None]  # first row: greys
    img = np.empty((h, w, 3))
    ch = h * 3 // 4
    ys = np.minimum(np.arange(ch) * 4 // ch, 3)
    xs = np.minimum(np.arange(w) * 6 // w, 5)
    img[:ch] = patches[ys][:, xs]
    img[ch:] = np.linspace(0.0, 1.0, w)[None, :, None]
    return img


def to_dn(rgb: np.ndarray) -> np.ndarray:
    return np.round(BLACK + rgb * (WHITE - BLACK)).astype(np.uint16)


def mosaic_rggb(rgb_dn: np.ndarray) -> np.ndarray:
    m = np.empty(rgb_dn.shape[:2], np.uint16)
    m[0::2, 0::2] = rgb_dn[0::2, 0::2, 0]
    m[0::2, 1::2] = rgb_dn[0::2, 1::2, 1]
    m[1::2, 0::2] = rgb_dn[1::2, 0::2, 1]
    m[1::2, 1::2] = rgb_dn[1::2, 1::2, 2]
    return m


def _ljpeg(block: np.ndarray, cfa: bool, layout: str, bits: int) -> bytes:
    """One strip / tile as lossless JPEG (SOF3, predictor 1) with libjpeg-turbo."""
    import imagecodecs

    h, w = block.shape[:2]
    spp = 1 if block.ndim == 2 else block.shape[2]
    if layout == "adobe":
        arr = block.reshape(h, w // 2, 2) if cfa else block.reshape(h, w, spp)
    elif layout == "flat":  # one component, w * spp wide
        arr = block.reshape(h, w * spp)
    else:
        raise ValueError(layout)
    out = imagecodecs.jpeg8_encode(np.ascontiguousarray(arr), lossless=True, predictor=1, bitspersample=bits)
    assert np.array_equal(imagecodecs.ljpeg_decode(out).reshape(block.shape), block)  # 2nd decoder (liblj92)
    return bytes(out)


def write_dng(
    path,
    data: np.ndarray,
    *,
    compression: int = 1,
    layout: str = "strip",
    rows_per_strip: int | None = None,
    tile: tuple[int, int] = (64, 48),
    ljpeg_layout: str = "adobe",
    bits: int | None = None,
) -> Path:
    """Write ``data`` ((H, W) RGGB mosaic, or (H, W, 3) LinearRaw camera RGB, uint16) as a DNG (raw in IFD0).

    compression: 1 (uncompressed, 16-bit) or 7 (lossless JPEG, ``bits`` precision, default 12).
    layout: "strip" (``rows_per_strip`` rows each; default one strip) or "tiles" (``tile`` = (length, width)).
    """
    cfa = data.ndim == 2
    h, w = data.shape[:2]
    spp = 1 if cfa else data.shape[2]
    bits = bits or (16 if compression == 1 else 12)
    assert compression in (1, 7) and (compression == 7 or bits == 16)

    # the image data blocks
    blocks: list[bytes] = []
    if layout == "strip":
        rps = rows_per_strip or h
        for y in range(0, h, rps):
            b = data[y : y + rps]
            blocks.append(b.astype("<u2").tobytes() if compression == 1 else _ljpeg(b, cfa, ljpeg_layout, bits))
    elif layout == "tiles":
        tl, tw = tile
        for y in range(0, h, tl):
            for x in range(0, w, tw):
                b = np.zeros((tl, tw) + data.shape[2:], np.uint16)  # edge tiles padded to the full tile size
                part = data[y : y + tl, x : x + tw]
                b[: part.shape[0], : part.shape[1]] = part
                b[part.shape[0] :] = b[part.shape[0] - 1 : part.shape[0]]  # replicate edges (what the SDK does)
                b[:, part.shape[1] :] = b[:, part.shape[1] - 1 : part.shape[1]]
                blocks.append(b.astype("<u2").tobytes() if compression == 1 else _ljpeg(b, cfa, ljpeg_layout, bits))
    else:
        raise ValueError(layout)

    def srat(m):
        return [(round(v * 10000), 10000) for v in np.asarray(m).ravel()]

    tags: dict[int, tuple[int, list]] = {  # tag: (type, values); 1 BYTE 2 ASCII 3 SHORT 4 LONG 5 RATIONAL 10 SRATIONAL
        254: (4, [0]),
        256: (4, [w]),
        257: (4, [h]),
        258: (3, [bits] * spp),
        259: (3, [compression]),
        262: (3, [32803 if cfa else 34892]),
        271: (2, b"isp-collab\0"),
        272: (2, b"synthetic\0"),
        274: (3, [1]),
        277: (3, [spp]),
        284: (3, [1]),
        50706: (1, [1, 4, 0, 0]),
        50707: (1, [1, 1, 0, 0]),
        50708: (2, b"isp-collab synthetic\0"),
        50714: (4, [BLACK]),
        50717: (4, [WHITE]),
        50721: (10, srat(XYZ_TO_SRGB)),
        50778: (3, [21]),
        50728: (5, [(1, 1)] * 3),
    }
    if cfa:
        tags.update({33421: (3, [2, 2]), 33422: (1, [0, 1, 1, 2]), 50710: (1, [0, 1, 2]), 50711: (3, [1])})
    if layout == "strip":
        tags[278] = (4, [rows_per_strip or h])
        tags[273] = (4, [0] * len(blocks))
        tags[279] = (4, [len(b) for b in blocks])
    else:
        tags[322] = (4, [tile[1]])
        tags[323] = (4, [tile[0]])
        tags[324] = (4, [0] * len(blocks))
        tags[325] = (4, [len(b) for b in blocks])
    off_tag = 273 if layout == "strip" else 324

    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 10: 8}
    n = len(tags)
    ifd_size = 2 + 12 * n + 4
    pos = 8 + ifd_size
    extra = bytearray()
    # data blocks after the out-of-line tag values: compute values area first (offsets list size known)
    entries = []

    def pack(typ, vals):
        if typ == 2 or typ == 1 and isinstance(vals, bytes):
            return bytes(vals)
        if typ == 1:
            return bytes(vals)
        if typ == 3:
            return struct.pack(f"<{len(vals)}H", *vals)
        if typ == 4:
            return struct.pack(f"<{len(vals)}I", *vals)
        if typ == 5:
            return b"".join(struct.pack("<II", *v) for v in vals)
        if typ == 10:
            return b"".join(struct.pack("<ii", *v) for v in vals)
        raise ValueError(typ)

    # first pass: everything but the offsets' values, which are the same length either way
    values_len = sum(len(pack(t, v)) + (len(pack(t, v)) & 1) for t, v in tags.values() if len(pack(t, v)) > 4)
    data_pos = pos + values_len
    offsets, p = [], data_pos
    for b in blocks:
        offsets.append(p)
        p += len(b) + (len(b) & 1)
    tags[off_tag] = (4, offsets)

    vpos = pos
    for tag in sorted(tags):
        typ, vals = tags[tag]
        raw = pack(typ, vals)
        count = len(raw) // sizes[typ]
        if len(raw) <= 4:
            entries.append(struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\0"))
        else:
            entries.append(struct.pack("<HHII", tag, typ, count, vpos))
            extra += raw + (b"\0" if len(raw) & 1 else b"")
            vpos += len(raw) + (len(raw) & 1)
    assert vpos == data_pos
    out = bytearray(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", n) + b"".join(entries) + b"\0\0\0\0")
    out += extra
    for b in blocks:
        out += b + (b"\0" if len(b) & 1 else b"")
    path = Path(path)
    path.write_bytes(bytes(out))
    return path


CASES = {  # name: (kind, compression, layout, extra kwargs)
    "a_cfa_uncompressed_strip": ("cfa", 1, "strip", {}),
    "b_cfa_ljpeg_strip": ("cfa", 7, "strip", {}),
    "c_cfa_ljpeg_tiles": ("cfa", 7, "tiles", {}),
    "d_linear_uncompressed_strip": ("linear", 1, "strip", {}),
    "e_linear_ljpeg_strip": ("linear", 7, "strip", {}),
    "f_linear_ljpeg_tiles": ("linear", 7, "tiles", {}),
    # extras: the spec-legal but non-Adobe 1-component layout, and multi-strip (refused by isp-collab)
    "e2_linear_ljpeg_strip_flat": ("linear", 7, "strip", {"ljpeg_layout": "flat"}),
    "f2_linear_ljpeg_tiles_flat": ("linear", 7, "tiles", {"ljpeg_layout": "flat"}),
    "b2_cfa_ljpeg_strip_flat": ("cfa", 7, "strip", {"ljpeg_layout": "flat"}),
    "g_cfa_ljpeg_4strips": ("cfa", 7, "strip", {"rows_per_strip": H // 4}),
    "h_linear_ljpeg_4strips": ("linear", 7, "strip", {"rows_per_strip": H // 4}),
    "c2_cfa_ljpeg_12tiles": ("cfa", 7, "tiles", {"tile": (32, 32)}),
    "f3_linear_ljpeg_12tiles": ("linear", 7, "tiles", {"tile": (32, 32)}),
    "i_cfa_uncompressed_tiles": ("cfa", 1, "tiles", {}),
    "j_linear_uncompressed_tiles": ("linear", 1, "tiles", {}),
}


def intended(kind: str) -> np.ndarray:
    rgb = to_dn(scene())
    return mosaic_rggb(rgb) if kind == "cfa" else rgb


def write_case(name: str, folder) -> Path:
    kind, comp, layout, kw = CASES[name]
    return write_dng(Path(folder) / f"{name}.dng", intended(kind), compression=comp, layout=layout, **kw)
