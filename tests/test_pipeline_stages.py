"""Pipeline stages: the (image, frame) -> image protocol and colour maths (the network stages: test_pipeline_network_stages)."""

from __future__ import annotations

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
    "bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4, 4), np.float32)]
)  # float64 / float16 are taken as float32 (test_api_integration)
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
    from test_pipeline_headerless_decode import description, write_headerless

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


def test_a_device_the_machine_lacks_is_refused_naming_the_config_file_and_key(tmp_path, monkeypatch):
    """[sharpen] device = "cuda" without CUDA said "device 'cuda' requested but CUDA is not available" only when the
    network was built, naming neither the config file nor the key; it is refused as the file is read."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = tmp_path / "p.toml"
    for text, match in [
        ("[sharpen]\ndevice = 'cuda'\n", r"p\.toml: \[sharpen\] device 'cuda' requested but CUDA is not available"),
        ("[lens]\ndevice = 'cuda:1'\n", r"p\.toml: \[lens\] device 'cuda:1' requested but CUDA is not available"),
        ("[sharpen]\ndevice = 'gpu'\n", r"p\.toml: \[sharpen\] device 'gpu': not a device name"),
        (
            "[sharpen]\nbackend = 'onnx'\nonnx_path = 'm.onnx'\ndevice = 'mps'\n",
            r"p\.toml: \[sharpen\] device 'mps': the onnx backend runs on cpu, cuda or cuda:K",
        ),
    ]:
        cfg.write_text(text)
        with pytest.raises(ValueError, match=match):
            Pipeline.from_toml(cfg)
    cfg.write_text("[sharpen]\ndevice = 'cpu'\n")
    assert Pipeline.from_toml(cfg).sharpen.device == "cpu"
    cfg.write_text("[sharpen]\nenabled = false\ndevice = 'cuda'\n")  # a GPU machine's file, the stage off here
    assert not Pipeline.from_toml(cfg).sharpen.enabled


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
