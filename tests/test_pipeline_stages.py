"""Pipeline stages: the (image, frame) -> image protocol, colour maths, and the collaborative stages."""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from isp_collab.bench.pipeline import mosaic_rgb
from isp_collab.pipeline import (
    CFA_PATTERNS,
    ColorCorrect,
    Demosaic,
    Frame,
    LensCorrect,
    Linearize,
    Pipeline,
    Sharpen,
    Tone,
    UnsharpMask,
    WhiteBalance,
    apply_orientation,
    demosaic,
    linear_to_srgb,
    srgb_to_linear,
)
from isp_collab.pipeline.stages import gray_world_gains, highlight_safe_gains

RAW = Frame(
    source=Path("x.dng"),
    kind="raw",
    height=24,
    width=40,
    bit_depth=12,
    cfa_pattern="RGGB",
    wb_gains=(2.0, 1.0, 1.5),
    cam_to_srgb=((1.6, -0.4, -0.2), (-0.2, 1.5, -0.3), (0.0, -0.5, 1.5)),
)
RGB = Frame(source=Path("x.png"), kind="rgb", height=24, width=40, bit_depth=8)


def image(h=24, w=40, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize(
    "stage", [Linearize(), WhiteBalance(), UnsharpMask(), ColorCorrect(), Tone(), Sharpen(), LensCorrect()]
)
def test_disabled_stage_is_identity(stage):
    stage.enabled = False
    x = image()
    assert stage(x, RAW) is x


@pytest.mark.parametrize("stage", [WhiteBalance(), UnsharpMask(), ColorCorrect(), Tone()])
@pytest.mark.parametrize("frame", [RAW, RGB])
def test_stage_keeps_shape_and_dtype(stage, frame):
    out = stage(image(), frame)
    assert out.shape == (24, 40, 3) and out.dtype == np.float32


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 3), np.float64), np.zeros((4, 4, 4), np.float32)]
)
def test_stage_rejects_wrong_images(bad):
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) float32 image"):
        Tone()(bad, RAW)


@pytest.mark.parametrize("bits", [8, 16])
def test_linearize_then_tone_is_exact_after_quantisation(bits):
    peak = 2**bits - 1
    v = np.arange(peak + 1, dtype=np.float32) / peak
    x = np.stack([v, v[::-1], v], axis=-1)[None]
    back = Tone()(Linearize()(x, RGB), RGB)
    np.testing.assert_array_equal(np.round(back * peak), np.round(x * peak))


def test_srgb_curve_matches_the_standard():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    ref = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(srgb_to_linear(x), ref, atol=1e-6)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)


def test_colour_stages_skip_ordinary_images():
    x = image()
    for stage in (WhiteBalance(), ColorCorrect()):
        np.testing.assert_array_equal(stage(x, RGB), x)
    np.testing.assert_array_equal(Linearize()(x, RAW), x)


def test_white_balance_and_colour_matrix():
    x = image() * 0.4
    np.testing.assert_allclose(WhiteBalance()(x, RAW), np.clip(x * [2.0, 1.0, 1.5], 0, 1), rtol=1e-6)
    np.testing.assert_allclose(ColorCorrect()(x, RAW), x @ RAW.ccm.T, atol=1e-6)
    grey = np.full((4, 4, 3), 0.3, np.float32)  # rows sum to 1: grey stays grey
    np.testing.assert_allclose(ColorCorrect()(grey, RAW), grey, atol=1e-6)


def test_saturated_highlights_stay_white_when_a_gain_is_below_one():
    """Gains normalised to G = 1 can put B at 0.836: sensor white must come out white, not cream."""
    frame = RAW.replace(wb_gains=(1.16, 1.0, 0.836))
    x = np.array([[[1.0, 1.0, 1.0], [0.2, 0.3, 0.4]]], np.float32)
    out = WhiteBalance()(x, frame)
    np.testing.assert_array_equal(out[0, 0], [1.0, 1.0, 1.0])
    balanced = np.array([0.2, 0.3, 0.4]) * [1.16, 1.0, 0.836] / 0.836  # the balance is kept, the smallest gain is 1
    np.testing.assert_allclose(out[0, 1], balanced, rtol=1e-6)
    assert highlight_safe_gains((2.0, 1.0, 1.5)) == (2.0, 1.0, 1.5)  # the usual case (no gain below 1): unchanged
    assert highlight_safe_gains((0.5, 1.0, 2.0)) == (1.0, 2.0, 4.0)


