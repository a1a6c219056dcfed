"""``isp-collab process``: option checks (ONNX backend, stack and tile bounds, config values, options for
stages that do not run): one line naming the flag or the file, exit 2, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pipeline_cli import make_inputs, run


@pytest.fixture
def inputs(tmp_path) -> Path:
    return make_inputs(tmp_path)


def _fake_onnx(folder: Path, task: str) -> Path:
    """An .onnx path with an export sidecar recording ``task`` (the file itself is not a valid model)."""
    onnx = folder / f"{task}-n4-t64.onnx"
    onnx.write_bytes(b"not an onnx model")
    onnx.with_suffix(".json").write_text(json.dumps({"model": {"name": task, "task": task}}))
    return onnx


def test_onnx_option_names_a_core_ml_package_for_what_it_is(capsys, tmp_path, inputs):
    package = tmp_path / "sharpen-n4-t64.mlpackage"
    (package / "Data").mkdir(parents=True)
    package.with_suffix(".json").write_text(json.dumps({"model": {"name": "sharpen", "task": "sharpen"}}))
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", "--onnx", package)
    assert code == 2 and len(err) == 1, err
    assert err[0].endswith(f"{package}: is a Core ML package, not an ONNX model file (.onnx)"), err
    assert not (tmp_path / "x.png").exists()


def test_onnx_option_checks_backend_stages_and_task(capsys, tmp_path, inputs):
    src, dst = inputs / "good.png", tmp_path / "x.png"
    sharpen = _fake_onnx(tmp_path, "sharpen")
    code, err, _ = run(capsys, src, "-o", dst, "--onnx", sharpen, "--backend", "torch")
    assert code == 2 and len(err) == 1 and err[0].endswith("error: --onnx needs --backend onnx (got --backend torch)")
    # --onnx alone implies the ONNX backend: its sidecar's task is checked against the stage
    code, err, _ = run(capsys, src, "-o", dst, "--stages", "lens", "--onnx", sharpen)
    assert code == 2 and len(err) == 1, err
    assert "sharpen-n4-t64.onnx: a 'sharpen' model (task from sharpen-n4-t64.json) cannot run the lens stage" in err[0]
    assert err[0].endswith(f"; run it with --stages sharpen --onnx {sharpen}")  # the way out, named
    code, err, _ = run(capsys, src, "-o", dst, "--stages", "sharpen", "--onnx", sharpen)
    assert code == 2 and len(err) == 1 and "sharpen-n4-t64.onnx: cannot load ONNX model" in err[0], err
    # without --stages the file's own task picks the stage: a lens export runs the lens stage
    code, err, _ = run(capsys, src, "-o", dst, "--onnx", _fake_onnx(tmp_path, "lens"))
    assert code == 2 and len(err) == 1 and "lens-n4-t64.onnx: cannot load ONNX model" in err[0], err
    code, err, _ = run(capsys, src, "-o", dst, "--stages", "lens,sharpen", "--backend", "onnx", "--onnx", sharpen)
    assert code == 2 and len(err) == 1 and "lens and sharpen both run" in err[0] and "onnx_path" in err[0], err
    code, err, _ = run(capsys, src, "-o", dst, "--stages", "unsharp", "--onnx", sharpen)
    assert code == 2 and len(err) == 1 and "no lens or sharpen stage runs" in err[0], err
    # per stage, in the config: each file is checked against its own stage
    cfg = tmp_path / "p.toml"
    lens = _fake_onnx(tmp_path, "lens")
    cfg.write_text(
        f'[lens]\nbackend = "onnx"\nonnx_path = "{sharpen}"\n[sharpen]\nbackend = "onnx"\nonnx_path = "{lens}"\n'
    )
    code, err, _ = run(capsys, src, "-o", dst, "--config", cfg)
    assert (
        code == 2
        and len(err) == 1
        and "a 'sharpen' model (task from sharpen-n4-t64.json) cannot run the lens" in err[0]
    )
    assert not dst.exists()
    # onnx_path alone in the config selects ONNX Runtime, as --onnx does (it was silently ignored)
    cfg.write_text(f'[sharpen]\nonnx_path = "{sharpen}"\n')
    code, err, _ = run(capsys, src, "-o", dst, "--config", cfg)
    assert code == 2 and len(err) == 1 and "sharpen-n4-t64.onnx: cannot load ONNX model" in err[0], err
    code, err, _ = run(capsys, src, "-o", dst, "--config", cfg, "--backend", "torch")
    assert code == 2 and len(err) == 1 and "is set but backend is 'torch'" in err[0], err
    # --backend onnx needs a file; --model must name the model the file was exported from
    code, err, _ = run(capsys, src, "-o", dst, "--backend", "onnx")
    assert code == 2 and err[0].endswith(
        "--backend onnx: the sharpen stage needs --onnx PATH (or onnx_path in --config)"
    )
    code, err, _ = run(capsys, src, "-o", dst, "--onnx", sharpen, "--model", "sharpen-unet-tx-n8")
    assert code == 2 and len(err) == 1 and "exported from 'sharpen' (see sharpen-n4-t64.json), not the model" in err[0]
    code, err, _ = run(capsys, src, "-o", dst, "--stages", "")
    assert code == 2 and err[0].endswith("--stages: empty (name the stages, or 'none' to run no restoration)")
    assert not dst.exists()


def test_onnx_file_without_its_sidecar_is_refused(capsys, tmp_path, inputs):
    """Without the sidecar the task is unknown: a sharpening network would run as the lens stage unchecked."""
    onnx = _fake_onnx(tmp_path, "sharpen")
    onnx.with_suffix(".json").unlink()
    dst = tmp_path / "x.png"
    code, err, _ = run(capsys, inputs / "good.png", "-o", dst, "--stages", "lens", "--onnx", onnx)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"isp-collab process: error: {onnx}: no sidecar sharpen-n4-t64.json beside it"), err
    assert "task cannot be checked against the lens stage" in err[0] and '{"model": {"task": "lens"}}' in err[0]
    assert not dst.exists()
    missing = tmp_path / "nowhere.onnx"  # was reported as a missing sidecar
    code, err, _ = run(capsys, inputs / "good.png", "-o", dst, "--onnx", missing)
    assert code == 2 and err == [f"isp-collab process: error: {missing}: no such ONNX model file"], err


@pytest.mark.parametrize("n", ["0", "65", "100"])
def test_stack_size_is_bounded(capsys, tmp_path, inputs, n):
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", "--n", n)
    assert code == 2 and len(err) == 1 and err[0].endswith(f"error: --n must be between 1 and 64, got {n}")


@pytest.mark.parametrize("tile", ["0", "4097", "100000"])
def test_tile_is_bounded(capsys, tmp_path, inputs, tile):
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", "--tile", tile)
    assert code == 2 and len(err) == 1 and err[0].endswith(f"error: --tile must be between 1 and 4096, got {tile}")
    assert not (tmp_path / "x.png").exists()


def test_config_errors_stop_before_any_file_is_decoded(capsys, tmp_path, inputs, monkeypatch):
    import isp_collab.pipeline.pipeline as pp

    def no_decoding(*args, **kwargs):
        raise AssertionError("a file was decoded")

    monkeypatch.setattr(pp.Pipeline, "read", no_decoding)
    cfg = tmp_path / "p.toml"
    out = tmp_path / "out"
    for text, reason in [
        ('[sharpen]\ntile = "abc"\n', "p.toml: [sharpen] tile must be an integer, got 'abc'"),
        ("[lens]\ncenter = [1]\n", "p.toml: [lens] center must be a list of 2 numbers, got [1]"),
        ('[sharpen]\nenabled = "yes"\n', "p.toml: [sharpen] enabled must be true or false, got 'yes'"),
        ('[sharpen]\ndetail = "foo"\n', "p.toml: [sharpen] detail must be one of 'luma', 'rgb', got 'foo'"),
        (
            "[sharpen]\noverlap = 500\n",
            "p.toml: [sharpen] overlap must be in [0, tile // 2 = 96] (tile 192, the default tile for N=4), got 500",
        ),
        ("[sharpen]\ntile = 100\n", "p.toml: [sharpen] tile must be a multiple of"),
    ]:
        cfg.write_text(text)
        code, err, _ = run(capsys, inputs, "-o", out, "--config", cfg)
        assert code == 2 and len(err) == 1 and reason in err[0], (text, err)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--stages", "lens", "--model", "sharpen-unet-tx-n4"], "--model sharpen-unet-tx-n4: applies to the sharpen"),
        (["--stages", "unsharp", "--lens-model", "foo"], "--lens-model foo: applies to the lens stage"),
        (["--stages", "none", "--n", "4"], "--n 4: applies to the lens or sharpen stage, which does not run"),
        (["--stages", "unsharp", "--tile", "64"], "--tile 64: applies to the lens or sharpen stage"),
        (["--stages", "lens", "--strength", "0.5"], "--strength 0.5: applies to the sharpen stage, which does not run"),
    ],
)
def test_options_for_a_stage_that_does_not_run_are_refused(capsys, tmp_path, inputs, args, reason):
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", *args)
    assert code == 2 and len(err) == 1 and reason in err[0], err
    assert not (tmp_path / "x.png").exists()


def test_tile_below_the_training_patch_is_one_warning_line(capsys, tmp_path, inputs):
    """--tile 8 on a model trained on 32-px patches gives a visible block grid: said once, then processed."""
    import torch

    from isp_collab.models import create_model, save_model

    torch.set_num_threads(1)
    card = {"task": "sharpen", "n_trained": 4, "patch": 32}
    model = save_model(create_model("unet-tx", n=4), tmp_path / "m", card)
    src = inputs / "good.png"
    code, err, _ = run(capsys, src, "-o", tmp_path / "t8.png", "--model", model, "--tile", "8")
    assert code == 0 and (tmp_path / "t8.png").is_file()
    assert err == [
        "isp-collab process: warning: --tile 8 is smaller than the 32-px patches the model was trained on: "
        "expect a visible grid of tiles (use 32 or more)"
    ], err
    code, err, _ = run(capsys, src, "-o", tmp_path / "t32.png", "--model", model, "--tile", "32")
    assert code == 0 and err == [], err


def test_flag_values_the_network_refuses_are_named_by_their_flag(capsys, tmp_path, inputs):
    """``--tile 100`` is reported as ``--tile ...``; the same value from a config keeps the config's name."""
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", "--tile", "100")
    assert code == 2 and len(err) == 1, err
    assert "error: --tile must be a multiple of 8 (2**depth of the network), got 100" in err[0]
    (tmp_path / "p.toml").write_text("[sharpen]\ntile = 100\n")
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", "--config", tmp_path / "p.toml")
    assert code == 2 and "p.toml: [sharpen] tile must be a multiple of 8" in err[0], err
    assert not (tmp_path / "x.png").exists()


