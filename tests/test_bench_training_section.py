"""``bench training``: the section describes the given models from their card and log (no hard-coded claims);
the collaboration-gain table runs at the trained N, on --device with --threads, with a progress bar."""

import json

import cv2
import pytest
import torch
from test_bench_guards import _images

import isp_collab.bench.collab_gain as collab_gain
import isp_collab.training.report as report
from isp_collab.bench.options import BenchOptions
from isp_collab.bench.report import read_section
from isp_collab.cli import main
from isp_collab.models import create_model, save_model


def _trained(folder, n=2, val_every=2, val_images=(), lr=1e-3, blurry=29.0, data=None):
    """A model folder as ``isp-collab train`` leaves it: card with validation, log with the start record."""
    card = {
        "task": "sharpen", "n_trained": n, "steps": 4, "patches_per_step": 4, "patch": 16, "wall_clock_s": 3.0,
        "validation_protocol": "isotropic Gaussian sigma in [1.0], demosaic noise",
        "validation": {"restored": {"sigma=1": 30.0}, "blurry": {"sigma=1": blurry}, "mean_psnr": 30.0,
                       "mean_blurry": blurry},
    }  # fmt: skip
    out = save_model(create_model("unet-tx", n=n), folder, card)
    recipe = {
        "name": folder.name,
        "model": {"arch": "unet-tx", "n": n},
        "data": {"val_images": list(val_images), **(data or {})},
        "train": {"val_every": val_every, "threads": 0, "lr": lr},
        "val": {"max_images": 19, "dead_leaves_images": 1, "seed": 1234},
    }
    start = {"event": "start", "recipe": recipe, "world": 1, "device": "cpu"}
    vals = [{"step": s, "val": {"mean_psnr": 29.0 + s / 4}} for s in (0, 2, 4)]
    (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [start, *vals]))
    return str(out)


def test_section_reads_cadence_data_and_circumstances_from_the_log(tmp_path, monkeypatch):
    import matplotlib.axes

    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda ax, t, *a, **k: (titles.append(t), real(ax, t))[1])
    model = _trained(tmp_path / "m-n2")
    text = report.training_section(tmp_path, [model])
    assert "validated every 2 steps" in text and "500" not in text
    assert "validation data: procedural dead leaves (1 images, seed 1234)" in text
    assert "as logged: cpu, 1 process, torch's default threads" in text
    assert "2-core" not in text and "siblings" not in text
    assert titles and all("Set14" not in t for t in titles) and "dead-leaves tiles" in titles[-1]


def test_section_names_what_differs_between_the_models(tmp_path):
    a = _trained(tmp_path / "a", n=1, val_every=5, val_images=["my_val"])
    b = _trained(tmp_path / "b", n=2, val_every=10, val_images=["my_val"], lr=2e-3)
    text = report.training_section(tmp_path, [a, b])
    assert "validation data: photos of `my_val`, at most 19" in text
    assert "validated every 5 (`a`), 10 (`b`) steps" in text
    assert "Their recipes differ in N and in `train.lr`, `train.val_every`." in text


def test_a_key_an_older_log_lacks_counts_as_its_default(tmp_path):
    old = _trained(tmp_path / "old", n=1)
    same = _trained(tmp_path / "same", data={"noise_kind_per": "patch"})  # the default: what "old" did
    other = _trained(tmp_path / "other", data={"noise_kind_per": "stack"})
    assert "Their recipes differ only in N." in report.training_section(tmp_path, [old, same])
    assert "differ in N and in `data.noise_kind_per`." in report.training_section(tmp_path, [old, other])


def test_models_sharing_a_validation_set_share_one_blurry_row(tmp_path):
    a, b = _trained(tmp_path / "a", n=1), _trained(tmp_path / "b", n=4)
    c = _trained(tmp_path / "c", n=1, blurry=28.0)
    rows = [line for line in report.training_section(tmp_path, [a, b, c]).splitlines() if line.startswith("|")]
    labels = [row.split("|")[1].strip() for row in rows[2:]]
    assert labels == ["blurry input (`a`, `b`)", "`a`", "`b`", "blurry input (`c`)", "`c`"]
    assert "| 29.00 |" in rows[2] and "| 28.00 |" in rows[5]


def test_collab_gain_runs_on_the_device_with_the_threads(tmp_path, monkeypatch):
    seen = []

    def fake_evaluate(model, valset, n, border, device):
        seen.append((n, torch.get_num_threads(), device))
        return {"restored": {}, "mean_psnr": 30.0, "mean_blurry": 29.0}

    monkeypatch.setattr(collab_gain, "evaluate", fake_evaluate)
    cv2_threads = cv2.getNumThreads()
    model = _trained(tmp_path / "m-n2")
    images = _images(tmp_path / "imgs", [(64, 64)])
    out = tmp_path / "out"
    args = ["--quick", "--images", str(images), "--models", model, "--threads", "2", "--device", "cpu"]
    try:
        assert main(["bench", "training", *args, "--out", str(out)]) == 0
    finally:
        cv2.setNumThreads(cv2_threads)
    assert {n for n, _, _ in seen} == {1, 2, 4, 8}
    assert {(t, str(d)) for _, t, d in seen} == {(2, "cpu")}
    tag = BenchOptions(out=out, images=images).images_tag
    gain = read_section((out / "RESULTS.md").read_text(), f"collab-gain-{tag}")
    assert "networks on cpu, 2 CPU thread(s)" in gain


def test_collab_gain_shows_progress(tmp_path, capsys):
    model = _trained(tmp_path / "m-n2")
    images = _images(tmp_path / "imgs", [(64, 64)])
    rows = collab_gain.collab_gain_table(
        [str(images)], tiles=(32,), stack_sizes=(1,), tiles_per_image=2, models=[model], progress=True
    )
    assert {r["n_eval"] for r in rows} == {1, 2}  # the trained N besides the stack sizes asked
    assert "collab-gain" in capsys.readouterr().err  # the tqdm bar


@pytest.mark.parametrize("n, expected", [(1, 16), (4, 16), (3, 48)])
def test_tiles_per_photo_fit_every_stack(n, expected):
    assert collab_gain.tiles_per_photo([*collab_gain.STACK_SIZES, n]) == expected


def test_keys_the_task_does_not_read_are_not_compared():
    lens = {"task": {"name": "lens", "lens": "lens-a"}, "data": {"noise_per": "stack"}}
    other = {"task": {"name": "lens", "lens": "lens-b"}, "data": {"noise_per": "patch"}}  # noise_per: sharpen only
    assert report.recipe_differences([lens, other]) == ["task.lens"]
    sharpen = [{"data": {"noise_per": "stack"}, "task": {"lens": "x"}}, {"data": {"noise_per": "patch"}}]
    assert report.recipe_differences(sharpen) == ["data.noise_per"]  # task.lens: lens only


def test_a_relative_validation_folder_says_relative_to_what(tmp_path):
    relative = report.val_data({"recipe": {"data": {"val_images": ["../shared/data/images/val"]}, "val": {}}})
    assert relative == (
        "photos of `../shared/data/images/val` (as logged: relative to the folder `isp-collab train` ran in, "
        "not recorded)"
    )
    absolute = report.val_data({"recipe": {"data": {"val_images": [str(tmp_path)]}, "val": {}}})
    assert absolute == f"photos of `{tmp_path}`"


def test_bench_training_says_what_it_wrote(tmp_path, capsys):
    model = _trained(tmp_path / "m-n2")
    out = tmp_path / "out"
    assert main(["bench", "training", "--quick", "--models", model, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"training: wrote section(s) training, collab-gain, training_sharpen.png in {out}" in said
