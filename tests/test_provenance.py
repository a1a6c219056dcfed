"""Outputs record the file name of their input (read back by ``--skip-existing``)."""

from __future__ import annotations

import numpy as np
import pytest

from isp_collab.pipeline.encode import encode_image
from isp_collab.pipeline.provenance import recorded_source


@pytest.mark.parametrize(("ext", "bits"), [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 8), (".tif", 16)])
@pytest.mark.parametrize("grey", [False, True])
def test_every_output_type_records_its_source(tmp_path, ext, bits, grey):
    image = np.random.default_rng(0).random((8, 8) if grey else (8, 8, 3), dtype=np.float32)
    path = tmp_path / f"out{ext}"
    path.write_bytes(encode_image(image, ext, bits, source="IMG_0001 été.kdc"))  # not ASCII: UTF-8 throughout
    assert recorded_source(path) == "IMG_0001 été.kdc"
    path.write_bytes(encode_image(image, ext, bits))
    assert recorded_source(path) is None


def test_no_record_for_other_files(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image")
    assert recorded_source(tmp_path / "x.png") is None and recorded_source(tmp_path / "missing.png") is None
