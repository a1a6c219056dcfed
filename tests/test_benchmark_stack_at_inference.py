"""benchmarks/stack_at_inference.py: one model restored at several stack sizes under the quality protocol."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from isp_collab.bench.report import read_section
from isp_collab.models import create_model, save_model


@pytest.fixture
def script(load_benchmark):
    return load_benchmark("stack_at_inference")


def _model(folder: Path) -> str:
    torch.manual_seed(0)
    model = create_model("unet-tx", n=4)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(model, folder, {"n_trained": 4, "task": "sharpen"})
    return str(folder)


def test_rows_per_stack_size_and_section(tmp_path, script):
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(images / "a.png")
    model = _model(tmp_path / "m-n4")
    results = tmp_path / "RESULTS.md"
    script.main([f"{model}@1,4", "--images", str(images), "--section", "s", "--note", "why", "--results", str(results)])
    body = read_section(results.read_text(), "s")
    rows = [line.split(" | ")[0] for line in body.splitlines() if line.startswith("| ") and "---" not in line]
    # one 72x80 photo is one tile: restore runs any N as a stack of that one tile, and the label says so
    assert rows == [
        "| method",
        "| blurry input",
        "| m-n4 @ N=1",
        "| m-n4 @ N=4 (runs at N=1: the photo's tiles) (trained N)",
    ]
    assert body.startswith("why\n")


@pytest.mark.parametrize("spec", ["m@x", "m@0", "@4"])
def test_bad_specs_are_one_line_errors(script, spec, refused):
    with refused("@"):
        script.parse_spec(spec)


def test_two_models_of_one_row_label_are_refused(tmp_path, script, refused):
    a, b = _model(tmp_path / "a" / "m"), _model(tmp_path / "b" / "m")
    with refused("row label 'm'"):
        script.measure([f"{a}@4", f"{b}@4"])
    assert script.parse_spec(f"{a}@8")[0] == a  # one model at several sizes is fine


@pytest.mark.parametrize("flag", ["--max-images", "--crop", "--threads"])
def test_a_count_below_one_is_refused_not_taken_as_one(tmp_path, capsys, script, monkeypatch, flag):
    monkeypatch.setattr(script, "measure", lambda *a, **k: ("| table |\n", 1.0))
    with pytest.raises(SystemExit) as stop:
        script.main(["m@4", flag, "0", "--results", str(tmp_path / "RESULTS.md")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and f"{flag} must be >= 1, got 0" in err


def test_the_time_line_counts_the_whole_run(tmp_path, script, monkeypatch):
    from types import SimpleNamespace

    clock = [0.0]
    monkeypatch.setattr(script, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def slow(real, seconds):
        return lambda *a, **k: (clock.__setitem__(0, clock[0] + seconds), real(*a, **k))[1]

    monkeypatch.setattr(script, "load_images", slow(script.load_images, 1.5))  # decoding the photos
    monkeypatch.setattr(script, "run_quality", slow(script.run_quality, 0.4))  # restoring them
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(images / "a.png")
    body = script.main(["sharpen-unet-tx-n1", "--images", str(images)])
    assert "over the photos, 1.9 s on 1 CPU thread(s)" in body
