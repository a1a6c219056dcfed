"""Ordinary images the decoder complains about but decodes: said so, not handed on silently; PNGs that announce an
animation without frames decode to their still image (OpenCV gave all black)."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from isp_collab.cli import main
from isp_collab.pipeline import ImageDecode, PipelineWarning

PIXELS = np.random.default_rng(0).integers(0, 256, (96, 128, 3)).astype(np.uint8)
DAMAGED = r"the decoder reported a damaged file and decoded it all the same; check the picture \({}\)$"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(pixels: np.ndarray = PIXELS) -> bytes:
    return cv2.imencode(".png", pixels)[1].tobytes()


def _after_ihdr(png: bytes, chunk: bytes) -> bytes:
    return png[:33] + chunk + png[33:]  # signature (8) + IHDR (25)


def _jpeg_with_sof_height(height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "JPEG", quality=90)
    b = bytearray(buf.getvalue())
    sof = next(i for i in range(2, len(b) - 1) if b[i] == 0xFF and b[i + 1] in (0xC0, 0xC1, 0xC2))
    struct.pack_into(">H", b, sof + 5, height)
    return bytes(b)


def _png_with_ihdr_height(height: int) -> bytes:
    png = _png()
    ihdr = bytearray(png[16:29])
    struct.pack_into(">I", ihdr, 4, height)
    return png[:8] + _chunk(b"IHDR", bytes(ihdr)) + png[33:]


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [  # libjpeg: the scan ends half way down a doubled SOF height (a grey lower half)
        ("tall.jpg", _jpeg_with_sof_height(192), "Corrupt JPEG data: premature end of data segment"),
        ("short.png", _png_with_ihdr_height(48), "libpng warning: IDAT: Too much image data"),  # the rows left over
    ],
)
def test_a_file_the_decoder_calls_damaged_is_decoded_with_a_warning_naming_it(tmp_path, capfd, name, data, said):
    (src := tmp_path / name).write_bytes(data)
    with pytest.warns(PipelineWarning, match=f"^{src}: " + DAMAGED.format(said)):
        ImageDecode()(src)
    assert main(["process", str(src), "-o", str(tmp_path / "out.png"), "--stages", "none"]) == 0  # not refused
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"isp-collab process: warning: {src}: the decoder reported"), err
    assert (tmp_path / "out.png").is_file()


def test_a_complaint_about_an_ancillary_chunk_and_good_files_give_no_damage_warning(tmp_path):
    (bad_profile := tmp_path / "profile.png").write_bytes(_after_ihdr(_png(), _chunk(b"iCCP", b"junk\0\0x")))
    (good := tmp_path / "good.jpg").write_bytes(_jpeg_with_sof_height(96))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ImageDecode()(bad_profile)  # libpng: "iCCP: too short"; the profile is judged as a colour caveat
        ImageDecode()(good)
    assert not [w for w in caught if "decoder reported" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.parametrize("frames", [0, 2, 2**31 - 1])
@pytest.mark.parametrize("grey", [False, True])
def test_a_png_announcing_frames_it_lacks_decodes_to_its_still_image(tmp_path, frames, grey):
    pixels = PIXELS[..., 0] if grey else PIXELS
    src = tmp_path / "actl.png"
    src.write_bytes(_after_ihdr(_png(pixels), _chunk(b"acTL", struct.pack(">II", frames, 0))))
    image, frame = ImageDecode()(src)  # was all black (and 0 frames: "cannot decode image")
    with Image.open(src) as im, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow: "Invalid APNG, will use default PNG image if possible"
        want = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), want)
    assert frame.greyscale == grey


@pytest.mark.parametrize("default_image", [False, True])
def test_an_animated_png_still_decodes_to_its_first_frame(tmp_path, default_image):
    frames = [Image.fromarray(PIXELS), Image.fromarray(255 - PIXELS)]
    src = tmp_path / "anim.png"
    frames[0].save(src, save_all=True, append_images=frames[1:], default_image=default_image)
    image, _ = ImageDecode()(src)
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), PIXELS)


def test_another_threads_line_during_a_decode_is_passed_on_not_blamed_on_the_file(tmp_path, monkeypatch, capfd):
    """Anything written on fd 2 during a decode was taken as the decoder's words: a clean PNG was called damaged
    for another thread's log line, and the line never reached the terminal."""
    import os

    from isp_collab.pipeline import decode as decode_module

    path = tmp_path / "clean.png"
    cv2.imwrite(str(path), np.full((16, 16, 3), 128, np.uint8))
    imdecode = cv2.imdecode

    def with_a_log_line(*args):
        os.write(2, b"worker-2 INFO: step 30 done\n")
        return imdecode(*args)

    monkeypatch.setattr(decode_module.cv2, "imdecode", with_a_log_line)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PipelineWarning)
        ImageDecode()(path)
    assert "worker-2 INFO: step 30 done" in capfd.readouterr().err