def test_config_paths_are_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    """A config's relative onnx_path / model folder are read beside the config, not in the current folder."""
    from isp_collab.pipeline import Pipeline

    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "p.toml"
    cfg.write_text('[sharpen]\nonnx_path = "exp.onnx"\n[lens]\nmodel = "./mine"\n[unsharp]\namount = 0.5\n')
    monkeypatch.chdir(tmp_path)
    p = Pipeline.from_toml("cfg/p.toml")
    assert p.sharpen.onnx_path == os.path.join("cfg", "exp.onnx")
    assert p.lens.model == os.path.join("cfg", "mine")
    (tmp_path / "cfg" / "bare").mkdir()  # a bare name that is a folder beside the config is that folder
    cfg.write_text('[sharpen]\nmodel = "bare"\nonnx_path = "~/x.onnx"\n')
    p = Pipeline.from_toml("cfg/p.toml")
    assert p.sharpen.model == os.path.join("cfg", "bare") and p.sharpen.onnx_path == os.path.expanduser("~/x.onnx")
    cfg.write_text(f'[sharpen]\nmodel = "sharpen-unet-tx-n8"\n[lens]\nonnx_path = "{tmp_path / "abs.onnx"}"\n')
    p = Pipeline.from_toml("cfg/p.toml")  # a shipped name and an absolute path stay as they are
    assert p.sharpen.model == "sharpen-unet-tx-n8" and p.lens.onnx_path == str(tmp_path / "abs.onnx")


