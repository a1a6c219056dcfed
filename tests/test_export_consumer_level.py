"""The sharpen stage's ``keep_level`` step in the torch-free consumer: export/collab_core.py's numpy
``keep_local_level`` equals the package's (OpenCV) one, consume_onnx.py applies the sidecar's
``postprocess.keep_level`` (``--no-keep-level`` and older sidecars skip it), and the whole run gives what
``isp-collab process --onnx`` gives."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_export_consumer import assert_one_error_line, load_consumer, model_copy, run_main, sample_image
from test_export_consumer_core import load_core
from test_export_onnx import artefact, exported  # noqa: F401 (fixtures)

from isp_collab.restore.detail import keep_local_level, transfer_luma_detail

SIZES = [(1, 1), (2, 3), (5, 3), (17, 40), (40, 70), (100, 37)]


def _pair(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = rng.random((h, w, 3), dtype=np.float32)
    change = np.float32(0.3) * rng.standard_normal((h, w, 3)).astype(np.float32) + np.float32(0.1)  # a level too
    return before, before + change


@pytest.mark.parametrize("box,passes", [(33, 3), (5, 1), (1, 2)])
@pytest.mark.parametrize("shape", SIZES)
def test_core_keep_local_level_equals_the_package(shape, box, passes):
    core = load_core()
    before, after = _pair(*shape, seed=shape[0] * 1000 + shape[1])
    out = core.keep_local_level(before, after, box, passes)
    ref = keep_local_level(before, after, box, passes)
    assert out.shape == before.shape and out.dtype == np.float32
    assert float(np.abs(out - ref).max()) <= 1e-5
    if box > 1:
        assert float(np.abs(out - after).max()) > 5e-2  # the step took the level out


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (2, 1), (2, 2), (3, 50), (70, 2)])
def test_core_box_reflects_repeatedly_as_opencv_does(shape):
    """One 33-px pass over axes much shorter than its 16-px reach: reflect-101, reflected again and again."""
    core = load_core()
    plane = np.random.default_rng(1).random(shape, dtype=np.float32)
    ours = core.box_mean_rows(core.box_mean_rows(plane.astype(np.float64), 33).T, 33).T
    theirs = cv2.blur(plane, (33, 33), borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(core.box_mean_rows(plane.astype(np.float64), 1), plane, atol=0)  # box 1: identity


def test_core_keep_local_level_refuses_even_boxes_and_no_passes():
    core = load_core()
    before, after = _pair(4, 4, seed=0)
    for box, passes in [(32, 3), (0, 1), (33, 0)]:
        with pytest.raises(ValueError, match="box must be odd and >= 1 and passes >= 1"):
            core.keep_local_level(before, after, box, passes)


def test_core_postprocess_runs_detail_keep_level_strength_as_the_sharpen_stage():
    core = load_core()
    before, after = _pair(40, 57, seed=2)
    gains = (2.0, 1.0, 1.5)
    out = core.postprocess(before, after, "luma", gains, strength=0.5, keep_level=(33, 3))
    ref = keep_local_level(before, transfer_luma_detail(before, after, gains))  # Sharpen.apply's order
    ref = before + np.float32(0.5) * (ref - before)
    assert float(np.abs(out - ref).max()) <= 1e-5
    assert core.postprocess(before, after, "rgb") is after  # keep_level off by default


def _restored(consumer, image: np.ndarray) -> np.ndarray:
    return consumer.OnnxRestorer(artefact("fp32").path)(image)


def test_consumer_applies_the_sidecars_keep_level(tmp_path, capsys):
    consumer = load_consumer()
    onnx, src = model_copy(tmp_path / "m"), tmp_path / "in.npy"
    image = sample_image(40, 53)
    np.save(src, image)
    sidecar = onnx.with_suffix(".json")
    side = json.loads(sidecar.read_text())
    assert side["postprocess"]["keep_level"] == {"box": 33, "passes": 3}
    luma = transfer_luma_detail(image, _restored(consumer, image))

    def run(name: str, postprocess: dict, *extra: str) -> np.ndarray:
        sidecar.write_text(json.dumps(side | {"postprocess": postprocess}))
        code, err = run_main(consumer, capsys, onnx, src, tmp_path / f"{name}.npy", *extra)
        assert code == 0, err
        return np.load(tmp_path / f"{name}.npy")

    default = run("default", side["postprocess"])
    assert float(np.abs(default - keep_local_level(image, luma)).max()) <= 1e-5
    assert float(np.abs(default - luma).max()) > 1e-3  # the step changed something
    skipped = run("skipped", side["postprocess"], "--no-keep-level")
    assert float(np.abs(skipped - luma).max()) <= 1e-6
    older = {k: v for k, v in side["postprocess"].items() if not k.startswith("keep_level")}
    np.testing.assert_array_equal(run("older", older), skipped)  # a sidecar from before the step: off
    other = run("other", side["postprocess"] | {"keep_level": {"box": 5, "passes": 1}})
    assert float(np.abs(other - keep_local_level(image, luma, 5, 1)).max()) <= 1e-5
    rgb = run("rgb", side["postprocess"], "--detail", "rgb")  # process's sharpen: detail rgb keeps the step
    raw = _restored(consumer, image)
    assert float(np.abs(rgb - keep_local_level(image, raw)).max()) <= 1e-5


@pytest.mark.parametrize(
    "bad",
    [
        {"box": 32, "passes": 3},
        {"box": 0, "passes": 3},
        {"box": -1, "passes": 3},
        {"box": 33, "passes": 0},
        {"box": 33.0, "passes": 3},
        {"box": True, "passes": 3},
        {"box": 33, "passes": "3"},
        {"box": 33},
        {"box": 1_000_000_001, "passes": 1},  # a 2 TiB allocation
        [33, 3],
        "33 px",
    ],
)
def test_consumer_refuses_a_bad_keep_level_in_one_line(tmp_path, capsys, bad):
    consumer = load_consumer()
    onnx, src, out = model_copy(tmp_path / "m"), tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, sample_image(20, 24))
    sidecar = onnx.with_suffix(".json")
    side = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(side | {"postprocess": side["postprocess"] | {"keep_level": bad}}))
    expected = (
        f"{sidecar}: postprocess.keep_level needs box (an odd int in [1, 4095]) and passes (an int in [1, 16]), "
        f"got {bad!r}"
    )
    for extra in ((), ("--no-keep-level",)):  # a broken sidecar is refused even when the step is skipped
        assert_one_error_line(*run_main(consumer, capsys, onnx, src, out, *extra), expected)
        assert not out.exists()


@pytest.mark.parametrize("case", ["default", "strength", "off"])
def test_consumer_gives_what_process_onnx_gives(tmp_path, capsys, case):
    """One 16-bit PNG through ``isp-collab process --onnx`` and through consume_onnx.py: the same image (a
    sharpening model: luma detail, keep_level, strength; ``off``: process's ``[sharpen] keep_level = false``
    against ``--no-keep-level``)."""
    from isp_collab.cli import main as cli_main

    consumer = load_consumer()
    model = artefact("fp32").path
    image = sample_image(70, 90)
    src, config = tmp_path / "in.png", tmp_path / "off.toml"
    assert cv2.imwrite(str(src), np.round(consumer.linear_to_srgb(image) * 65535).astype(np.uint16)[..., ::-1])
    config.write_text("[sharpen]\nkeep_level = false\n")
    process_flags, consumer_flags = {
        "default": ([], []),
        "strength": (["--strength", "0.5"], ["--strength", "0.5"]),
        "off": (["--config", str(config)], ["--no-keep-level"]),
    }[case]
    process_out = tmp_path / "process.png"
    assert cli_main(["process", str(src), "-o", str(process_out), "--onnx", str(model), *process_flags]) == 0
    code, err = run_main(consumer, capsys, model, src, tmp_path / "consumer.png", *consumer_flags)
    assert code == 0, err
    code, err = run_main(consumer, capsys, model, src, tmp_path / "other.png", "--detail", "rgb")
    assert code == 0, err

    def read(name: str) -> np.ndarray:
        data = cv2.imread(str(tmp_path / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert data.dtype == np.uint16 and data.shape == (70, 90, 3)
        return data.astype(np.int64)

    assert int(np.abs(read("consumer") - read("process")).max()) <= 2  # of 65535 (float rounding near a code)
    assert int(np.abs(read("other") - read("process")).max()) > 100  # the comparison tells images apart
    if case == "default":  # and the step matters on this model
        code, err = run_main(consumer, capsys, model, src, tmp_path / "no-level.png", "--no-keep-level")
        assert code == 0, err
        assert int(np.abs(read("no-level") - read("process")).max()) > 100


def test_consumer_jpeg_is_written_as_process_writes_it(tmp_path, capsys):
    """Quality 95 and full-resolution colour (4:4:4) in both: OpenCV's default 4:2:0 put the two JPEGs up to
    64 of 255 levels apart on coloured edges."""
    from isp_collab.cli import main as cli_main

    consumer = load_consumer()
    model = artefact("fp32").path
    rng = np.random.default_rng(5)
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), rng.integers(0, 256, (48, 64, 3)).astype(np.uint8))  # colour on every pixel
    assert cli_main(["process", str(src), "-o", str(tmp_path / "process.jpg"), "--onnx", str(model)]) == 0
    code, err = run_main(consumer, capsys, model, src, tmp_path / "consumer.jpg")
    assert code == 0, err
    a, b = (cv2.imread(str(tmp_path / f"{n}.jpg")).astype(int) for n in ("process", "consumer"))
    assert int(np.abs(a - b).max()) <= 2, int(np.abs(a - b).max())
