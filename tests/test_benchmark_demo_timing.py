"""benchmarks/demo_timing.py: its distance between two PNGs, and its refusals before any work."""

import cv2
import numpy as np
import pytest


@pytest.fixture
def script(load_benchmark):
    return load_benchmark("demo_timing")


def test_int8_distance_counts_pixels_by_their_largest_channel_difference(tmp_path, script):
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 2] = 103  # one pixel 3 levels off in one channel: > 2
    b[1, 1, 0] = 125  # one 25 levels off: > 2 and > 20
    b[2, 2] = 102  # 2 levels in every channel: not > 2
    cv2.imwrite(str(tmp_path / "a.png"), a)
    cv2.imwrite(str(tmp_path / "b.png"), b)
    psnr, share, count = script.int8_distance(tmp_path / "a.png", tmp_path / "b.png")
    mse = (9 + 625 + 3 * 4) / 300
    assert psnr == pytest.approx(10 * np.log10(255**2 / mse)) and share == pytest.approx(2.0) and count == 1


def test_bad_counts_and_a_held_section_are_refused_before_any_work(tmp_path, script, refused, monkeypatch):
    monkeypatch.setattr(script, "_timed", lambda *a: pytest.fail("measured after a refusal"))
    with refused("--rounds must be >= 1"):
        script.main(["--rounds", "0"])
    results = tmp_path / "R.md"
    results.write_text("<!-- section:demo-timing -->\nold\n<!-- /section:demo-timing -->\n")
    with refused("already holds section demo-timing"):
        script.main(["--section", "demo-timing", "--results", str(results)])
    assert "old" in results.read_text()
