"""The training section of RESULTS.md is generated from the shipped cards (never typed by hand)."""

import json

import cv2
import numpy as np
import pytest

import isp_collab.training.report as report
from isp_collab.bench.collab_gain import collab_gain_markdown, collab_gain_table
from isp_collab.models import create_model, save_model


@pytest.fixture
def fake_models(tmp_path, monkeypatch):
    """Two tiny 'shipped' sharpening models (N=1, N=2) with cards and logs, in a temp models/ dir."""
    root = tmp_path / "models"
    for n, psnr in ((1, 30.0), (2, 30.5)):
        card = {
            "task": "sharpen", "n_trained": n, "steps": 10, "patches_per_step": 4, "patch": 16, "wall_clock_s": 60,
            "validation": {"restored": {"sigma=1": psnr}, "blurry": {"sigma=1": 29.0}, "mean_psnr": psnr,
                           "mean_blurry": 29.0},
        }  # fmt: skip
        out = save_model(create_model("unet-tx", n=n), root / f"m-n{n}", card)
        (out / "train_log.jsonl").write_text(
            "".join(json.dumps({"step": s, "val": {"mean_psnr": psnr - 1 + s / 10}}) + "\n" for s in (0, 5, 10))
        )
    monkeypatch.setenv("ISP_COLLAB_MODELS", str(root))
    return root


def test_training_section_tables_and_plot(fake_models, tmp_path):
    text = report.training_section(tmp_path)
    assert "| `m-n1` | 1 | 30.00 | **30.00** | +1.00 |" in text
    assert "| `m-n2` | 2 | 30.50 | **30.50** | +1.50 |" in text
    assert (tmp_path / "training_sharpen.png").stat().st_size > 1000


def test_collab_gain_evaluates_every_model_at_every_stack_size(fake_models, tmp_path):
    data = tmp_path / "val"
    data.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(data / "a.png"), (rng.random((96, 96, 3)) * 255).astype(np.uint8))
    rows = collab_gain_table([str(data)], tiles=(32,), stack_sizes=(1, 2), tiles_per_image=2)
    assert {(r["model"], r["n_eval"]) for r in rows} == {("m-n1", 1), ("m-n1", 2), ("m-n2", 1), ("m-n2", 2)}
    for r in rows:  # untrained (identity) networks score exactly the blurry input
        assert r["psnr"] == pytest.approx(r["blurry"], abs=1e-4)
    assert "| `m-n2` | 2 (trained) |" in collab_gain_markdown(rows)


def test_collab_gain_takes_an_explicit_model_list(fake_models, tmp_path):
    data = tmp_path / "val"
    data.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(data / "a.png"), (rng.random((96, 96, 3)) * 255).astype(np.uint8))
    rows = collab_gain_table([str(data)], tiles=(32,), stack_sizes=(1,), tiles_per_image=2, models=["m-n2"])
    assert [(r["model"], r["n_eval"]) for r in rows] == [("m-n2", 1), ("m-n2", 2)]  # and its trained N


def test_training_section_takes_model_folders(fake_models, tmp_path):
    """``bench training --models``: only the given folders, labelled by folder name, curves included."""
    (tmp_path / "runs").mkdir()
    elsewhere = (fake_models / "m-n2").rename(tmp_path / "runs" / "my-n2")
    text = report.training_section(tmp_path, [str(elsewhere)])
    assert "| `my-n2` | 2 | 30.50 |" in text
    assert "m-n1" not in text and "--models" in text
    assert (tmp_path / "training_sharpen.png").stat().st_size > 1000
