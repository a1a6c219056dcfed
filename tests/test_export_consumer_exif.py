"""The reference consumer and EXIF orientation: pixels turned upright by OpenCV, the orientation read by the
consumer itself to turn a calibrated lens's optical centre with them (as process does)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_export_consumer import load_consumer
from test_export_onnx import artefact


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_consumer_applies_exif_orientation(tmp_path, ext):  # review finding 8
    import cv2
    from PIL import Image, ImageOps

    consumer = load_consumer()
    model = str(artefact("fp32").path)
    stored = np.full((24, 40, 3), 60, np.uint8)
    stored[:8, :8] = 255  # a white block at the top left, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # to be shown turned 90 degrees clockwise
    src = tmp_path / f"in{ext}"
    Image.fromarray(stored).save(src, exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src)))  # as viewers and isp-collab process show it
    Image.fromarray(upright).save(tmp_path / "upright.png")  # the same pixels, stored upright, no EXIF
    outs = []
    for name in (src.name, "upright.png"):
        assert consumer.main([model, str(tmp_path / name), str(tmp_path / f"out-{name}.png")]) == 0
        outs.append(cv2.imread(str(tmp_path / f"out-{name}.png"), cv2.IMREAD_UNCHANGED)[..., ::-1])
    assert outs[0].shape == upright.shape == (40, 24, 3)  # upright, as process writes it
    assert outs[0][:8, -8:].mean() > 200 > 100 > outs[0][:8, :8].mean()  # the block is now at the top right
    assert np.abs(outs[0].astype(np.int32) - outs[1]).max() <= (0 if ext == ".png" else 3)  # (decoders differ)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_a_calibrated_optical_centre_turns_with_an_exif_turned_picture(tmp_path, ext):
    """The sidecar's optical centre is a point of the sensor: on a file its EXIF orientation turns upright it is
    turned with the picture, as process's lens stage turns it (the consumer took the fractions on the upright
    picture: up to 68 levels from process on a 333x251 JPEG of orientation 6)."""
    from PIL import Image

    consumer = load_consumer()
    art = artefact("fp32")
    shutil.copy(art.path, tmp_path / "m.onnx")
    side = json.loads(art.sidecar.read_text())
    side["tiling"]["strategy"] = "mirror"
    side.setdefault("model", {})["optical_center"] = [0.25, 0.3]  # an off-axis lens, as stored by the sensor
    (tmp_path / "m.json").write_text(json.dumps(side))
    stored = (np.random.default_rng(3).random((40, 72, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: 72 x 40 upright
    src = tmp_path / f"in{ext}"
    Image.fromarray(stored).save(src, exif=exif.tobytes() if ext != ".tif" else exif)
    assert consumer.exif_orientation(src) == 6
    upright = consumer.read_image(src)[0]  # the same pixels (the same decoder), stored upright as linear .npy
    assert upright.shape == (72, 40, 3)
    np.save(tmp_path / "upright.npy", upright)
    # on the upright picture the sensor's (0.25, 0.3) lies at (1 - 0.3, 0.25) of its width and height
    center = f"{0.7 * 40 - 0.5},{0.25 * 72 - 0.5}"
    runs = {"turned": [src], "told": ["upright.npy", "--center", center], "untold": ["upright.npy"]}
    outs = {}
    for name, (image, *more) in runs.items():
        out = tmp_path / f"out-{name}.npy"
        assert consumer.main([str(tmp_path / "m.onnx"), str(tmp_path / image), str(out), *more]) == 0
        outs[name] = np.load(out)
    assert np.array_equal(outs["turned"], outs["told"])
    assert np.abs(outs["turned"] - outs["untold"]).max() > 1e-5  # the centre matters (same centre: bit-identical)


def test_an_optical_centre_at_the_frames_edge_is_kept_inside_the_image(tmp_path):
    """optical_center [1.0, 0.5] on a 40x72 image is x = 71.5, half a pixel outside: process gathers about x = 71
    (center_in_pixels); the consumer refused the image ("outside the image", exit 2)."""
    consumer = load_consumer()
    art = artefact("fp32")
    shutil.copy(art.path, tmp_path / "m.onnx")
    side = json.loads(art.sidecar.read_text())
    side["tiling"]["strategy"] = "mirror"
    side.setdefault("model", {})["optical_center"] = [1.0, 0.5]
    (tmp_path / "m.json").write_text(json.dumps(side))
    np.save(tmp_path / "in.npy", np.random.default_rng(4).random((40, 72, 3), dtype=np.float32))
    outs = []
    for name, more in (("edge", []), ("told", ["--center", "71,19.5"])):
        assert (
            consumer.main([str(tmp_path / "m.onnx"), str(tmp_path / "in.npy"), str(tmp_path / name) + ".npy", *more])
            == 0
        )
        outs.append(np.load(tmp_path / f"{name}.npy"))
    assert np.array_equal(*outs)


def test_turned_fractions_are_where_process_turns_a_point_and_orientations_are_read_from_each_container(
    tmp_path,
):
    import tifffile
    from PIL import Image

    from isp_collab.pipeline.frame import orient_point

    consumer = load_consumer()
    for k in range(1, 9):  # the consumer's copy agrees with the pipeline's orient_point on the unit square
        fy, fx = orient_point(0.3, 0.25, 2, 2, k)
        assert consumer.turn_fractions(0.25, 0.3, k) == pytest.approx((fx, fy))
    grey = np.zeros((4, 6, 3), np.uint8)
    for name, value, expected in [("none.png", None, 1), ("bad.jpg", 9, 1), ("be.tif", 8, 8), ("app.jpg", 3, 3)]:
        exif = Image.Exif()
        if value is not None:
            exif[0x0112] = value
        kw = {"exif": exif} if name.endswith(".tif") else {"exif": exif.tobytes()}
        if name == "be.tif":  # a big-endian TIFF
            tifffile.imwrite(tmp_path / name, grey, byteorder=">", extratags=[(274, "H", 1, value, True)])
            assert (tmp_path / name).read_bytes()[:4] == b"MM\x00*"
        else:
            Image.fromarray(grey).save(tmp_path / name, **kw)
        assert consumer.exif_orientation(tmp_path / name) == expected, name
    assert consumer.exif_orientation(tmp_path / "x.npy") == 1


def _exif(value: int, kind: int = 3, order: str = "<") -> bytes:
    """A TIFF structure holding only tag 274 = ``value`` of TIFF type ``kind`` (3 SHORT, 8 SSHORT, 4 LONG)."""
    import struct

    fmt = {3: "H2x", 8: "h2x", 4: "I"}[kind]
    head = b"II*\x00" if order == "<" else b"MM\x00*"
    return head + struct.pack(order + "IHHHI" + fmt + "I", 8, 1, 274, kind, 1, value, 0)


def _jpeg(app1: bytes, before: bytes = b"", fill: bool = False) -> bytes:
    import cv2

    body = cv2.imencode(".jpg", np.zeros((40, 72, 3), np.uint8))[1].tobytes()
    segment = (b"\xff" if fill else b"") + b"\xff\xe1" + (len(app1) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + app1
    return body[:2] + before + segment + body[2:]


def _png_exif_after_idat(payload: bytes) -> bytes:
    import zlib

    import cv2

    body = cv2.imencode(".png", np.zeros((40, 72, 3), np.uint8))[1].tobytes()
    chunk = len(payload).to_bytes(4, "big") + b"eXIf" + payload + zlib.crc32(b"eXIf" + payload).to_bytes(4, "big")
    return body[:-12] + chunk + body[-12:]  # before IEND, after IDAT


@pytest.mark.parametrize(
    "case", ["jpeg-long", "jpeg-sshort", "jpeg-big-endian", "jpeg-xmp-first", "jpeg-fill-byte", "png-after-idat"]
)
def test_the_orientation_read_is_the_one_opencv_turns_the_pixels_by(tmp_path, case):
    """The consumer reads the orientation itself to turn a sidecar's optical centre; the pixels are turned by
    OpenCV. Both must agree on tags of every integer type, EXIF blocks in any place the decoder reads them."""
    import cv2

    consumer = load_consumer()
    xmp = b"\xff\xe1" + (31).to_bytes(2, "big") + b"http://ns.adobe.com/xap/1.0/\x00"
    data = {
        "jpeg-long": lambda: _jpeg(_exif(6, 4)),
        "jpeg-sshort": lambda: _jpeg(_exif(6, 8)),
        "jpeg-big-endian": lambda: _jpeg(_exif(6, 3, ">")),
        "jpeg-xmp-first": lambda: _jpeg(_exif(6), before=xmp),
        "jpeg-fill-byte": lambda: _jpeg(_exif(6), fill=True),
        "png-after-idat": lambda: _png_exif_after_idat(_exif(6, 4)),
    }[case]()
    path = tmp_path / ("x.png" if case.startswith("png") else "x.jpg")
    path.write_bytes(data)
    turned = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR).shape[:2]
    assert turned == (72, 40)  # OpenCV turns each of these upright (a quarter turn)
    assert consumer.exif_orientation(path) == 6


def test_a_long_min_is_white_tag_is_read_as_opencv_reads_it(tmp_path):
    """PhotometricInterpretation 0 stored as LONG: 16-bit samples still inverted (as process, through Pillow)."""
    import tifffile

    consumer = load_consumer()
    ramp = np.linspace(0, 65535, 40 * 72, dtype=np.uint16).reshape(40, 72)
    tifffile.imwrite(tmp_path / "w.tif", ramp, photometric="minisblack")
    data = bytearray((tmp_path / "w.tif").read_bytes())
    ifd = int.from_bytes(data[4:8], "little")
    for k in range(int.from_bytes(data[ifd : ifd + 2], "little")):
        entry = ifd + 2 + 12 * k
        if int.from_bytes(data[entry : entry + 2], "little") == 262:  # as LONG 0
            data[entry + 2 : entry + 12] = (4).to_bytes(2, "little") + (1).to_bytes(4, "little") + bytes(4)
    (tmp_path / "w.tif").write_bytes(bytes(data))
    image = consumer.read_image(tmp_path / "w.tif")[0]
    assert image[0, 0, 0] > 0.99 and image[-1, -1, 0] < 0.01  # white where the samples are 0
