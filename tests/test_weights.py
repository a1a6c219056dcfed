"""Weights format: safetensors + card.json round trip, and one-line errors for bad files."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from isp_collab.cli import main
from isp_collab.models import WeightsError, create_model, load_model, save_model


@pytest.fixture
def saved(tmp_path):
    model = create_model("unet-tx", n=4)
    with torch.no_grad():
        model.outc.weight.normal_(0, 0.01)
    out = save_model(model, tmp_path / "m", {"task": "sharpen", "n_trained": 4})
    return model.eval(), out


def test_round_trip(saved):
    model, out = saved
    loaded = load_model(out)
    x = torch.rand(1, 4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert loaded.card["colour_space"] == "linear RGB" and loaded.card["package_version"]
    assert loaded.card["arch"] == "unet-tx" and len(loaded.card["weights_sha256"]) == 64


def _one_line_naming(err: Exception, name: str) -> None:
    msg = str(err)
    assert "\n" not in msg and name in msg


def test_truncated_weights(saved):
    _, out = saved
    w = out / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(WeightsError) as e:
        load_model(out)
    _one_line_naming(e.value, "model.safetensors")


def test_garbage_weights(saved):
    _, out = saved
    (out / "model.safetensors").write_bytes(b"not a safetensors file at all" * 10)
    with pytest.raises(WeightsError) as e:
        load_model(out)
    _one_line_naming(e.value, "model.safetensors")


def test_non_finite_weights_are_refused_naming_the_tensor(saved, tmp_path, capsys):
    model, out = saved
    with torch.no_grad():
        model.outc.weight[0, 0, 0, 0] = float("inf")
    bad = save_model(model, tmp_path / "inf", {"task": "sharpen", "n_trained": 4})
    with pytest.raises(WeightsError, match=r"tensor outc\.weight holds NaN or infinite values") as e:
        load_model(bad)
    _one_line_naming(e.value, "model.safetensors")
    args = ["export", "--model", str(bad), "--format", "onnx", "--precision", "fp32", "--out", str(tmp_path / "o")]
    assert main(args) == 2 and "holds NaN or infinite values" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_weights(saved):
    _, out = saved
    (out / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="missing weights") as e:
        load_model(out)
    _one_line_naming(e.value, "model.safetensors")


def test_card_does_not_match_tensors(saved):
    _, out = saved
    card = json.loads((out / "card.json").read_text())
    card["arch"], card["width"] = "unet-ts", 32
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="shape|match") as e:
        load_model(out)
    _one_line_naming(e.value, "model.safetensors")


def test_card_says_n1_but_tensors_are_collaborative(saved):
    _, out = saved
    card = json.loads((out / "card.json").read_text())
    card["collaborative"], card["n_trained"] = False, 1
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="do not match the card"):
        load_model(out)


def test_bad_card_json(saved):
    _, out = saved
    (out / "card.json").write_text("{oops")
    with pytest.raises(WeightsError) as e:
        load_model(out)
    _one_line_naming(e.value, "card.json")


@pytest.mark.parametrize(
    "key, value",
    [
        ("n_trained", None),
        ("n_trained", "four"),
        ("n_trained", 0),
        ("n_trained", True),
        ("depth", None),
        ("depth", 99),
        ("width", 0),
        ("arch", {"a": 1}),
        ("pooling", "avg"),
        ("merge", 3),
        ("collaborative", "yes"),
        ("name", "../evil"),  # it names the exported files: export wrote outside its folder
        ("name", "sub/evil"),
        ("name", 3),
    ],
)
def test_malformed_card_value_is_one_line_naming_the_card(saved, key, value):
    _, out = saved
    card = json.loads((out / "card.json").read_text())
    card[key] = value
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=key if key != "arch" else "architecture") as e:
        load_model(out)
    _one_line_naming(e.value, "card.json")


def test_process_with_a_malformed_card_exits_2_naming_it(saved, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    _, out = saved
    card = json.loads((out / "card.json").read_text())
    card["n_trained"] = None
    (out / "card.json").write_text(json.dumps(card))
    src = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)).save(src)
    assert main(["process", str(src), "-o", str(tmp_path / "out.png"), "--model", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "card.json" in err and "n_trained" in err and "\n" not in err
    assert not (tmp_path / "out.png").exists()


def test_unknown_model_name():
    with pytest.raises(WeightsError, match="no such model"):
        load_model("no-such-model-xyz")


def test_an_empty_name_is_refused_and_the_card_path_loads_like_the_weights_path(saved, monkeypatch):
    _, out = saved
    monkeypatch.chdir(out.parent)  # was: the current folder, "card.json: missing model card"
    with pytest.raises(WeightsError, match=r"^empty model name: pass a shipped model \(.*sharpen-unet-tx-n4.*\) or a"):
        load_model("")
    for path in (out / "card.json", out / "model.safetensors"):  # the card was "no such model folder"
        assert load_model(path).card["n_trained"] == 4 and load_model(str(path)).card["n_trained"] == 4


def test_info_cli_prints_table(capsys):
    assert main(["info", "--n", "8"]) == 0
    out = capsys.readouterr().out
    from isp_collab.models.complexity import count_params

    n1, n8 = (count_params(create_model("unet-tx", n=n)) for n in (1, 8))
    assert re.search(rf"^unet-tx +N=1 +{n1:,} ", out, re.MULTILINE), out
    assert re.search(rf"^unet-tx +N=8 +{n8:,} ", out, re.MULTILINE), out  # the rows name the N they were counted at
    assert n8 > n1  # the collaboration layers


def test_info_lists_every_model_when_one_card_is_broken(tmp_path, capsys, monkeypatch):
    import shutil

    import isp_collab.models.weights as weights

    for name in ("good", "bad", "null"):
        shutil.copytree(weights.models_dir() / "sharpen-unet-tx-n1", tmp_path / name)
    (tmp_path / "bad" / "card.json").write_text("{not json")
    (tmp_path / "null" / "card.json").write_text("null")  # valid JSON, not a card
    monkeypatch.setenv("ISP_COLLAB_MODELS", str(tmp_path))
    assert main(["info"]) == 2
    out, err = capsys.readouterr()
    assert re.search(r"^  bad +unreadable card: .*card\.json", out, re.MULTILINE), out
    assert re.search(r"^  good +task=sharpen", out, re.MULTILINE) and "unet-tx" in out, out  # the report goes on
    assert re.search(r"^  null +unreadable card: ", out, re.MULTILINE), out
    assert err.strip() == "isp-collab info: error: 2 model card(s) unreadable: bad, null (see above)"
    monkeypatch.setenv("ISP_COLLAB_MODELS", str(tmp_path / "nowhere"))
    assert main(["info"]) == 2
    assert "nowhere: ISP_COLLAB_MODELS names no folder" in capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "1", "65", "1000000"])
def test_info_refuses_a_stack_out_of_range_before_printing(capsys, n):
    assert main(["info", "--n", n]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"--n {n}: the stack size" in captured.err


@pytest.mark.parametrize("name", __import__("isp_collab.models", fromlist=["x"]).shipped_models())
def test_shipped_model_loads_matches_its_hash_and_beats_blurry_everywhere(name):
    from isp_collab.models.weights import file_sha256, models_dir

    model = load_model(name)
    card = model.card
    assert card["weights_sha256"] == file_sha256(models_dir() / name / "model.safetensors")
    val = card["validation"]
    for cond, psnr in val["restored"].items():
        assert psnr > val["blurry"][cond] + 0.3, f"{name} does not beat its blurry input at {cond}"
    # and the weights themselves restore: run on stacks of the committed benchmark photos, blurred as the
    # model's task blurs (its lens's PSF field and mirror tiles for a lens model, a Gaussian otherwise)
    from isp_collab.export import api
    from isp_collab.export.calibration import validation_stacks

    lens = api._lens_blur(api._sidecar_model_block(model, models_dir() / name), models_dir() / name)
    assert (lens is not None) == (card["task"] == "lens")
    if lens is not None:  # the export checks a lens model on its own lens's stacks, aligned as it was trained
        from isp_collab.export.calibration import LensBlur

        assert lens == LensBlur(card["lens"], card.get("align", True))
    stacks = validation_stacks(card["n_trained"], 64, 2, seed=1, lens=lens)
    with torch.no_grad():
        restored = [model(torch.from_numpy(s.blurry)).numpy() for s in stacks]
    mse = lambda a, b: float(np.mean((a - b) ** 2))  # noqa: E731
    gain_db = 10 * np.log10(
        sum(mse(s.blurry, s.sharp) for s in stacks)
        / sum(mse(r, s.sharp) for r, s in zip(restored, stacks, strict=True))
    )
    assert gain_db > 0.5, f"{name} restores its stacks by only {gain_db:+.2f} dB"


def _consistent(out):
    from isp_collab.models.weights import file_sha256

    card = json.loads((out / "card.json").read_text())
    return card["weights_sha256"] == file_sha256(out / "model.safetensors"), card


def test_save_model_replaces_the_folder_as_a_whole(saved, monkeypatch):
    """A crash while replacing a model leaves the old weights with their card, never new weights with an old card."""
    from isp_collab.models import weights

    model, out = saved
    before = (out / "model.safetensors").read_bytes()
    with torch.no_grad():
        model.outc.weight.add_(1.0)

    def crash(path):
        raise OSError("disk full")

    monkeypatch.setattr(weights, "file_sha256", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, out, {"task": "sharpen", "n_trained": 4})
    monkeypatch.undo()
    assert (out / "model.safetensors").read_bytes() == before and _consistent(out)[0]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]  # no temp folder left behind


def test_save_model_drops_stale_files_and_keeps_a_working_folders_own(saved, tmp_path):
    model, out = saved
    save_model(model, out, {"task": "sharpen", "n_trained": 4}, extra_files={"train_log.jsonl": "{}\n"})
    assert (out / "train_log.jsonl").read_text() == "{}\n"
    assert oct((out / "train_log.jsonl").stat().st_mode & 0o777) == oct(0o644)
    save_model(model, out, {"task": "sharpen", "n_trained": 4, "note": "second"})
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "model.safetensors"]  # the old log went
    ok, card = _consistent(out)
    assert ok and card["note"] == "second"
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    save_model(model, work, {"task": "sharpen", "n_trained": 4})
    assert (work / "notes.txt").read_text() == "mine" and _consistent(work)[0]


def test_save_model_refuses_a_card_with_nan(tmp_path):
    with pytest.raises(ValueError, match=r"card.json: the card holds NaN or infinity; nothing written"):
        save_model(create_model("unet-tx", n=4), tmp_path / "m", {"validation": {"mean_psnr": float("nan")}})
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []


def _round_trips_and_needs_its_key(model, out: Path, key: str) -> Path:
    """Saved and loaded, ``model`` gives the same output; its card without ``key`` (a card written before the
    option existed: the default network, so the tensors disagree) is refused. Returns the model folder."""
    out = save_model(model, out, {"task": "sharpen", "n_trained": 4})
    loaded = load_model(out)
    assert getattr(loaded.config, key) == getattr(model.config, key) == loaded.card[key]
    x = torch.rand(1, 4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x))
    card = json.loads((out / "card.json").read_text())
    del card[key]
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="card.json|tensors"):
        load_model(out)
    return out


def test_film_merge_round_trips_and_old_cards_default_to_concat(tmp_path):
    model = create_model("unet-tx", n=4, merge="film")
    with torch.no_grad():
        model.outc.weight.normal_(0, 0.01)
        for layer in model.collab_down:
            layer.scale.weight.normal_(0, 0.1)
    _round_trips_and_needs_its_key(model, tmp_path / "film", "merge")


def test_no_norm_round_trips_and_old_cards_default_to_batchnorm(tmp_path):
    model = create_model("unet-tx", n=4, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        model.outc.weight.normal_(0, 0.01)
    out = _round_trips_and_needs_its_key(model, tmp_path / "plain", "norm")
    card = json.loads((out / "card.json").read_text())
    card["norm"] = "group"
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=r"card.json: norm must be one of batch, none, got 'group'"):
        load_model(out)


def test_info_into_a_closed_pipe_is_quiet():
    """``isp-collab info | head -1``: the reader leaves early; no error line, exit as SIGPIPE would (141)."""
    import subprocess
    import sys

    code = "import sys; from isp_collab.cli import main; sys.exit(main(['info']))"
    # PIPESTATUS[0]: the Python side's exit code, not head's
    script = f'{sys.executable} -c "{code}" | head -c 10; exit ${{PIPESTATUS[0]}}'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 141 and len(proc.stdout) == 10, (proc.returncode, proc.stderr)
    assert "Broken pipe" not in proc.stderr and "error" not in proc.stderr, proc.stderr


def test_shipped_models_lists_only_visible_folders_with_weights_and_card(saved, tmp_path, monkeypatch):
    from isp_collab.models.weights import shipped_models

    _, out = saved  # tmp_path / "m": weights and card
    zoo = tmp_path / "zoo"
    for name in ("good", ".hidden", "no-card", "no-weights"):
        (zoo / name).mkdir(parents=True)
        for f in ("model.safetensors", "card.json"):
            if not (name == "no-card" and f == "card.json") and not (name == "no-weights" and f != "card.json"):
                (zoo / name / f).write_bytes((out / f).read_bytes())
    monkeypatch.setenv("ISP_COLLAB_MODELS", str(zoo))
    assert shipped_models() == ["good"]
    monkeypatch.setenv("ISP_COLLAB_MODELS", str(tmp_path / "absent"))
    assert shipped_models() == []  # no folder: no models, not an error


def test_a_relative_folder_path_is_a_folder_before_a_shipped_name(saved, tmp_path, monkeypatch):
    from isp_collab.models.weights import resolve_model_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ISP_COLLAB_MODELS", str(tmp_path / "absent"))
    assert resolve_model_dir("m") == Path("m")
    assert load_model("m").card["n_trained"] == 4


def test_a_folder_name_may_hold_spaces_but_no_separator_or_control_character():
    from isp_collab.models.weights import is_folder_name

    assert is_folder_name("my model ~1") and is_folder_name("...")
    for bad in ("", ".", "..", "a/b", "a\\b", "a\x1fb", "a\x7fb", "a\nb", None, 3):
        assert not is_folder_name(bad), repr(bad)


@pytest.mark.parametrize("n", [1, 2])
def test_a_card_without_collaborative_is_collaborative_when_trained_at_n_above_1(tmp_path, n):
    out = save_model(create_model("unet-tx", n=n), tmp_path / "m", {"task": "sharpen", "n_trained": n})
    card = json.loads((out / "card.json").read_text())
    assert card.pop("collaborative") is (n > 1)
    (out / "card.json").write_text(json.dumps(card))  # a card written before the key
    assert load_model(out).config.collaborative is (n > 1)
