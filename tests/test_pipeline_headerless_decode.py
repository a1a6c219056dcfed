"""Headerless sensor dumps: pixel-exact decoding of every layout, and what a bad description is told."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from isp_collab.pipeline import CFA_PATTERNS, HeaderlessDecode, InputError, PipelineWarning


def write_headerless(folder: Path, mosaic: np.ndarray, description: dict, name="frame", fmt="json") -> Path:
    """``name.raw`` with the samples as ``description`` says, and ``name.json`` / ``name.toml``."""
    dt = np.dtype(description["dtype"]).newbyteorder(
        "<" if description.get("byte_order", "little") == "little" else ">"
    )
    raw = folder / f"{name}.raw"
    mosaic.astype(dt).tofile(raw)
    if fmt == "json":
        (folder / f"{name}.json").write_text(json.dumps(description))
    else:
        lines = [f"{k} = {json.dumps(v)}" for k, v in description.items()]
        (folder / f"{name}.toml").write_text("\n".join(lines) + "\n")
    return raw


def description(**changes) -> dict:
    d = dict(width=48, height=32, dtype="uint16", byte_order="little", bit_depth=10, cfa_pattern="RGGB")
    d.update(black_level=64, white_level=1023)
    d.update(changes)
    return d


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize(
    ("dtype", "byte_order", "bits", "fmt"),
    [
        ("uint8", "little", 8, "json"),
        ("uint16", "little", 10, "json"),
        ("uint16", "big", 12, "toml"),
        ("uint16", "big", 16, "json"),
    ],
)
def test_headerless_decodes_pixel_exact(tmp_path, pattern, dtype, byte_order, bits, fmt):
    mosaic = np.random.default_rng(bits).integers(0, 2**bits, (32, 48)).astype(np.uint16)
    d = description(
        dtype=dtype, byte_order=byte_order, bit_depth=bits, cfa_pattern=pattern, black_level=4, white_level=2**bits - 1
    )
    raw = write_headerless(tmp_path, mosaic, d, fmt=fmt)
    with pytest.warns(PipelineWarning, match="no colour matrix"):  # the description has none: identity, said
        got, frame = HeaderlessDecode()(raw)
    np.testing.assert_array_equal(got, mosaic)
    assert frame.cfa_pattern == pattern and frame.black_level == (4.0,) * 4 and frame.white_level == 2**bits - 1
    assert frame.wb_gains is None and frame.cam_to_srgb is None


def test_headerless_optional_keys(tmp_path):
    ccm = [[1.5, -0.3, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.4, 1.4]]
    d = description(black_level=[60, 61, 62, 63], wb_gains_rgb=[1.8, 1.0, 1.6], ccm_cam_to_srgb=ccm, note="bench")
    frame = HeaderlessDecode()(write_headerless(tmp_path, np.zeros((32, 48)), d))[1]
    assert frame.black_level == (60, 61, 62, 63) and frame.wb_gains == (1.8, 1.0, 1.6)
    assert frame.wb_source == "description"
    np.testing.assert_allclose(frame.ccm, ccm)


def test_two_descriptions_beside_a_dump_are_refused_and_one_from_elsewhere_is_named_in_full(tmp_path):
    raw = write_headerless(tmp_path, np.zeros((32, 48)), description())
    (tmp_path / "frame.toml").write_text('width = 40\nheight = 32\ndtype = "uint16"\n')
    with pytest.raises(InputError, match=r"frame\.raw: two sensor descriptions beside it \(frame\.json, frame\.toml\)"):
        HeaderlessDecode()(raw)
    other = tmp_path / "descriptions"
    other.mkdir()
    (other / "frame.json").write_text(json.dumps(description(width=40)))
    with pytest.raises(InputError, match=rf"but {re.escape(str(other / 'frame.json'))} describes 40x32"):
        HeaderlessDecode(description=other / "frame.json")(raw)  # named: the files beside it do not matter


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(width=40), "file has 3072 bytes but frame.json describes 40x32 uint16 = 2560 bytes"),
        (dict(cfa_pattern="RGBW"), "'cfa_pattern' must be one of"),
        (dict(dtype="float32"), "'dtype' must be 'uint8' or 'uint16'"),
        (dict(byte_order="middle"), "'byte_order' must be"),
        (dict(bit_depth=17), "'bit_depth' must be an integer in 1..16"),
        (dict(black_level=2000), "need 0 <= black_level < white_level"),
        (dict(white_level=4095), "exceeds the 10-bit maximum"),
        (dict(wb_gains_rgb=[1, 2]), "'wb_gains_rgb' must be a list of 3 numbers"),
        (dict(colour="x"), "unknown key 'colour'"),
        (dict(width="48"), "'width' must be a positive number"),
        (dict(width=10**400), "'width' is out of range, got an integer of 401 digits"),  # was a TypeError
        (dict(black_level=[0, 0, 0, -(10**400)]), "'black_level' is out of range"),
        (dict(wb_gains_rgb=[1e308, 1, 1]), r"'wb_gains_rgb' must be at most 100 and within 100x of each other"),
        (dict(wb_gains_rgb=[1e300, 1e300, 1e300]), r"'wb_gains_rgb' must be at most 100"),  # overflowed float32
        (dict(ccm_cam_to_srgb=[[1e308, 0, 0], [0, 1, 0], [0, 0, 1]]), "'ccm_cam_to_srgb' entries must lie between"),
        (dict(ccm_cam_to_srgb=[[1536, -512, 0], [0, 1024, 0], [0, 0, 1024]]), r"got 1536 \(a matrix in fixed-point"),
    ],
)
def test_headerless_description_errors(tmp_path, change, match):
    raw = write_headerless(tmp_path, np.zeros((32, 48)), description())
    (tmp_path / "frame.json").write_text(json.dumps(description(**change)))
    with pytest.raises(InputError, match=match) as e:
        HeaderlessDecode()(raw)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_headerless_values_above_bit_depth(tmp_path):
    raw = write_headerless(tmp_path, np.full((32, 48), 1023 << 6), description())  # MSB-aligned 10-bit
    with pytest.raises(InputError, match=r"frame\.raw: sample value 65472 exceeds the 10-bit maximum 1023"):
        HeaderlessDecode()(raw)


def test_headerless_missing_byte_order_for_16_bit(tmp_path):
    d = description()
    del d["byte_order"]
    raw = write_headerless(tmp_path, np.zeros((32, 48)), d)
    with pytest.raises(InputError, match="'byte_order' .* is required for uint16"):
        HeaderlessDecode()(raw)


@pytest.mark.parametrize(("fmt", "text"), [("json", "[" * 100000 + "]" * 100000), ("toml", "x = " + "[" * 100000)])
def test_a_description_nested_too_deeply_is_one_line_exit_2(tmp_path, capsys, fmt, text):
    from isp_collab.cli import main

    raw = write_headerless(tmp_path, np.zeros((32, 48)), description(), fmt=fmt)
    (desc := tmp_path / f"frame.{fmt}").write_text(text)
    with pytest.raises(
        InputError, match=rf"frame\.{fmt}: not a valid {fmt.upper()} sensor description \(nested too deeply\)"
    ):
        HeaderlessDecode()(raw)  # was a RecursionError (exit 1)
    assert main(["process", str(raw), "-o", str(tmp_path / "out.png"), "--stages", "none"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [
        f"isp-collab process: error: {raw}: {desc}: not a valid {fmt.upper()} sensor description (nested too deeply)"
    ]
    assert not (tmp_path / "out.png").exists()
