"""Exact resume after an interrupt that lands mid-step, the process count of a resumed run, the card's step."""

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from test_training import acting_at_batch

from isp_collab.models import load_model
from isp_collab.training import load_recipe, train
from isp_collab.training import trainer as trainer_mod
from isp_collab.training.checkpoint import load_checkpoint
from isp_collab.training.interrupts import steps_are_whole
from isp_collab.training.resume import open_run

TINY = Path(__file__).resolve().parents[1] / "train" / "tiny.toml"


def tiny(steps: int):
    r = load_recipe(TINY)
    r.train.steps = steps
    return r


def interrupt():
    raise KeyboardInterrupt


def test_ctrl_c_after_a_batch_is_drawn_resumes_exactly(tmp_path, monkeypatch):
    train(tiny(8), tmp_path / "a", run_dir=tmp_path / "ra", progress=False)
    real = trainer_mod.build_task
    # the 5th batch is drawn (the generator has moved) but not yet used when Ctrl-C comes
    monkeypatch.setattr(trainer_mod, "build_task", acting_at_batch(5, interrupt, after=True))
    with pytest.raises(KeyboardInterrupt):
        train(tiny(8), tmp_path / "b", run_dir=tmp_path / "rb", progress=False)
    assert load_checkpoint(tmp_path / "rb" / "last.pt")["step"] == 4
    monkeypatch.setattr(trainer_mod, "build_task", real)
    train(tiny(8), tmp_path / "b", run_dir=tmp_path / "rb", progress=False, resume=True)
    whole, resumed = (load_checkpoint(tmp_path / r / "last.pt")["model"] for r in ("ra", "rb"))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_ctrl_c_after_a_forward_pass_resumes_exactly(tmp_path, monkeypatch):
    """The forward pass of the interrupted step has moved BatchNorm's running statistics: the checkpoint keeps
    those of the last whole step, so the resumed run does not count that batch twice."""
    train(tiny(6), tmp_path / "a", run_dir=tmp_path / "ra", progress=False)
    real, calls = trainer_mod.F.l1_loss, []

    def loss_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        out = real(*args, **kwargs)  # the network has run on step 3's batch
        if len(calls) == 3:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(trainer_mod.F, "l1_loss", loss_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(6), tmp_path / "b", run_dir=tmp_path / "rb", progress=False)
    monkeypatch.setattr(trainer_mod.F, "l1_loss", real)
    assert load_checkpoint(tmp_path / "rb" / "last.pt")["step"] == 2
    train(tiny(6), tmp_path / "b", run_dir=tmp_path / "rb", progress=False, resume=True)
    whole, resumed = (load_checkpoint(tmp_path / r / "last.pt")["model"] for r in ("ra", "rb"))
    assert any(k.endswith("running_mean") for k in whole)  # the network has BatchNorm statistics to keep
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_signal_during_the_update_acts_once_the_step_is_whole():
    done = []
    with pytest.raises(KeyboardInterrupt), steps_are_whole():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("update")
    assert done == ["update"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_resume_with_another_number_of_processes_is_refused(tmp_path):
    train(tiny(4), tmp_path / "m", run_dir=tmp_path / "r", progress=False, stop_after=2)
    with pytest.raises(ValueError, match=r"started with 1 process\(es\), this one has 2 .*resume it without torchrun"):
        open_run(tmp_path / "r", tiny(4), resume=True, world=2)
    assert open_run(tmp_path / "r", tiny(4), resume=True, world=1).checkpoint["world"] == 1


def test_the_card_says_which_step_its_weights_are_from(tmp_path):
    train(tiny(4), tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    card = load_model(tmp_path / "m").card
    best = load_checkpoint(tmp_path / "r" / "best.pt")["step"]
    assert card["best_step"] == best and best in (2, 4)
    assert (card["lr"], card["seed"]) == (tiny(4).train.lr, tiny(4).train.seed)


def test_collab_lr_puts_the_collaboration_layers_in_their_own_group():
    from isp_collab.models import create_model
    from isp_collab.training.setup import param_groups as _param_groups

    r = load_recipe(TINY)
    model = create_model("unet-tx", n=r.model.n)
    assert len(_param_groups(model, r)) == 1  # the default: one group, as the shipped models were trained
    r.train.collab_lr = 10.0
    rest, collab = _param_groups(model, r)
    assert collab["lr"] == 10.0 * r.train.lr and "lr" not in rest
    names = {id(p): n for n, p in model.named_parameters()}
    assert collab["params"] and all(names[id(p)].startswith("collab_") for p in collab["params"])
    assert len(rest["params"]) + len(collab["params"]) == len(list(model.parameters()))


def test_an_interrupted_validation_is_done_on_resume(tmp_path, monkeypatch):
    """Ctrl-C during the last step's validation: the resumed run validates that step before anything else."""
    real = trainer_mod.build_task
    calls = {"n": 0}

    def build(recipe):
        task = real(recipe)
        validate = task.validate

        def validate_or_interrupt(*a, **k):
            calls["n"] += 1
            if calls["n"] == 3:  # step 0, step 2, then step 4 (the last) is interrupted
                raise KeyboardInterrupt
            return validate(*a, **k)

        task.validate = validate_or_interrupt
        return task

    monkeypatch.setattr(trainer_mod, "build_task", build)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(4), tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert (ck["step"], ck["validated"]) == (4, 2)
    monkeypatch.setattr(trainer_mod, "build_task", real)
    assert train(tiny(4), tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True)["finished"]
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val" in r] == [0, 2, 4]


def test_train_checks_a_recipe_changed_in_python_and_leaves_the_callers_state(tmp_path):
    r = tiny(4)
    r.train.steps = -3
    with pytest.raises(ValueError, match=r"train.steps must be a whole number >= 1, got -3"):
        train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    r = tiny(2)
    r.train.threads = 1
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    assert torch.get_num_threads() == threads and torch.equal(torch.rand(3), expected)
