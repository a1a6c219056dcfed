"""Outputs record the input they were made from (read back by ``--skip-existing``)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from isp_collab.pipeline import Pipeline
from isp_collab.pipeline.encode import encode_image
from isp_collab.pipeline.provenance import recorded_source, source_record


@pytest.mark.parametrize(("ext", "bits"), [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 8), (".tif", 16)])
@pytest.mark.parametrize("grey", [False, True])
def test_every_output_type_records_its_source(tmp_path, ext, bits, grey):
    image = np.random.default_rng(0).random((8, 8) if grey else (8, 8, 3), dtype=np.float32)
    path = tmp_path / f"out{ext}"
    path.write_bytes(encode_image(image, ext, bits, record="0123456789abcdef IMG_0001 été.kdc"))  # UTF-8
    assert recorded_source(path) == "0123456789abcdef IMG_0001 été.kdc"
    path.write_bytes(encode_image(image, ext, bits))
    assert recorded_source(path) is None


def test_a_record_tells_apart_files_of_one_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "IMG.JPG").write_bytes(b"one photo" * 10_000)
    (tmp_path / "b" / "IMG.JPG").write_bytes(b"another!!" * 10_000)
    a, b = source_record(tmp_path / "a" / "IMG.JPG"), source_record(tmp_path / "b" / "IMG.JPG")
    assert a != b and a.endswith(" IMG.JPG") and b.endswith(" IMG.JPG") and len(a.split(" ", 1)[0]) == 16


def test_a_name_that_is_not_utf8_is_still_processed(tmp_path):
    """A Latin-1 name on a UTF-8 system (surrogates in Python) failed the write after all the work."""
    import cv2

    src = tmp_path / os.fsdecode(b"caf\xe9.png")
    cv2.imwrite(str(tmp_path / "x.png"), np.full((8, 8, 3), 100, np.uint8))
    os.replace(tmp_path / "x.png", src)
    for ext in (".png", ".jpg", ".tif"):
        Pipeline().process_file(src, tmp_path / f"out{ext}")
        assert recorded_source(tmp_path / f"out{ext}").endswith(" caf\\udce9.png")  # escaped, not lost


def test_no_record_for_other_files(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image")
    assert recorded_source(tmp_path / "x.png") is None and recorded_source(tmp_path / "missing.png") is None
