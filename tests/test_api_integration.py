"""``restore`` as an integrator's Python pipeline calls it: progress and cancelling, backends of one's own, dark
frames, and what it refuses (a review of the API from a camera maker's side)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from isp_collab.restore import make_backend, restore


class Wrapper:
    """A backend of one's own around another (progress, another runtime): no card unless given one."""

    n = None
    tile = None
    multiple = 8

    def __init__(self, inner, card=None):
        self.inner, self.shapes = inner, []
        if card is not None:
            self.card = card

    def run(self, stacks):
        self.shapes.append(stacks.shape)
        return self.inner.run(stacks)


def _photo(h=96, w=128, level=0.5):
    rng = np.random.default_rng(0)
    return (rng.random((h, w, 3), dtype=np.float32) * level).astype(np.float32)


def test_progress_can_be_a_callable_and_it_can_cancel():
    backend = make_backend("sharpen-unet-tx-n4", device="cpu")
    calls = []
    restore(_photo(), backend, tile=32, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == sorted(d for d, _ in calls)

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        restore(_photo(), backend, tile=32, progress=cancel)


def test_a_backend_of_ones_own_keeps_the_lens_models_stacks_or_is_warned():
    """A progress wrapper around a lens model ran single tiles, spread: silently different (0.135 off)."""
    lens = make_backend("lens-a-unet-tx-n4", device="cpu")
    image = _photo(128, 128)
    direct = restore(image, lens, tile=32)
    carded = Wrapper(lens, card=lens.model.card)
    np.testing.assert_array_equal(restore(image, carded, tile=32), direct)
    assert all(shape[1] == 4 for shape in carded.shapes)
    with pytest.warns(UserWarning, match="has no model card, static N or network config: running stacks of N=1"):
        restore(image, Wrapper(lens), tile=32)


def test_a_very_dark_frame_is_warned_about_unless_the_exposure_gain_is_on():
    backend = make_backend("sharpen-unet-tx-n4", device="cpu")
    dark = _photo(level=0.03)
    with pytest.warns(
        UserWarning, match=r"a dark frame \(its brightest 1% below 0\.1\) restored as is.*exposure_target"
    ):
        restore(dark, backend, tile=32)
    with warnings.catch_warnings(record=True) as caught:  # one text: a loop of frames is told once
        warnings.simplefilter("default")
        for level in (0.03, 0.02, 0.01):
            restore(_photo(level=level), backend, tile=32)
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore(dark, backend, tile=32, exposure_target=0.25)
        restore(np.zeros((40, 40, 3), np.float32), backend, tile=32)  # black: nothing to say
        restore(_photo(), backend, tile=32)


def test_what_restore_refuses_and_says():
    import torch

    backend = make_backend("sharpen-unet-tx-n4", device="cpu")
    for strategy in ("spread", None):  # None: the sharpening model's own, spread (the centre was dropped silently)
        with pytest.raises(ValueError, match=r"center applies to strategy 'mirror' only, got strategy='spread'"):
            restore(_photo(), backend, strategy=strategy, center=(10.0, 10.0))
    with pytest.raises(ValueError, match=r"got Tensor \(image\.cpu\(\)\.numpy\(\), H x W x 3\)"):
        restore(torch.zeros(8, 8, 3), backend)
    with pytest.raises(ValueError, match=r"x\.astype\(np\.float32\) / 65535"):
        restore(np.zeros((8, 8, 3), np.uint16), backend)

    class Overflowing(Wrapper):
        def run(self, stacks):
            return np.full_like(stacks, np.inf)

    with pytest.raises(ValueError, match="the network returned NaN or infinity"):
        restore(_photo(), Overflowing(backend), n=1, tile=32)


def test_frames_and_stages_from_python():
    from isp_collab.pipeline import Frame, UnsharpMask

    image = _photo()
    for gains in ((0.0, 1.0, 1.0), (-1.0, 1.0, 1.0), (1.0, 1.0), (1.0, float("nan"), 1.0), 2.0, (True, 1, 1)):
        with pytest.raises(ValueError, match="wb_gains must be 3 finite positive numbers"):
            Frame.for_image(image, wb_gains=gains)
    frame = Frame.for_image(image, wb_gains=np.array([2.0, 1.0, 1.5]))
    assert frame.wb_gains == (2.0, 1.0, 1.5)  # a tuple of floats, not the array
    out = UnsharpMask()(image.astype(np.float64), frame)  # float64 taken as float32, as restore takes it
    assert out.dtype == np.float32 and out.shape == image.shape


def test_a_stage_runs_a_network_or_backend_given_from_python():
    """Sharpen(model=<network>) failed in os.fspath: a network in memory or a shared backend could only be
    injected through the private _runner."""
    from isp_collab.models import load_model
    from isp_collab.pipeline import Frame, LensCorrect, Sharpen

    image = _photo()
    frame = Frame.for_image(image)
    net = load_model("sharpen-unet-tx-n4")
    expected = Sharpen(tile=32)(image, frame)
    np.testing.assert_allclose(Sharpen(model=net, tile=32)(image, frame), expected, atol=1e-6)
    shared = make_backend(net, device="cpu")
    np.testing.assert_allclose(Sharpen(model=shared, tile=32)(image, frame), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"the TorchBackend given as model: a 'sharpen' model cannot run the lens"):
        LensCorrect(model=shared).network()
    with pytest.raises(ValueError, match=r"sharpen\.model must be a model name or folder, a network or a backend"):
        Sharpen(model=3)


def test_a_stage_checks_an_onnx_backend_given_as_model_by_its_sidecar(tmp_path):
    """Sharpen(model=OnnxBackend(<a lens export>)) ran unchecked: the card of an ONNX file is its sidecar's."""
    import warnings

    from isp_collab.export import export_model
    from isp_collab.pipeline import LensCorrect, Sharpen
    from isp_collab.restore import OnnxBackend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (art,) = export_model("lens-a-unet-tx-n4", tile=32, formats=("onnx",), precisions=("fp32",), out_dir=tmp_path)
    onnx = OnnxBackend(art.path)
    with pytest.raises(ValueError, match=r"the OnnxBackend given as model: a 'lens' model cannot run the sharpen"):
        Sharpen(model=onnx).network()
    stage = LensCorrect(model=onnx)
    assert stage.network() is onnx and stage._exported_tiling["strategy"] == "mirror"
    with pytest.raises(ValueError, match=r"already runs somewhere: device and backend cannot change it"):
        LensCorrect(model=onnx, device="cpu").network()


@pytest.mark.parametrize(("n", "tile"), [(1, 256), (2, 256), (4, 192), (8, 160)])
def test_the_default_tile_shrinks_with_the_stack(n, tile):
    """N x tile² is what one call holds: at 192 px N=4 took 22% less time per MP than at 256 on the CPU (RESULTS
    *tile-default*); an explicit tile and an exported file's static one are kept."""
    from isp_collab.restore import default_tile

    assert default_tile(n) == tile
    card = {"task": "sharpen", "n_trained": n, "recommended_strategy": "spread"}
    spy = Wrapper(make_backend("sharpen-unet-tx-n4", device="cpu"), card=card)
    restore(_photo(400, 600), spy)
    assert {shape[1:] for shape in spy.shapes} == {(n, 3, tile, tile)}
    spy.shapes.clear()
    restore(_photo(400, 600), spy, tile=64)
    assert {shape[-1] for shape in spy.shapes} == {64}


def test_a_static_tile_is_kept_whatever_the_stack():
    class Static(Wrapper):
        n, tile = 4, 96

    spy = Static(make_backend("sharpen-unet-tx-n4", device="cpu"), card={"task": "sharpen", "n_trained": 4})
    restore(_photo(200, 200), spy)
    assert {shape[1:] for shape in spy.shapes} == {(4, 3, 96, 96)}


def test_the_default_tile_fits_the_network_and_the_device():
    from isp_collab.restore import default_tile

    assert default_tile(8, multiple=64) == 256  # 160 is no multiple of 64: the 256 that ran before
    assert default_tile(4, multiple=64) == 192
    assert default_tile(4, device="cuda") == 256  # measured there with 256; its time is mostly host work
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            default_tile(bad)
    # a backend of one's own on a GPU keeps 256 (its device's type is what counts)
    spy = Wrapper(make_backend("sharpen-unet-tx-n4", device="cpu"), card={"task": "sharpen", "n_trained": 4})
    spy.device = "cuda:0"
    restore(_photo(400, 600), spy)
    assert {shape[-1] for shape in spy.shapes} == {256}