def test_white_balance_and_exposure_flags(capsys, tmp_path, inputs):
    """--white-balance and --exposure-ev set the stages a --config would, and bad values are one line."""

    dng, outs = inputs / "good.dng", {}
    for label, args in (
        ("plain", ()),
        ("ev", ("--exposure-ev", "1")),
        ("none", ("--white-balance", "none")),
        ("gains", ("--white-balance", "2,1,1")),
    ):
        out = tmp_path / f"{label}.png"
        code, err, _ = run(capsys, dng, "-o", out, "--stages", "none", *args)
        assert code == 0, err
        outs[label] = cv2.imread(str(out)).astype(float)
    assert outs["ev"].mean() > outs["plain"].mean() + 5  # one stop brighter before the tone curve
    assert not np.array_equal(outs["none"], outs["plain"])
    assert outs["gains"][..., 2].mean() > outs["none"][..., 2].mean()  # red (BGR index 2) doubled
    for args, reason in (
        (("--white-balance", "1,x,2"), "--white-balance must be as_shot, gray_world, none or three positive gains"),
        (("--white-balance", "0,1,1"), "three positive gains R,G,B, got '0,1,1'"),
        (("--white-balance", "1e-300,1,1"), "gains R,G,B must be within 100x of each other"),  # was NaN per file
        (("--exposure-ev", "40"), "--exposure-ev must be between -16 and 16, got 40"),
    ):
        code, err, _ = run(capsys, dng, "-o", tmp_path / "bad.png", "--stages", "none", *args)
        assert code == 2 and len(err) == 1 and reason in err[0], err
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", "--white-balance", "none")
    assert code == 2 and "--white-balance none: applies to RAW inputs" in err[0]
    assert not (tmp_path / "bad.png").exists() and not (tmp_path / "x.png").exists()


