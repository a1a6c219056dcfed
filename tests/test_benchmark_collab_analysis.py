"""Analysis scripts of the sharpening collaboration gain: known_blur, known_blur_conditioned, stack_effect."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "known_blur.py"
spec = importlib.util.spec_from_file_location("known_blur", SCRIPT)
known_blur = importlib.util.module_from_spec(spec)
spec.loader.exec_module(known_blur)


def _run(folder: Path, curve: list[tuple[float, float]], log: str = "log.jsonl") -> Path:
    """A run whose validations give (sigma=1, sigma=2) PSNR pairs, blurry 30 / 29."""
    folder.mkdir(parents=True)
    lines = [{"step": 0, "val": {"mean_psnr": 29.5}}, {"step": 5, "loss": 0.1}]
    for i, (a, b) in enumerate(curve):
        val = {"restored": {"sigma=1": a, "sigma=2": b}, "blurry": {"sigma=1": 30.0, "sigma=2": 29.0}}
        lines.append({"step": 100 * (i + 1), "val": {**val, "mean_psnr": (a + b) / 2, "mean_blurry": 29.5}})
    (folder / log).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def test_headroom_and_share_per_sigma(tmp_path):
    n1 = _run(tmp_path / "n1", [(33.0, 32.0), (34.0, 33.0), (33.9, 32.9)], log="train_log.jsonl")  # a model folder
    n4 = _run(tmp_path / "n4", [(34.5, 32.8), (34.2, 33.2)])  # best mean at step 200: 34.2 / 33.2
    # the sigma=1 specialist is best *at sigma=1* at step 100 even though its mean is better later
    s1 = _run(tmp_path / "s1", [(35.0, 20.0), (34.8, 30.0)])
    s2 = _run(tmp_path / "s2", [(31.0, 33.5), (30.0, 33.8)])
    table = known_blur.known_blur_table([n1, n4], known_blur.parse_known(["1=" + str(s1), "2.0=" + str(s2)]))
    row1, row2 = table.splitlines()[2:4]
    assert row1 == "| sigma=1 | 30.00 | 34.00 | 34.20 | 35.00 (step 100) | +1.00 | +0.20 (20%) |"
    assert row2 == "| sigma=2 | 29.00 | 33.00 | 33.20 | 33.80 (step 200) | +0.80 | +0.20 (25%) |"


def test_gains_with_told_pairs_and_plot(tmp_path):
    n1 = _run(tmp_path / "n1", [(34.0, 33.0)])
    n4 = _run(tmp_path / "n4", [(34.3, 33.1)])
    spec = _run(tmp_path / "s1", [(35.0, 20.0)])
    pairs = [
        (_run(tmp_path / "t0", [(34.0, 33.4)]), _run(tmp_path / "b0", [(34.0, 33.0)])),
        (_run(tmp_path / "t1", [(34.2, 33.0)]), _run(tmp_path / "b1", [(34.0, 33.0)])),
    ]
    g = known_blur.gains([n1, n4], known_blur.parse_known([f"1={spec}"]), pairs)
    assert list(g) == ["sigma=1"]
    told = g["sigma=1"]["one network told the blur, over itself blind, mean of 2 pairs"]
    assert told == pytest.approx(0.1)  # (0.0 + 0.2) / 2 at sigma=1
    assert g["sigma=1"]["n4"] == pytest.approx(0.3) and g["sigma=1"]["one network per σ (known blur)"] == 1.0
    png = known_blur.plot_gains(g, "n1", tmp_path / "gains.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_are_errors(tmp_path, refused):
    n1 = _run(tmp_path / "n1", [(33.0, 32.0)])
    with refused("expected SIGMA=RUN_FOLDER"):
        known_blur.parse_known(["two=runs/x"])
    with refused("sigma=3 is not a validation condition"):
        known_blur.known_blur_table([n1], known_blur.parse_known(["3=" + str(n1)]))
    with refused("not a training run or model folder"):
        known_blur.validations(tmp_path / "nothing")


def _load(name: str):
    path = SCRIPT.parent / f"{name}.py"
    s = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(s)
    s.loader.exec_module(module)
    return module


def test_told_network_starts_as_the_identity_and_covariance_is_the_blur_s():
    import torch

    told = _load("known_blur_conditioned")
    # an isotropic blur has no orientation; swapping the axes is a quarter turn
    iso = told.covariance(torch.tensor([[2.0, 2.0], [2.0, 2.0]]), torch.tensor([0.0, 1.1]))
    assert torch.allclose(iso[0], iso[1]) and torch.allclose(iso[0], torch.tensor([0.25, 0.25, 0.0]))
    a = told.covariance(torch.tensor([[3.0, 1.0]]), torch.tensor([0.3]))
    b = told.covariance(torch.tensor([[1.0, 3.0]]), torch.tensor([0.3 + torch.pi / 2]))
    assert torch.allclose(a, b, atol=1e-6)
    net = told.ToldUNet("unet-tx")
    x = torch.rand(2, 1, 3, 16, 16)
    assert torch.equal(net(x, torch.rand(2, 3)), x)  # zero output conv: untrained = identity, told or not


def test_across_photos_regroups_every_stack_over_different_photos(refused):
    import torch

    from isp_collab.training.validation import ValGroup

    stack_effect = _load("stack_effect")
    photos, per_photo = 5, 4
    ids = torch.arange(photos).repeat_interleave(per_photo).float()  # tile value = its photo
    tiles = ids[:, None, None, None].expand(-1, 3, 2, 2).clone()
    out = stack_effect.across_photos({"sigma=1": ValGroup(tiles, tiles + 10, per_photo)}, 4)["sigma=1"]
    assert out.group == 4 and sorted(out.blurry[:, 0, 0, 0].tolist()) == sorted(ids.tolist())  # same tiles
    for stack in out.blurry[:, 0, 0, 0].reshape(-1, 4):
        assert len(set(stack.tolist())) == 4  # four photos in every stack
    assert torch.equal(out.sharp, out.blurry + 10)  # pairs kept together
    with refused("cannot fill stacks of 8"):
        stack_effect.across_photos({"sigma=1": ValGroup(tiles, tiles, per_photo)}, 8)
