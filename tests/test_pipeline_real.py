"""Real RAW files: the bundled Blackmagic DNG, and the shared samples (Kodak KDC, headerless sensor dumps)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from isp_collab.cli import main
from isp_collab.pipeline import Demosaic, HeaderlessDecode, Pipeline, RawDecode

SHARED = Path(__file__).resolve().parents[2] / "shared"
RAW_DIR = SHARED / "data" / "raw"
BUNDLED = Path(__file__).resolve().parents[1] / "isp_collab" / "assets" / "blackmagic_pocket4k.dng"
needs_shared = pytest.mark.skipif(not RAW_DIR.is_dir(), reason=f"shared data not found at {RAW_DIR}")
HEADERLESS = [
    ("Indoor1_2592x1536_8bit_GRBG.raw", (1536, 2592), "GRBG", 8),
    ("Outdoor1_2592x1536_8bit_GRBG.raw", (1536, 2592), "GRBG", 8),
    ("chart_1920x1080_10bit_RGGB.raw", (1080, 1920), "RGGB", 10),
]


def test_bundled_dng_decodes():
    mosaic, frame = RawDecode()(BUNDLED)
    assert mosaic.shape == (2160, 4096) and mosaic.dtype == np.uint16  # DefaultCrop of 4128x2176
    assert frame.cfa_pattern == "RGGB" and frame.black_level == (512.0,) * 4
    assert frame.white_level == 65472  # where its sensor clips (601 samples), not the 65535 its tags state
    assert frame.wb_source == "as_shot"
    np.testing.assert_allclose(frame.wb_gains, (2.206, 1.0, 1.887), atol=1e-3)
    np.testing.assert_allclose(frame.ccm.sum(axis=1), 1.0, atol=1e-3)
    assert frame.ccm[0, 0] > 1.2  # a real camera matrix, not the identity
    assert 512 <= np.median(mosaic) < 20000


@needs_shared
def test_bundled_dng_is_the_shared_sample():
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (BUNDLED, RAW_DIR / "blackmagic_pocket4k.dng")]
    assert digest[0] == digest[1]


# LibRaw's camera->sRGB matrix for the Kodak DC50 (its rgb_cam, read through LibRaw's C API
# libraw_get_rgb_cam; rawpy does not expose it). The KDC file itself holds no colour matrix.
KDC_RGB_CAM = [[1.8125, -0.3365, -0.476], [-0.435, 1.852, -0.417], [-0.676, -1.393, 3.069]]


def _mean_chroma(img: np.ndarray) -> float:
    """Mean of max(R, G, B) - min(R, G, B) over the pixels, in the image's levels."""
    return float((img.max(axis=2).astype(np.float64) - img.min(axis=2)).mean())


@needs_shared
def test_kodak_kdc_decodes_with_libraws_matrix():
    with pytest.warns(UserWarning, match=r"kodak_dc50\.kdc: no colour matrix in the file; using LibRaw's"):
        mosaic, frame = RawDecode()(RAW_DIR / "kodak_dc50.kdc")
    assert mosaic.shape == (512, 768) and frame.cfa_pattern == "GRBG"
    assert frame.wb_gains is None  # the file has none
    # recovered from LibRaw's rendering: LibRaw's own matrix, not the identity
    np.testing.assert_allclose(frame.ccm, KDC_RGB_CAM, atol=1e-3)
    np.testing.assert_allclose(frame.ccm.sum(axis=1), 1.0, atol=1e-3)


@needs_shared
def test_kodak_kdc_colours_match_libraw(tmp_path):
    """With the identity matrix the KDC came out flat: mean chroma 8.7 levels against LibRaw's 24.2."""
    import rawpy

    kdc = RAW_DIR / "kodak_dc50.kdc"
    out = tmp_path / "kdc.png"
    assert main(["process", str(kdc), "-o", str(out), "--stages", "none"]) == 0
    ours = cv2.imread(str(out), cv2.IMREAD_COLOR)[..., ::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, frame, _ = Pipeline().read(kdc)  # the gray-world gains the pipeline applied
    r, g, b = frame.wb_gains
    with rawpy.imread(str(kdc)) as raw:  # LibRaw's rendering with the same gains, sRGB curve, no brightening
        ref = raw.postprocess(user_wb=[r, g, b, g], no_auto_bright=True, adjust_maximum_thr=0, gamma=(2.4, 12.92))
    assert ours.shape == ref.shape
    assert _mean_chroma(ours) == pytest.approx(_mean_chroma(ref), rel=0.15)


@needs_shared
@pytest.mark.parametrize(("name", "shape", "pattern", "bits"), HEADERLESS)
def test_headerless_samples_decode(name, shape, pattern, bits):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mosaic, frame = HeaderlessDecode()(RAW_DIR / "headerless" / name)
    # the same warning a RAW file without a colour matrix gets, exactly when the description has none
    assert [str(w.message).endswith("camera RGB is used as sRGB (identity)") for w in caught] == (
        [True] if frame.cam_to_srgb is None else []
    )
    assert mosaic.shape == shape and frame.cfa_pattern == pattern and frame.bit_depth == bits
    assert mosaic.max() <= 2**bits - 1 and mosaic.std() > 1  # a real scene, not padding


def _natural(image_path: Path, shape: tuple[int, int], max_cast: float) -> np.ndarray:
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64) / 255
    assert img.shape[:2] == shape
    assert 0.05 < img.mean() < 0.9  # exposed, not black or blown out
    means = img.reshape(-1, 3).mean(axis=0)
    assert means.max() / means.min() < max_cast, means  # no strong colour cast
    return img


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize(
    ("name", "shape", "max_cast"),
    [
        ("blackmagic_pocket4k.dng", (2160, 4096), 1.5),
        ("kodak_dc50.kdc", (512, 768), 1.5),
        # Indoor1's description carries the *outdoor* capture's WB gains (see its note): tungsten stays warm.
        ("headerless/Indoor1_2592x1536_8bit_GRBG.raw", (1536, 2592), 3.5),
        ("headerless/Outdoor1_2592x1536_8bit_GRBG.raw", (1536, 2592), 1.8),
        ("headerless/chart_1920x1080_10bit_RGGB.raw", (1080, 1920), 1.5),
    ],
)
def test_real_samples_end_to_end(tmp_path, name, shape, max_cast):
    out = tmp_path / "out.png"
    code = main(["process", str(RAW_DIR / name), "-o", str(out), "--stages", "none", "--compare"])
    assert code == 0
    _natural(out, shape, max_cast)
    assert (tmp_path / "out_compare.png").is_file()


@pytest.mark.slow
def test_bundled_dng_with_identity_sharpen_model(tmp_path):
    import torch

    torch.set_num_threads(1)
    from isp_collab.models import create_model, save_model

    model = save_model(create_model("unet-tx", n=4), tmp_path / "identity", {"task": "sharpen", "n_trained": 4})
    plain = Pipeline(demosaic=Demosaic("opencv_ea")).run(BUNDLED).image
    from isp_collab.pipeline import Sharpen

    sharp = Pipeline(demosaic=Demosaic("opencv_ea"), sharpen=Sharpen(model=str(model), n=4)).run(BUNDLED).image
    assert np.abs(sharp - plain).max() < 1e-3  # an identity network changes nothing, seams included
