"""Trainer: tiny end-to-end run, exact resume, Ctrl-C and SIGTERM checkpoints, atomic writes, EMA, DDP."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from isp_collab.cli import main
from isp_collab.models import load_model
from isp_collab.training import load_recipe, train
from isp_collab.training import trainer as trainer_mod
from isp_collab.training.checkpoint import load_checkpoint, save_checkpoint
from isp_collab.training.config import Recipe

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "train" / "tiny.toml"


def tiny(steps: int = 4) -> Recipe:
    r = load_recipe(TINY)
    r.train.steps = steps
    return r


def test_tiny_recipe_trains_end_to_end(tmp_path):
    result = train(tiny(), tmp_path / "model", run_dir=tmp_path / "run", progress=False)
    assert result["finished"]
    model = load_model(tmp_path / "model")
    card = model.card
    assert (
        card["n_trained"] == 2 and card["task"] == "sharpen" and card["recipe_sha256"] and card["recipe_name"] == "tiny"
    )
    assert set(card["validation"]["restored"]) == {"sigma=1", "sigma=2", "sigma=3", "sigma=4"}
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("loss" in rec for rec in log) and any("val" in rec for rec in log)
    steps = [rec for rec in log if "loss" in rec]
    assert all(rec["grad_norm"] > 0 and 0 <= rec["clipped"] <= 1 for rec in steps)  # before clipping


def test_untrained_model_scores_exactly_the_blurry_input(tmp_path):
    r = tiny(1)
    r.train.lr = r.train.lr_min = 1e-12  # effectively no update
    r.train.warmup = 1
    res = train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    v = res["validation"]
    assert v["mean_psnr"] == pytest.approx(v["mean_blurry"], abs=1e-3)


def test_resume_continues_exactly(tmp_path):
    train(tiny(6), tmp_path / "a", run_dir=tmp_path / "ra", progress=False)
    part = train(tiny(6), tmp_path / "b", run_dir=tmp_path / "rb", progress=False, stop_after=3)
    assert part == {"step": 3, "finished": False}
    assert not (tmp_path / "b").exists()
    train(tiny(6), tmp_path / "b", run_dir=tmp_path / "rb", progress=False, resume=True)
    a = load_checkpoint(tmp_path / "ra" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "rb" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_existing_run_needs_resume_or_overwrite_and_resume_needs_a_run(tmp_path):
    train(tiny(2), tmp_path / "m", run_dir=tmp_path / "r", progress=False, stop_after=1)
    with pytest.raises(FileExistsError, match=r"an unfinished run is there .*--resume.*--run-dir DIR"):
        train(tiny(2), tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    train(tiny(2), tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True)
    with pytest.raises(
        FileExistsError, match=r"a finished run is there; pass --resume .* --overwrite .* or --run-dir DIR"
    ):
        train(tiny(2), tmp_path / "m2", run_dir=tmp_path / "r", progress=False)
    assert train(tiny(2), tmp_path / "m2", run_dir=tmp_path / "r", progress=False, overwrite=True)["finished"]
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(tiny(2), tmp_path / "m2", run_dir=tmp_path / "r2", progress=False, resume=True)


def acting_at_batch(call: int, act, after: bool = False):
    """A ``build_task`` whose task runs ``act()`` when its batch number ``call`` is drawn (``after``: once drawn)."""
    real = trainer_mod.build_task

    def build(recipe):
        task = real(recipe)
        calls = {"n": 0}
        sample = task.sample

        def sample_then_act(*a, **k):
            calls["n"] += 1
            if calls["n"] == call and not after:
                act()
            batch = sample(*a, **k)
            if calls["n"] == call and after:
                act()
            return batch

        task.sample = sample_then_act
        return task

    return build


def test_ctrl_c_writes_a_checkpoint(tmp_path, monkeypatch):
    real = trainer_mod.build_task

    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod, "build_task", acting_at_batch(3, interrupt))
    with pytest.raises(KeyboardInterrupt):
        train(tiny(10), tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    assert load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 2
    monkeypatch.setattr(trainer_mod, "build_task", real)
    assert train(tiny(10), tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True)["finished"]


def test_sigterm_writes_a_checkpoint_and_exits_143(tmp_path, monkeypatch, capsys):
    """kill (SIGTERM) a training run: the checkpoint is written as for Ctrl-C, exit code 128 + 15."""
    import signal

    monkeypatch.setattr(trainer_mod, "build_task", acting_at_batch(3, lambda: os.kill(os.getpid(), signal.SIGTERM)))
    before = signal.getsignal(signal.SIGTERM)
    args = ["train", str(TINY), "--steps", "10", "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r")]
    assert main([*args, "--no-progress"]) == 143
    assert load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is before
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})

    failures = [  # an OSError, and what torch.save raises on a full disk
        (OSError("disk full"), rf"^{re.escape(str(path))}: cannot write the checkpoint \(disk full\)$"),
        (
            RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598\nmore"),
            r"cannot write the checkpoint \(\[enforce fail .* 598\)$",
        ),
    ]
    for step, (error, message) in enumerate(failures, start=2):

        def failing_save(obj, f, error=error):
            Path(f).write_bytes(b"partial")
            raise error

        monkeypatch.setattr(torch, "save", failing_save)
        with pytest.raises(ValueError, match=message):
            save_checkpoint(path, {"step": step})
        assert load_checkpoint(path)["step"] == 1
        assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_fair_comparison_equal_patches_per_step():
    r = tiny()
    r.train.patches_per_step = 32
    for n, stacks in ((1, 32), (4, 8), (8, 4)):
        r.model.n = n
        assert r.stacks_per_step * n == 32 and r.stacks_per_step == stacks


def test_ddp_two_processes_on_cpu(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",  # a free port
           "-m", "isp_collab", "train", str(TINY), "--out", str(tmp_path / "m"),
           "--run-dir", str(tmp_path / "r"), "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = json.loads((tmp_path / "r" / "log.jsonl").read_text().splitlines()[0])
    assert start["world"] == 2
    assert load_model(tmp_path / "m").card["steps"] == 4


def test_init_warm_starts_n2_from_n1_weights(tmp_path):
    r1 = tiny(2)
    r1.model.n = 1
    r1.train.patches_per_step = 4
    train(r1, tmp_path / "n1", run_dir=tmp_path / "r1", progress=False)
    r2 = tiny(1)
    r2.train.lr = r2.train.lr_min = 1e-12
    r2.train.warmup = 1
    # perturbed weights: a fresh network of the same seed starts from the N=1 run's own initial trunk
    from isp_collab.models import save_model

    source = load_model(tmp_path / "n1")
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(source, tmp_path / "n1p", dict(source.card))
    res = train(r2, tmp_path / "n2", run_dir=tmp_path / "r2", progress=False, init=tmp_path / "n1p")
    assert load_model(tmp_path / "n2").card["initialised_from"] == str(tmp_path / "n1p")
    assert res["validation"]["mean_psnr"] != pytest.approx(res["validation"]["mean_blurry"], abs=1e-3)
    # what --init copies: every tensor but the collaboration layers, which keep [I | 0]
    from isp_collab.models import create_model

    n2 = create_model("unet-tx", n=2)
    trainer_mod.init_from(n2, tmp_path / "n1p")
    trunk = source.state_dict()
    for k, v in n2.state_dict().items():
        if not k.startswith("collab_"):
            torch.testing.assert_close(v, trunk[k], atol=0, rtol=0, msg=k)
    x = torch.rand(1, 2, 3, 16, 16)  # so the N=2 network restores each tile as the N=1 network does
    with torch.no_grad():
        expected = source.eval()(x.reshape(2, 1, 3, 16, 16)).reshape(x.shape)
        torch.testing.assert_close(n2.eval()(x), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"n1p: norm batch does not match the recipe's model.norm none"):
        trainer_mod.init_from(create_model("unet-tx", n=2, norm="none"), tmp_path / "n1p")


def test_the_log_records_the_gradient_norm_before_clipping(tmp_path):
    r = tiny(10)
    r.train.grad_clip = 1e-9  # every step clipped: the logged norm must be the one before
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    steps = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert steps and all(rec["clipped"] == 1.0 and rec["grad_norm"] > 1e-6 for rec in steps)


def test_mixed_noise_recipe_validates_with_demosaicking_noise(tmp_path):
    """noise = "mixed" trains on both noise kinds; validation stays on demosaicking noise (comparable runs)."""
    from isp_collab.training.tasks import build_task

    text = TINY.read_text()
    assert 'noise = "' not in text  # the tiny recipe uses the default noise
    recipe = tmp_path / "mixed.toml"
    recipe.write_text(text.replace("[data]\n", '[data]\nnoise = "mixed"\n'))
    task = build_task(load_recipe(recipe))
    assert "demosaic noise" in task.describe_validation()
    assert task.sample(2, torch.Generator().manual_seed(0)).info["demosaic"].shape[0] == 2
    lens = tmp_path / "lens.toml"
    lens.write_text(
        recipe.read_text().replace("n = 2", "n = 4").replace("tiles_per_image = 2\n", "") + '\n[task]\nname = "lens"\n'
    )
    with pytest.raises(ValueError, match="data.noise"):
        load_recipe(lens)
    kind = tmp_path / "kind.toml"
    kind.write_text(recipe.read_text().replace("[data]\n", '[data]\nnoise_kind_per = "stack"\n'))
    assert build_task(load_recipe(kind)).sampler.noise_kind_per == "stack"
    for text, reason in [
        (TINY.read_text().replace("[data]\n", '[data]\nnoise_kind_per = "stack"\n'), "noise = 'mixed'"),
        (recipe.read_text().replace("[data]\n", '[data]\nnoise_kind_per = "image"\n'), "data.noise_kind_per must be"),
    ]:
        kind.write_text(text)
        with pytest.raises(ValueError, match=reason):
            load_recipe(kind)


def test_ema_weights_are_validated_shipped_and_resumed_exactly(tmp_path):
    def ema_tiny(steps: int) -> Recipe:
        r = tiny(steps)
        r.train.ema = 0.9
        r.train.val_every = 6  # one validation, at the end: best.pt holds the final average
        return r

    train(ema_tiny(6), tmp_path / "a", run_dir=tmp_path / "ra", progress=False)
    train(ema_tiny(6), tmp_path / "b", run_dir=tmp_path / "rb", progress=False, stop_after=3)
    train(ema_tiny(6), tmp_path / "b", run_dir=tmp_path / "rb", progress=False, resume=True)
    a, b = load_checkpoint(tmp_path / "ra" / "last.pt"), load_checkpoint(tmp_path / "rb" / "last.pt")
    for k in a["ema"]:
        torch.testing.assert_close(a["ema"][k], b["ema"][k], rtol=0, atol=0, msg=k)
    live, shipped = a["model"], load_model(tmp_path / "a").state_dict()
    best = load_checkpoint(tmp_path / "ra" / "best.pt")["model"]
    averaged = {k.removeprefix("module."): v for k, v in a["ema"].items() if k.startswith("module.")}
    name = next(k for k in live if k.endswith("weight") and live[k].dtype == torch.float32)
    assert not torch.equal(live[name], averaged[name])  # the average lags the live weights
    for k in best:  # the validated and shipped weights are the average, not the live ones
        torch.testing.assert_close(best[k], averaged[k], rtol=0, atol=0, msg=k)
        torch.testing.assert_close(shipped[k], averaged[k], rtol=0, atol=0, msg=k)


def test_ema_decay_warms_up():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = trainer_mod.ema_of(model, 0.99)
    ema.update_parameters(model)  # first update copies: 0
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update_parameters(model)  # t = 1: decay min(0.99, 2/11), weight 9/11 on the new value
    assert ema.module.weight.item() == pytest.approx(9 / 11)


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda r: setattr(r.train, "ema", 0.9), "train.ema: 0.0 -> 0.9"),
        (lambda r: setattr(r.train, "steps", 3), "train.steps: 4 -> 3"),
        (lambda r: (setattr(r.model, "n", 4), setattr(r.val, "tiles_per_image", 4)), "model.n: 2 -> 4"),
        (lambda r: setattr(r.data, "images", ["elsewhere"]), "data.images: [] -> ['elsewhere']"),
    ],
)
def test_resume_refuses_other_settings_than_the_run(tmp_path, change, reason):
    """--resume continues *that* run: a changed recipe, --steps or --images is refused, nothing is written."""
    r = tiny(4)
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, stop_after=2)
    before = (tmp_path / "r" / "last.pt").read_bytes()
    change(r)
    with pytest.raises(ValueError, match=r"last.pt: the run was started with other settings \(" + re.escape(reason)):
        train(r, tmp_path / "m2", run_dir=tmp_path / "r", progress=False, resume=True)
    assert (tmp_path / "r" / "last.pt").read_bytes() == before and not (tmp_path / "m2").exists()


def test_recipe_changes_treats_keys_a_checkpoint_predates_as_their_defaults():
    from dataclasses import asdict

    from isp_collab.training.trainer import recipe_changes

    r = tiny(4)
    saved = asdict(r)
    del saved["data"]["noise_kind_per"]  # a run started before the key existed
    assert recipe_changes(saved, r) == []
    r.data.noise_kind_per = "stack"
    assert recipe_changes(saved, r) == ["data.noise_kind_per: 'patch' -> 'stack'"]


def test_a_non_finite_loss_stops_the_run_and_ships_nothing(tmp_path, monkeypatch):
    r = tiny(4)
    train(r, tmp_path / "m0", run_dir=tmp_path / "r", progress=False, stop_after=2)
    good = (tmp_path / "r" / "last.pt").read_bytes()
    monkeypatch.setattr(trainer_mod.F, "l1_loss", lambda a, b: (a - b).abs().mean() * float("nan"))
    with pytest.raises(ValueError, match=r"the loss became nan at step 3 .* holds the last finite checkpoint"):
        train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True)
    assert (tmp_path / "r" / "last.pt").read_bytes() == good and not (tmp_path / "m").exists()