def test_clipped_sensor_area_is_neutral_white_through_the_pipeline(tmp_path):
    """A headerless dump with a blown half: the blown half is (1, 1, 1) in the output whatever the gains."""
    from test_pipeline_io import description, write_headerless

    mosaic = np.full((32, 48), 400)
    mosaic[:, :24] = 1023  # the sensor's white level
    ccm = [[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]]
    for gains in ([1.16, 1.0, 0.836], [0.957, 1.0, 1.3], [2.0, 1.0, 1.5]):
        raw = write_headerless(tmp_path, mosaic, description(wb_gains_rgb=gains, ccm_cam_to_srgb=ccm))
        out = Pipeline().run(raw).image
        np.testing.assert_allclose(out[4:-4, 4:18], 1.0, atol=1e-6, err_msg=str(gains))
        grey = out[4:-4, 30:-4].reshape(-1, 3)
        assert np.ptp(grey, axis=0).max() < 1e-5 and grey.max() < 0.99  # an unclipped flat area stays flat


def test_gray_world_ignores_whole_cells_where_one_channel_clips():
    """Green clips first: dropping clipped samples channel by channel read green low and turned greys green."""
    rgb = np.full((16, 16, 3), [0.2, 0.4, 0.1], np.float32)  # grey under a greenish illuminant
    rgb[:8] = [0.5, 1.0, 0.25]  # the same grey, brighter: green clips, red and blue do not
    gains = gray_world_gains(mosaic_rgb(rgb, "RGGB"), "RGGB")
    np.testing.assert_allclose(gains, (2.0, 1.0, 4.0), rtol=1e-5)  # per channel it was (1.14, 1, 2.29)


def test_white_balance_modes():
    mosaic = mosaic_rgb(np.full((8, 8, 3), [0.2, 0.4, 0.1], np.float32), "GRBG")
    np.testing.assert_allclose(gray_world_gains(mosaic, "GRBG"), (2.0, 1.0, 4.0), rtol=1e-5)
    none = RAW.replace(wb_gains=None, cfa_pattern="GRBG")
    with pytest.warns(UserWarning, match=r"x\.dng: no white balance"):
        assert WhiteBalance().resolve(none, mosaic).wb_source == "gray_world"
    assert WhiteBalance(mode="none").resolve(RAW, mosaic).wb_gains is None
    assert WhiteBalance(gains=(1.1, 1.0, 1.2)).resolve(RAW, mosaic).wb_gains == (1.1, 1.0, 1.2)
    assert WhiteBalance().resolve(RAW, mosaic) is RAW
    with pytest.raises(ValueError, match="mode"):
        WhiteBalance(mode="auto")


def test_unsharp_mask_keeps_flat_areas_and_boosts_edges():
    flat = np.full((32, 32, 3), 0.25, np.float32)
    np.testing.assert_allclose(UnsharpMask(amount=1.0)(flat, RAW), flat, atol=1e-6)
    step = flat.copy()
    step[:, 16:] = 0.75
    out = UnsharpMask(amount=1.0, sigma=1.5)(step, RAW)
    assert out[:, 15].max() < 0.25 and out[:, 16].min() > 0.75  # overshoot on both sides of the edge


def test_tone_curve_and_exposure():
    x = np.full((2, 2, 3), 0.25, np.float32)
    s = 3 * 0.25**2 - 2 * 0.25**3
    np.testing.assert_allclose(Tone(curve="smoothstep")(x, RAW), linear_to_srgb(np.full_like(x, s)), atol=1e-6)
    np.testing.assert_allclose(Tone(exposure_ev=1.0)(x, RAW), linear_to_srgb(np.full_like(x, 0.5)), atol=1e-6)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("method", ["malvar", "opencv_ea", "bilinear"])