def test_white_balance_flag_keeps_the_configs_other_white_balance_settings(tmp_path):
    from isp_collab.cli import build_parser
    from isp_collab.cli.process import build_pipeline

    config = tmp_path / "p.toml"
    config.write_text("[white_balance]\nclip = false\n")
    for flag, mode, gains in (("none", "none", None), ("2,1,1.5", "as_shot", (2.0, 1.0, 1.5))):
        args = build_parser().parse_args(
            ["process", "x.dng", "-o", "y.png", "--config", str(config), "--white-balance", flag]
        )
        wb = build_pipeline(args).white_balance
        assert (wb.mode, wb.gains, wb.clip) == (mode, gains, False)


@pytest.mark.parametrize(
    ("section", "flag", "value"), [("white_balance", "--white-balance", "2,1,1.5"), ("tone", "--exposure-ev", "2")]
)
def test_a_flag_for_a_stage_the_config_turns_off_is_refused(capsys, tmp_path, inputs, section, flag, value):
    """Flags win over the file, so a flag the run would ignore (its stage off in --config) is one line, exit 2."""
    config = tmp_path / "off.toml"
    config.write_text(f"[{section}]\nenabled = false\n")
    out = tmp_path / "x.png"
    code, err, _ = run(capsys, inputs / "good.dng", "-o", out, "--stages", "none", "--config", config, flag, value)
    assert code == 2 and len(err) == 1, err
    assert f"{flag} {value}: the --config file turns the {section} stage off" in err[0]
    assert not out.exists()


def test_strength_scales_the_sharpening(capsys, tmp_path, inputs):
    """--strength 0 returns the input, 0.5 half the network's change, and values outside [0, 2] are one line."""
    from isp_collab.pipeline import Sharpen
    from isp_collab.pipeline.frame import Frame

    image = np.random.default_rng(1).random((40, 56, 3), dtype=np.float32)
    frame = Frame(source=tmp_path / "x.png", kind="rgb", height=40, width=56, bit_depth=8)
    full = Sharpen(tile=32).apply(image, frame)
    half = Sharpen(tile=32, strength=0.5).apply(image, frame)
    assert np.array_equal(Sharpen(tile=32, strength=0.0).apply(image, frame), image)
    np.testing.assert_allclose(half - image, 0.5 * (full - image), atol=1e-6)
    assert np.abs(full - image).max() > 1e-3  # the network does change the image
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "s.png", "--strength", "3")
    assert code == 2 and len(err) == 1 and "--strength must be in [0, 2]" in err[0]
    assert not (tmp_path / "s.png").exists()


def test_a_lens_model_trained_without_mirror_alignment_is_refused(capsys, tmp_path, inputs):
    """The lens stage flips mirror tiles into one orientation: a model trained on unflipped stacks would run on
    inputs unlike its training; one line, exit 2, nothing written."""
    from isp_collab.models import create_model, save_model

    card = {"task": "lens", "n_trained": 4, "lens": "lens-a", "align": False}
    unaligned = save_model(create_model("unet-tx", n=4), tmp_path / "unaligned", card)
    out = tmp_path / "x.png"
    code, err, _ = run(capsys, inputs / "good.png", "-o", out, "--stages", "lens", "--lens-model", unaligned)
    assert code == 2 and len(err) == 1 and "task.align = false" in err[0], err
    assert not out.exists()
    # the shipped N=1 lens models: their recipes say align = false, which changes nothing for single patches
    for name in ("lens-a-unet-tx-n1", "lens-b-unet-tx-n1"):
        code, err, _ = run(
            capsys, inputs / "good.png", "-o", out, "--stages", "lens", "--lens-model", name, "--overwrite"
        )
        assert code == 0 and out.is_file(), err


