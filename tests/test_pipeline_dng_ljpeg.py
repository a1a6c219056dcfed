"""Lossless-JPEG and tiled DNGs (CFA and LinearRaw) decode exactly, or are refused where LibRaw decodes them wrong.

The DNGs are written by ljpeg_dng.py (LJPEG payloads from libjpeg-turbo via imagecodecs, laid out as the Adobe DNG SDK
writes them), a few ms each."""

import warnings

import ljpeg_dng as dc
import numpy as np
import pytest

from isp_collab.pipeline import InputError, RawDecode

EXACT = [
    "a_cfa_uncompressed_strip",
    "b_cfa_ljpeg_strip",
    "c_cfa_ljpeg_tiles",
    "c2_cfa_ljpeg_12tiles",
    "b2_cfa_ljpeg_strip_flat",
    "d_linear_uncompressed_strip",
    "e_linear_ljpeg_strip",
    "f_linear_ljpeg_tiles",
    "f3_linear_ljpeg_12tiles",
    "i_cfa_uncompressed_tiles",
    "j_linear_uncompressed_tiles",
]
REFUSED = {
    "g_cfa_ljpeg_4strips": "in 4 strips",
    "h_linear_ljpeg_4strips": "in 4 strips",
    "e2_linear_ljpeg_strip_flat": "hold 1 component",
    "f2_linear_ljpeg_tiles_flat": "hold 1 component",
}


def _needs_codec(name):
    if dc.CASES[name][1] == 7:
        pytest.importorskip("imagecodecs")


@pytest.mark.parametrize("name", EXACT)
def test_dng_layouts_decode_exactly(tmp_path, name):
    _needs_codec(name)
    path = dc.write_case(name, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples, frame = RawDecode()(path)
    np.testing.assert_array_equal(samples, dc.intended(dc.CASES[name][0]))
    assert frame.black_level[:3] == (dc.BLACK,) * 3 and frame.white_level == dc.WHITE


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_ljpeg_layouts_libraw_gets_wrong_are_refused(tmp_path, name):
    _needs_codec(name)
    path = dc.write_case(name, tmp_path)
    with pytest.raises(InputError, match=REFUSED[name]):
        RawDecode()(path)
