"""benchmarks/tile_default.py: restore's time per MP by tile, the default tile of each N marked."""

import numpy as np
import pytest
import torch


@pytest.fixture
def script(load_benchmark):
    return load_benchmark("tile_default")


def test_speed_table_times_every_model_and_tile_and_marks_the_default(script, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setattr(script, "SHARPEN", ("sharpen-unet-tx-n1", "sharpen-unet-tx-n4"))
    image = np.random.default_rng(0).random((120, 200, 3), dtype=np.float32) * 0.5
    table = script.speed_table([64, 192], 1, 1, image)
    rows = [line for line in table.splitlines() if line.startswith("| sharpen")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| sharpen-unet-tx-n1 (N=1), PyTorch",
        "| sharpen-unet-tx-n4 (N=4), PyTorch",
        "| sharpen-unet-tx-n4 (N=4), ONNX Runtime fp32",
    ]
    # N=4's default tile (192) is bold; N=1's (256) was not timed, so nothing of its row is
    assert "**" not in rows[0] and rows[1].split(" | ")[2].startswith("**") and "**" not in rows[2]
    times = [float(cell.strip("* ").split(" ")[0]) for r in rows for cell in r.strip("| ").split(" | ")[1:]]
    assert len(times) == 6 and all(t > 0 for t in times)


def test_read_frame_decodes_a_file_as_process_does(script, tmp_path):
    import cv2

    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.full((40, 60, 3), 128, np.uint8))
    frame = script.read_frame(str(path))
    assert frame.shape == (40, 60, 3) and frame.dtype == np.float32 and 0 < frame.mean() < 0.5  # linear
    assert script.read_frame(None).shape == (1080, 1920, 3)
