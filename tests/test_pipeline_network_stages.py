"""The collaborative network stages (Sharpen, LensCorrect): how they call restore, their checks of the model and
of their settings, and ONNX selection."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
from test_pipeline_stages import RAW, image

from isp_collab.pipeline import LensCorrect, Sharpen


def _fake_restore(calls):
    def restore(image, model, **kw):
        calls.append(kw)
        return image + 0.01

    module = types.ModuleType("isp_collab.restore")
    module.restore = restore
    return module


def test_collaborative_stages_call_restore_with_their_strategy(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setitem(sys.modules, "isp_collab.restore", _fake_restore(calls))
    frame = RAW.replace(optical_center=(10.0, 5.0))
    for stage in (Sharpen(n=4, tile=64), LensCorrect(n=4, center=None)):
        stage._runner = "runner"  # skip loading a network
        out = stage(image(), frame)
        assert out.dtype == np.float32
    assert calls[0]["strategy"] == "spread" and calls[0]["n"] == 4 and calls[0]["tile"] == 64
    assert calls[1]["strategy"] == "mirror" and calls[1]["center"] == (10.0, 5.0)
    assert RAW.center == (19.5, 11.5)  # image centre by default


def test_identity_model_through_restore(tmp_path):
    import torch

    torch.set_num_threads(1)
    from isp_collab.models import create_model, save_model

    net = create_model("unet-tx", n=4)
    sharpen_dir = save_model(net, tmp_path / "identity", {"task": "sharpen", "n_trained": 4})
    lens_dir = save_model(net, tmp_path / "identity-lens", {"task": "lens", "n_trained": 4})
    x = image(40, 72) * 0.8
    for stage in (
        Sharpen(model=str(sharpen_dir), tile=32, overlap=8),
        LensCorrect(model=str(lens_dir), tile=32, overlap=8),
    ):
        np.testing.assert_allclose(stage(x, RAW.replace(height=40, width=72)), x, atol=1e-5)


def test_collaborative_stage_refuses_a_model_of_another_task(tmp_path):
    import torch

    torch.set_num_threads(1)
    from isp_collab.models import create_model, save_model

    sharpen_dir = save_model(create_model("unet-tx", n=4), tmp_path / "s", {"task": "sharpen", "n_trained": 4})
    with pytest.raises(ValueError, match=r"s/card\.json: a 'sharpen' model cannot run the lens stage"):
        LensCorrect(model=str(sharpen_dir)).network()
    assert Sharpen(model=str(sharpen_dir)).network() is not None
    # ONNX: the export sidecar beside the file records the task; checked before the file is loaded
    onnx = tmp_path / "m-n4-t64.onnx"
    onnx.write_bytes(b"not an onnx file")
    (tmp_path / "m-n4-t64.json").write_text('{"model": {"name": "m", "task": "lens"}}')
    with pytest.raises(
        ValueError,
        match=r"m-n4-t64\.onnx: a 'lens' model \(task from m-n4-t64\.json\) cannot run the sharpen stage \(it needs "
        r"a 'sharpen' model\)$",
    ):
        Sharpen(backend="onnx", onnx_path=str(onnx)).network()
    with pytest.raises(ValueError, match=r"m-n4-t64\.onnx: cannot load ONNX model"):  # right task: loads it
        LensCorrect(backend="onnx", onnx_path=str(onnx)).network()
    (tmp_path / "m-n4-t64.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"m-n4-t64\.json: cannot read the ONNX model's sidecar"):
        LensCorrect(backend="onnx", onnx_path=str(onnx)).network()
    (tmp_path / "m-n4-t64.json").unlink()  # no sidecar: the task is unknown, so the file is refused
    with pytest.raises(ValueError, match=r"m-n4-t64\.onnx: no sidecar m-n4-t64\.json beside it, so the model's task"):
        Sharpen(onnx_path=str(onnx)).network()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Sharpen(n=0), r"sharpen\.n must be between 1 and 64, got 0"),
        (lambda: LensCorrect(n=65), r"lens\.n must be between 1 and 64, got 65"),
        (lambda: Sharpen(n=True), r"sharpen\.n must be an integer"),
        (lambda: Sharpen(tile=0), r"sharpen\.tile must be between 1 and 4096, got 0"),
        (lambda: Sharpen(tile=100_000), r"sharpen\.tile must be between 1 and 4096, got 100000"),
        (lambda: Sharpen(tile=64, overlap=40), r"sharpen\.overlap must be in \[0, tile // 2 = 32\], got 40"),
        (lambda: Sharpen(overlap=-1), r"sharpen\.overlap must be >= 0"),
        (lambda: Sharpen(detail="foo"), r"sharpen\.detail must be 'luma' or 'rgb'"),
        (lambda: LensCorrect(center=(1.0,)), r"lens\.center must be 2 numbers"),
    ],
)
def test_collaborative_stage_settings_are_checked_when_made(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_collaborative_stage_settings_are_checked_against_the_network(tmp_path):
    import torch

    torch.set_num_threads(1)
    from isp_collab.models import create_model, save_model

    model = str(save_model(create_model("unet-tx", n=4), tmp_path / "m", {"task": "sharpen", "n_trained": 4}))
    with pytest.raises(ValueError, match=r"sharpen\.tile must be a multiple of 8 .*got 20"):
        Sharpen(model=model, tile=20).network()
    with pytest.raises(ValueError, match=r"sharpen\.overlap must be in \[0, tile // 2 = 96\] \(tile 192, the default"):
        Sharpen(model=model, overlap=500).network()  # the default tile for N=4 on the CPU: 192
    with pytest.raises(ValueError, match=r"sharpen\.overlap must be in \[0, tile // 2 = 32\], got 500"):
        Sharpen(model=model, tile=64, overlap=500).network()
    assert Sharpen(model=model, tile=24, overlap=12).network() is not None  # the card says no patch: no warning


def test_tile_below_the_training_patch_is_warned_about(tmp_path):
    from isp_collab.models import create_model, save_model
    from isp_collab.pipeline import PipelineWarning

    card = {"task": "sharpen", "n_trained": 4, "patch": 32}
    model = str(save_model(create_model("unet-tx", n=4), tmp_path / "m", card))
    with pytest.warns(PipelineWarning, match=r"^sharpen\.tile 16 is smaller than the 32-px patches the model was"):
        Sharpen(model=model, tile=16).network()
    stage = Sharpen(model=model, tile=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PipelineWarning)
        stage.network()
    assert stage.trained_patch == 32
    stage._model_card = {"name": "x", "training": {"patch": 48}}  # an ONNX sidecar's model block
    assert stage.trained_patch == 48


def test_onnx_path_alone_selects_onnx_and_the_exported_model_must_match(tmp_path):
    onnx = tmp_path / "m-n4-t64.onnx"
    onnx.write_bytes(b"not an onnx file")
    (tmp_path / "m-n4-t64.json").write_text('{"model": {"name": "sharpen-unet-tx-n4", "task": "sharpen"}}')
    assert Sharpen().runtime == "torch" and Sharpen(onnx_path=str(onnx)).runtime == "onnx"
    with pytest.raises(ValueError, match=r"sharpen: onnx_path .*m-n4-t64\.onnx is set but backend is 'torch'"):
        Sharpen(backend="torch", onnx_path=str(onnx))
    with pytest.raises(ValueError, match=r"m-n4-t64\.onnx: cannot load ONNX model"):  # ONNX, not PyTorch, runs
        Sharpen(onnx_path=str(onnx)).network()
    with pytest.raises(ValueError, match=r"exported from 'sharpen-unet-tx-n4' .*not the model 'sharpen-unet-tx-n8'"):
        Sharpen(model="sharpen-unet-tx-n8", onnx_path=str(onnx)).network()
    with pytest.raises(ValueError, match=r"cannot load ONNX model"):  # the same model named: accepted
        Sharpen(model="models/sharpen-unet-tx-n4", onnx_path=str(onnx)).network()


def test_a_model_that_does_not_beat_its_blurry_input_is_run_and_said(tmp_path):
    from isp_collab.models import create_model, save_model
    from isp_collab.pipeline import PipelineWarning

    def model_scoring(name, restored, blurry):
        val = {"mean_psnr": restored, "mean_blurry": blurry}
        return save_model(
            create_model("unet-tx", n=4), tmp_path / name, {"task": "sharpen", "n_trained": 4, "validation": val}
        )

    with pytest.warns(PipelineWarning, match=r"worse: its validation \(30.99 dB\) does not beat the blurry input "):
        Sharpen(model=str(model_scoring("worse", 30.99, 31.0))).network()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Sharpen(model=str(model_scoring("better", 31.5, 31.0))).network()
        Sharpen(
            model=str(save_model(create_model("unet-tx", n=4), tmp_path / "none", {"task": "sharpen", "n_trained": 4}))
        ).network()


def test_a_setting_that_does_not_fit_the_model_stops_run_before_the_file_is_decoded(tmp_path, monkeypatch):
    """``Pipeline(sharpen=Sharpen(tile=100)).run(path)`` decoded the file first, then failed on the tile."""
    from isp_collab.pipeline import Pipeline, Sharpen
    from isp_collab.pipeline import pipeline as pipeline_module

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before the network was checked")

    monkeypatch.setattr(pipeline_module.Pipeline, "read", no_decoding)
    with pytest.raises(ValueError, match=r"tile must be a multiple of 8"):
        Pipeline(sharpen=Sharpen(tile=100)).run(tmp_path / "any.png")