def test_a_lens_model_of_a_synthetic_lens_says_so_once(capsys, tmp_path, inputs):
    """On a photo from another lens such a model corrects the wrong aberrations (bridge.jpg: more fringes)."""
    from isp_collab.models import create_model, save_model

    net = create_model("unet-tx", n=4)
    synthetic = save_model(net, tmp_path / "synthetic", {"task": "lens", "n_trained": 4, "lens": "lens-a"})
    measured = save_model(net, tmp_path / "measured", {"task": "lens", "n_trained": 4, "lens": "mine.npz"})
    args = ["--stages", "lens", "--n", "4", "--tile", "16"]
    code, err, _ = run(
        capsys, inputs / "good.png", inputs / "good.dng", "-o", tmp_path / "a", *args, "--lens-model", synthetic
    )
    assert code == 0, err
    notes = [line for line in err if "synthetic lens 'lens-a'" in line]
    assert len(notes) == 1 and "Retrain for your own lens" in notes[0]
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "b.png", *args, "--lens-model", measured)
    assert code == 0 and not any("synthetic lens" in line for line in err), err
    code, err, _ = run(capsys, tmp_path / "missing.png", "-o", tmp_path / "c.png", *args, "--lens-model", synthetic)
    assert code == 2 and len(err) == 1 and "missing.png: no such file" in err[0], err  # the error alone, no note


def test_negative_values_in_any_notation_are_values_not_options():
    """argparse reads "-0.5" as a number but "-1e-1" or "-1,1,1" as an unknown option (usage and a puzzle)."""
    from isp_collab.cli import _join_negative_values

    assert _join_negative_values(["x", "--exposure-ev", "-1e-1", "--white-balance", "-1,1,1", "-o", "-.5"]) == [
        "x",
        "--exposure-ev=-1e-1",
        "--white-balance=-1,1,1",
        "-o",
        "-.5",
    ]
    assert _join_negative_values(["--exposure-ev=-2", "--compare", "a.png"]) == [
        "--exposure-ev=-2",
        "--compare",
        "a.png",
    ]
    # "--" ends the options: a bracketed exposure's file name is a file name
    assert _join_negative_values(["--compare", "--", "-1EV.jpg"]) == ["--compare", "--", "-1EV.jpg"]


def test_a_file_named_like_a_negative_number_after_the_end_of_options(capsys, tmp_path, inputs, monkeypatch):
    """-1EV.jpg (an exposure bracket) can only be named after "--": that was glued into "--=-1EV.jpg"."""
    import shutil

    shutil.copy(inputs / "good.png", tmp_path / "-1EV.png")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    code, err, _ = run(capsys, "--stages", "none", "-o", out, "--", "-1EV.png")
    assert code == 0 and (out / "-1EV.png").is_file(), err


def test_the_flags_reach_their_stages_over_the_config(tmp_path):
    """What each flag sets, read back from the pipeline it builds (a flag dropped on the way was unnoticed: the
    refusal tests pass whether or not a valid value is used)."""
    from isp_collab.cli import build_parser
    from isp_collab.cli.process import build_pipeline

    config = tmp_path / "p.toml"
    config.write_text('[sharpen]\nn = 8\ntile = 128\n[lens]\nn = 8\n[demosaic]\nmethod = "opencv_ea"\n')
    argv = ["--model", "m1", "--lens-model", "m2", "--n", "2", "--tile", "64", "--strength", "0.5"]
    argv += ["--demosaic", "bilinear", "--max-pixels", "1000", "--stages", "sharpen,lens"]
    p = build_pipeline(build_parser().parse_args(["process", "x.dng", "-o", "y.png", "--config", str(config), *argv]))
    assert (p.sharpen.enabled, p.sharpen.model, p.sharpen.n, p.sharpen.tile, p.sharpen.strength) == (
        True,
        "m1",
        2,
        64,
        0.5,
    )
    assert (p.lens.enabled, p.lens.model, p.lens.n, p.lens.tile) == (True, "m2", 2, 64)
    assert not p.unsharp.enabled and p.demosaic.method == "bilinear" and p.max_pixels == 1000
    plain = build_pipeline(build_parser().parse_args(["process", "x.dng", "-o", "y.png", "--config", str(config)]))
    assert (plain.sharpen.n, plain.sharpen.tile, plain.demosaic.method) == (8, 128, "opencv_ea")  # the file's


def test_demosaic_flag_changes_the_image(capsys, tmp_path, inputs):
    outs = {}
    for method in ("malvar", "bilinear"):
        out = tmp_path / f"{method}.png"
        code, err, _ = run(capsys, inputs / "good.dng", "-o", out, "--stages", "none", "--demosaic", method)
        assert code == 0, err
        outs[method] = cv2.imread(str(out)).astype(int)
    code, err, _ = run(capsys, inputs / "good.dng", "-o", tmp_path / "default.png", "--stages", "none")
    assert code == 0, err
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "default.png")), outs["malvar"])  # the default
    assert np.abs(outs["bilinear"] - outs["malvar"]).max() > 10
