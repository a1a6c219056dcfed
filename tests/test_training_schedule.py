"""The learning-rate schedule, Adam's parameter groups and the per-process split, at their exact values."""

import json
import math
from pathlib import Path

import pytest
import torch

from isp_collab.models import create_model
from isp_collab.training import load_recipe, train
from isp_collab.training.setup import lr_factor, param_groups
from isp_collab.training.trainer import _stacks_per_process

TINY = Path(__file__).resolve().parents[1] / "train" / "tiny.toml"


def schedule(steps=20, warmup=4, lr=1e-3, lr_min=1e-5):
    r = load_recipe(TINY)
    r.train.steps, r.train.warmup, r.train.lr, r.train.lr_min = steps, warmup, lr, lr_min
    return r


def test_warmup_is_linear_and_reaches_the_peak_on_its_last_step():
    r = schedule()
    assert [lr_factor(s, r) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0], abs=1e-12)
    assert lr_factor(4, r) == pytest.approx(1.0, abs=1e-12)  # the cosine starts at the peak


def test_cosine_goes_from_the_peak_to_lr_min_at_the_last_step_and_stays_there():
    r = schedule()
    lo = 1e-5 / 1e-3
    assert lr_factor(12, r) == pytest.approx(lo + (1 - lo) * 0.5, abs=1e-12)  # halfway
    assert lr_factor(8, r) == pytest.approx(lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi / 4)), abs=1e-12)
    assert lr_factor(20, r) == pytest.approx(lo, abs=1e-12)
    assert lr_factor(25, r) == pytest.approx(lo, abs=1e-12)  # past the end: not back up the cosine


def test_no_warmup_starts_at_the_peak_and_a_one_step_decay_is_finite():
    assert lr_factor(0, schedule(warmup=0)) == pytest.approx(1.0, abs=1e-12)
    r = schedule(steps=5, warmup=5)  # lr_factor alone: no decay steps left, max(1, steps - warmup) divides
    assert lr_factor(4, r) == pytest.approx(1.0, abs=1e-12)
    assert lr_factor(6, r) == pytest.approx(1e-2, abs=1e-12)


def test_the_log_has_a_line_every_ten_steps_with_the_scheduled_learning_rate(tmp_path):
    r = load_recipe(TINY)
    r.train.steps, r.train.warmup, r.train.lr, r.train.lr_min, r.train.val_every = 20, 4, 2e-3, 1e-4, 20
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    rec = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines() if '"loss"' in x]
    assert [x["step"] for x in rec] == [10, 20]
    for x in rec:  # the rate the next step uses: lr_min after the last one
        assert x["lr"] == pytest.approx(2e-3 * lr_factor(x["step"], r), rel=1e-9)
    assert rec[-1]["lr"] == pytest.approx(1e-4, rel=1e-9)


def test_collab_lr_scales_only_the_collaboration_layers():
    r = load_recipe(TINY)
    r.train.lr, r.train.collab_lr = 2e-3, 5.0
    model = create_model("unet-tx", n=2)
    rest, collab = param_groups(model, r)
    assert "lr" not in rest and collab["lr"] == pytest.approx(1e-2)
    names = {id(p): n for n, p in model.named_parameters()}
    assert collab["params"] and all(names[id(p)].startswith("collab_") for p in collab["params"])
    assert rest["params"] and not any(names[id(p)].startswith("collab_") for p in rest["params"])
    assert len(rest["params"]) + len(collab["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(
    "stacks_per_step,world,blur_group,expected",
    [(4, 1, 1, 4), (4, 2, 1, 2), (4, 2, 2, 2), (6, 3, 2, 2), (4, 4, 1, 1)],
)
def test_stacks_split_over_processes(stacks_per_step, world, blur_group, expected):
    r = load_recipe(TINY)
    r.train.patches_per_step = stacks_per_step * r.model.n
    r.data.blur_group = blur_group
    assert r.stacks_per_step == stacks_per_step
    assert _stacks_per_process(r, world) == expected


@pytest.mark.parametrize("stacks_per_step,world,blur_group", [(4, 3, 1), (2, 4, 1), (6, 2, 2), (4, 8, 1)])
def test_stacks_that_do_not_split_are_refused(stacks_per_step, world, blur_group):
    r = load_recipe(TINY)
    r.train.patches_per_step = stacks_per_step * r.model.n
    r.data.blur_group = blur_group
    with pytest.raises(ValueError, match="cannot be|groups of data.blur_group"):
        _stacks_per_process(r, world)


def test_a_grad_clip_above_every_norm_logs_nothing_clipped(tmp_path):
    """The other side of test_training.py's every-step-clipped run: the logged fraction is 0, not a constant."""
    r = load_recipe(TINY)
    r.train.steps, r.train.val_every, r.train.grad_clip = 10, 10, 1e3  # nothing clipped
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    rec = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines() if '"clipped"' in x]
    assert rec and all(x["clipped"] == 0.0 and 0 < x["grad_norm"] < 1e3 for x in rec)
    assert torch.isfinite(torch.tensor([x["loss"] for x in rec])).all()
