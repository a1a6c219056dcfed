"""The torch-free consumer refuses a sidecar that does not describe the ONNX file it is given."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_export_consumer import assert_one_error_line, load_consumer, model_copy, run_main, sample_image
from test_export_onnx import N, artefact, exported  # noqa: F401 (fixtures)


def consumer_and_input(tmp_path):
    """The consumer module, a copy of the exported fp32 model with its sidecar, and a linear-RGB .npy input."""
    consumer = load_consumer()
    onnx, src = model_copy(tmp_path), tmp_path / "in.npy"
    np.save(src, sample_image(40, 33))
    return consumer, onnx, src


def test_consumer_refuses_mismatched_sidecar(tmp_path):
    consumer = load_consumer()
    art = artefact("fp32")
    onnx_copy = tmp_path / art.path.name
    shutil.copy(art.path, onnx_copy)
    side = json.loads(art.sidecar.read_text())
    side["tiling"]["n"] = N + 1
    onnx_copy.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ValueError, match="does not match the sidecar"):
        consumer.OnnxRestorer(onnx_copy)
    with pytest.raises(FileNotFoundError, match="sidecar"):
        consumer.OnnxRestorer(art.path, sidecar=tmp_path / "missing.json")


def test_consumer_refuses_a_sidecar_of_other_weights(tmp_path, capsys):  # review finding 10
    consumer, onnx, src = consumer_and_input(tmp_path)
    side = json.loads(onnx.with_suffix(".json").read_text())
    meta = consumer.OnnxRestorer(onnx).session.get_modelmeta().custom_metadata_map  # its own sidecar is fine
    assert meta["isp_collab.weights_sha256"] == side["model"]["weights_sha256"]
    side["model"]["weights_sha256"] = "0" * 64
    other = tmp_path / "other.json"
    other.write_text(json.dumps(side))
    with pytest.raises(ValueError, match="a sidecar for other weights"):
        consumer.OnnxRestorer(onnx, sidecar=other)
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.npy", "--sidecar", other)
    assert_one_error_line(code, err, f"{other}: a sidecar for other weights")
    assert str(onnx) in err
    int8_side = artefact("int8").sidecar  # same weights, another file: told apart by the file's own hash
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.npy", "--sidecar", int8_side)
    assert_one_error_line(code, err, f"{int8_side}: written for another file than {onnx} (its file_sha256 differs")
    assert not (tmp_path / "out.npy").exists()


def test_consumer_refuses_the_sidecar_of_a_core_ml_package(tmp_path, capsys):
    """The Core ML sidecar carries the same weights hash: its format field must stop it."""
    consumer, onnx, src = consumer_and_input(tmp_path)
    side = json.loads(onnx.with_suffix(".json").read_text())
    side.update(format="coreml", precision="fp16", file="m-fp16.mlpackage")
    coreml = tmp_path / "m-fp16.json"
    coreml.write_text(json.dumps(side))
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.npy", "--sidecar", coreml)
    assert_one_error_line(code, err, f"{coreml}: the sidecar of a coreml artefact (m-fp16.mlpackage)")
    assert not (tmp_path / "out.npy").exists()


def test_consumer_refuses_mirror_gathering_for_a_model_trained_unflipped(tmp_path, capsys):
    """A lens model trained with task.align = false saw mirror stacks left unflipped; mirror gathering flips them."""
    consumer, onnx, src = consumer_and_input(tmp_path)
    side = json.loads(onnx.with_suffix(".json").read_text())
    side["model"]["align"] = False
    onnx.with_suffix(".json").write_text(json.dumps(side))
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.npy", "--strategy", "mirror")
    assert_one_error_line(code, err, f"{onnx.with_suffix('.json')}: the model was trained on mirror stacks left")
    assert not (tmp_path / "out.npy").exists()
    side["model"]["n_trained"] = 1  # an N=1 model is never flipped in training: align = false says nothing
    onnx.with_suffix(".json").write_text(json.dumps(side))
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.npy", "--strategy", "mirror")
    assert code == 0 and (tmp_path / "out.npy").is_file(), err


def test_consumer_names_folders_and_refuses_outputs_process_would_not_write(tmp_path, capsys):
    """A folder given as the image or the model is said to be one (not 'no such file'); .bmp is refused as
    isp-collab process refuses it; a 16-bit input written as JPEG is warned about."""
    import cv2

    consumer = load_consumer()
    onnx, src = model_copy(tmp_path), tmp_path / "in.png"
    assert cv2.imwrite(str(src), np.full((40, 33, 3), 30000, np.uint16))
    code, err = run_main(consumer, capsys, onnx, tmp_path, tmp_path / "out.png")
    assert_one_error_line(code, err, f"{tmp_path}: a folder, not an image file")
    package = tmp_path / "m.mlpackage"
    package.mkdir()
    code, err = run_main(consumer, capsys, package, src, tmp_path / "out.png")
    assert_one_error_line(code, err, f"{package}: a folder (a Core ML package?), not an ONNX model file")
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.bmp")
    assert_one_error_line(code, err, f"{tmp_path / 'out.bmp'}: cannot write .bmp")
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.jpg")
    assert code == 0 and "JPEG holds 8-bit samples; the 16-bit input is written at 8 bits" in err, err


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("preprocess.max_gain", float("nan"), "preprocess.max_gain must be a number in [1, 1e6], got nan"),  # black
        ("preprocess.max_gain", -3, "preprocess.max_gain must be a number"),  # every pixel x -3, exit 0
        ("tiling.n", 4.7, "tiling.n must be an integer >= 1, got 4.7"),  # was taken as 4
        ("tiling.overlap", 500, "tiling.overlap must be an integer in [0, tile // 2]"),
        ("preprocess", [1], "preprocess must be an object"),  # AttributeError traceback
        ("postprocess.luma_weights", "abc", "postprocess.luma_weights must be three numbers"),
        ("model.weights_sha256", 123, "model.weights_sha256 must be a hex digest"),  # TypeError traceback
        ("file_sha256", 123, "file_sha256 must be a hex digest"),  # skipped the file check
        ("output.name", "out", "input / output names 'stack' / 'out' are not those of"),  # ORT traceback
    ],
)
def test_consumer_refuses_a_damaged_sidecar_value_naming_the_field(tmp_path, capsys, field, value, said):
    """An edited or damaged sidecar gave a black image with exit 0, or a traceback: now one line naming it."""
    consumer, onnx, src = consumer_and_input(tmp_path)
    side = json.loads(onnx.with_suffix(".json").read_text())
    *blocks, key = field.split(".")
    target = side
    for block in blocks:
        target = target.setdefault(block, {})
    target[key] = value
    onnx.with_suffix(".json").write_text(json.dumps(side))
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.npy")
    assert_one_error_line(code, err, f"{onnx.with_suffix('.json')}: {said}")
    assert not (tmp_path / "out.npy").exists()


def test_consumer_refuses_a_folder_as_its_output_before_any_work(tmp_path, capsys):
    consumer, onnx, src = consumer_and_input(tmp_path)
    (tmp_path / "out.npy").mkdir()
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "out.npy", "--overwrite")
    assert_one_error_line(code, err, f"{tmp_path / 'out.npy'}: is a folder, not an output file")


def test_negative_option_values_are_values_not_unknown_options():
    """``--center -1,5`` / ``--wb-gains -1,1,1`` gave argparse's usage and 'expected one argument' (the value taken
    for an option); they reach the consumer's own checks now. ``--`` still ends the options."""
    consumer = load_consumer()
    joined = consumer.join_negative_values(["m.onnx", "in.png", "out.png", "--center", "-1,5", "--strength", "-.5"])
    assert joined == ["m.onnx", "in.png", "out.png", "--center=-1,5", "--strength=-.5"]
    assert consumer.join_negative_values(["--overwrite", "--", "-1EV.png"]) == ["--overwrite", "--", "-1EV.png"]