def test_demosaic_keeps_measured_samples_and_a_smooth_image(pattern, method):
    yy, xx = np.mgrid[0:32, 0:48].astype(np.float32)
    rgb = np.stack([0.2 + 0.01 * xx, 0.3 + 0.005 * yy, 0.6 - 0.005 * xx], axis=-1)  # linear ramps
    out = demosaic(mosaic_rgb(rgb, pattern), pattern, method)
    # Every method reproduces a linear ramp away from the border, and keeps the measured samples.
    np.testing.assert_allclose(out[4:-4, 4:-4], rgb[4:-4, 4:-4], atol=2e-3)
    site = np.array(["RGB".index(c) for c in pattern]).reshape(2, 2)
    b = 0 if method == "malvar" else 2  # OpenCV copies its 1-pixel border from the neighbours
    for i in range(2):
        for j in range(2):
            got, want = out[i::2, j::2, site[i, j]], rgb[i::2, j::2, site[i, j]]
            np.testing.assert_allclose(
                got[b : got.shape[0] - b, b : got.shape[1] - b],
                want[b : want.shape[0] - b, b : want.shape[1] - b],
                atol=2e-5,
            )


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("shape", [(16, 24), (17, 24), (16, 25), (23, 19)])
def test_pipeline_malvar_equals_the_training_datas(pattern, shape):
    """The pipeline's OpenCV Malvar is the torch code that makes the training data's demosaicking residual."""
    import torch

    from isp_collab.physics.noise import demosaic as torch_demosaic

    mosaic = np.random.default_rng(2).random(shape, dtype=np.float32)
    h, w = shape
    even = np.pad(mosaic, ((0, h % 2), (0, w % 2)), mode="reflect")  # the torch code wants even sizes
    want = torch_demosaic(torch.from_numpy(even)[None, None], pattern, "malvar")[0].permute(1, 2, 0).numpy()[:h, :w]
    np.testing.assert_allclose(demosaic(mosaic, pattern, "malvar"), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_balanced_demosaic_equals_white_balancing_the_mosaic(pattern):
    rgb = np.random.default_rng(1).random((32, 32, 3), dtype=np.float32) * 0.4
    gains = np.array([2.0, 1.0, 1.6], np.float32)
    frame = RAW.replace(cfa_pattern=pattern, wb_gains=tuple(gains))
    camera = mosaic_rgb(rgb / gains, pattern)
    got = Demosaic("malvar")(camera, frame) * gains
    want = demosaic(mosaic_rgb(rgb, pattern), pattern, "malvar")  # WB applied before demosaicking
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_demosaic_odd_sizes():
    for method in ("malvar", "opencv_ea"):
        assert demosaic(np.random.rand(7, 9).astype(np.float32), "GBRG", method).shape == (7, 9, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(orientation):
    from PIL import Image, ImageOps

    a = (np.arange(6 * 10 * 3) % 251).astype(np.uint8).reshape(6, 10, 3)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    want = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_orientation(a, orientation), want)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_box_turns_with_its_image(orientation):
    from isp_collab.pipeline.frame import orient_box

    h, w, box = 6, 10, (2, 1, 7, 4)  # x0, y0, x1, y1
    mask = np.zeros((h, w), bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    x0, y0, x1, y1 = orient_box(box, h, w, orientation)
    turned = np.zeros_like(apply_orientation(mask, orientation))
    turned[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(turned, apply_orientation(mask, orientation))


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
        ValueError, match=r"m-n4-t64\.onnx: a 'lens' model \(task from m-n4-t64\.json\) cannot run the sharpen"
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
    with pytest.raises(ValueError, match=r"sharpen\.overlap must be in \[0, tile // 2 = 128\], got 500"):
        Sharpen(model=model, overlap=500).network()  # default tile 256
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
    stage._model_info = {"name": "x", "training": {"patch": 48}}  # an ONNX sidecar's model block
    assert stage.trained_patch == 48


def test_pipeline_toml(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        'max_pixels = 1000\n[demosaic]\nmethod = "opencv_ea"\n[sharpen]\nmodel = "m"\nn = 2\n'
        '[unsharp]\nenabled = false\n[white_balance]\ngains = [2.0, 1.0, 1.5]\n[tone]\ncurve = "smoothstep"\n'
    )
    p = Pipeline.from_toml(cfg)
    assert p.max_pixels == 1000 and p.demosaic.method == "opencv_ea"
    assert p.sharpen.enabled and p.sharpen.model == "m" and p.sharpen.n == 2
    assert not p.unsharp.enabled and not p.lens.enabled
    assert p.white_balance.gains == (2.0, 1.0, 1.5) and p.tone.curve == "smoothstep"
    for text, match in [
        ("[sharpen]\nmodle = 'x'\n", r"p\.toml: \[sharpen\] has unknown key 'modle'"),
        ("[bogus]\n", r"p\.toml: unknown table or key 'bogus'"),
        ("[tone]\ncurve = 'filmic'\n", r"p\.toml: \[tone\] curve must be one of 'none', 'smoothstep', got 'filmic'"),
        ("[sharpen]\ntile = 'abc'\n", r"p\.toml: \[sharpen\] tile must be an integer, got 'abc'"),
        ("[sharpen]\nmodel = 5\n", r"p\.toml: \[sharpen\] model must be a string, got 5"),
        ("[sharpen]\nenabled = 'yes'\n", r"p\.toml: \[sharpen\] enabled must be true or false, got 'yes'"),
        ("[sharpen]\ndetail = 'foo'\n", r"p\.toml: \[sharpen\] detail must be one of 'luma', 'rgb', got 'foo'"),
        ("[sharpen]\nn = 100\n", r"p\.toml: \[sharpen\] n must be between 1 and 64"),
        (
            "[sharpen]\ntile = 64\noverlap = 500\n",
            r"p\.toml: \[sharpen\] overlap must be in \[0, tile // 2 = 32\], got 500",
        ),
        ("[lens]\ncenter = [1]\n", r"p\.toml: \[lens\] center must be a list of 2 numbers, got \[1\]"),
        ("[lens]\ncenter = ['a', 2]\n", r"p\.toml: \[lens\] center must be a list of 2 numbers"),
        ("[white_balance]\ngains = [1, 2]\n", r"p\.toml: \[white_balance\] gains must be a list of 3 numbers"),
        ("[output]\njpeg_quality = 'high'\n", r"p\.toml: \[output\] jpeg_quality must be an integer"),
        ("[unsharp]\nsigma = '1'\n", r"p\.toml: \[unsharp\] sigma must be a finite number, got '1'"),
        # NaN and infinities used to give an all-black image and exit 0, or an overflow after processing
        ("[unsharp]\namount = nan\n", r"p\.toml: \[unsharp\] amount must be a finite number, got nan"),
        ("[tone]\nexposure_ev = inf\n", r"p\.toml: \[tone\] exposure_ev must be a finite number, got inf"),
        ("[tone]\nexposure_ev = 1e6\n", r"p\.toml: \[tone\] exposure_ev must be between -16 and 16, got 1000000\.0"),
        ("[unsharp]\nsigma = 1e9\n", r"p\.toml: \[unsharp\] needs 0 < sigma <= 100"),
        ("[white_balance]\ngains = [nan, 1, 2]\n", r"p\.toml: \[white_balance\] gains must be a list of 3"),
        ("[demosaic]\nbalance = 1\n", r"p\.toml: \[demosaic\] balance must be true or false, got 1"),
        ("[tone\n", r"p\.toml: not a valid TOML"),
    ]:
        cfg.write_text(text)
        with pytest.raises(ValueError, match=match):
            Pipeline.from_toml(cfg)


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


def test_every_pipeline_key_is_documented():
    """docs/pipeline.md has a row for every key a pipeline TOML accepts (a new key cannot go unexplained)."""
    import dataclasses
    from pathlib import Path

    from isp_collab.pipeline.pipeline import SECTIONS, Pipeline

    text = (Path(__file__).resolve().parents[1] / "docs" / "pipeline.md").read_text()
    top = text.split("## Top level")[1].split("\n## ")[0]
    assert all(f"| `{k}` |" in top for k in ("max_pixels", "crop"))
    assert {f.name for f in dataclasses.fields(Pipeline)} - set(SECTIONS) == {"max_pixels", "crop", "linearize"}
    for name, cls in SECTIONS.items():
        heading = next(h for h in text.split("\n## ")[1:] if f"`[{name}]`" in h.splitlines()[0])
        keys = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
        missing = [k for k in keys if f"| `{k}` |" not in heading]
        assert not missing, f"[{name}] keys missing from docs/pipeline.md: {missing}"
