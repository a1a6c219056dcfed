"""``restore`` runs a model as it was trained: a lens model's card (or ONNX sidecar) names mirror gathering
and its calibrated optical centre, and ``restore`` uses them unless told otherwise (a user review found a
lens model restored with spread stacks about the image centre, silently)."""

import json

import numpy as np
import pytest
import torch

from isp_collab.models import create_model, save_model
from isp_collab.restore import restore
from isp_collab.restore.model_card import center_in_pixels, default_strategy, model_card, trained_center


@pytest.fixture(scope="module")
def lens_model(tmp_path_factory):
    model = create_model("unet-tx", n=4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # far from the identity, and mixing the stack, so the gathering shows in the output
        model.outc.weight.copy_(0.1 * torch.randn(model.outc.weight.shape, generator=g))
        for name, p in model.named_parameters():
            if "merge" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    card = {"task": "lens", "n_trained": 4, "recommended_strategy": "mirror", "optical_center": [0.3, 0.6]}
    return save_model(model, tmp_path_factory.mktemp("m") / "lens", card)


def test_a_lens_model_gathers_mirror_stacks_about_its_calibrated_centre(lens_model):
    image = np.random.default_rng(1).random((96, 128, 3), dtype=np.float32)
    kw = {"tile": 32, "overlap": 8}
    default = restore(image, lens_model, **kw)
    centre = (0.3 * 128 - 0.5, 0.6 * 96 - 0.5)  # the card's fractions, in pixel-index coordinates
    np.testing.assert_array_equal(default, restore(image, lens_model, strategy="mirror", center=centre, **kw))
    assert np.abs(default - restore(image, lens_model, strategy="spread", **kw)).max() > 1e-4
    assert np.abs(default - restore(image, lens_model, strategy="mirror", center=(63.5, 47.5), **kw)).max() > 1e-4


def test_defaults_read_from_a_card_or_an_onnx_sidecar(tmp_path):
    assert default_strategy({}) == "spread" and default_strategy({"task": "lens"}) == "mirror"
    assert trained_center({"optical_center": [0.25, 1.0]}) == (0.25, 1.0)
    for bad in ([0.5], [0.5, 1.5], ["0.5", 0.5], [True, 0.5], None):
        assert trained_center({"optical_center": bad}) is None

    class Runner:  # an ONNX backend: only its path
        path = tmp_path / "m.onnx"

    assert model_card(None, Runner()) == {}  # no sidecar
    (tmp_path / "m.json").write_text(json.dumps({"model": {"task": "lens", "optical_center": [0.4, 0.5]}}))
    assert model_card(None, Runner()) == {"task": "lens", "optical_center": [0.4, 0.5]}
    side = {"model": {"task": "sharpen"}, "tiling": {"strategy": "local", "overlap": 8}}  # what it was exported for
    (tmp_path / "m.json").write_text(json.dumps(side))
    assert model_card(None, Runner()) == {"task": "sharpen", "recommended_strategy": "local", "exported_overlap": 8}
    Runner.path = tmp_path / "m.ONNX"  # make_backend takes any case
    (tmp_path / "m.json").write_text(json.dumps({"model": {"task": "lens"}}))
    assert model_card(None, Runner()) == {"task": "lens"}
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"m.json: cannot read the ONNX model's sidecar"):
        model_card(None, Runner())


def test_a_trained_centre_stays_inside_the_image():
    assert center_in_pixels((0.25, 0.5), 128, 96) == (31.5, 47.5)
    assert center_in_pixels((0.0, 1.0), 64, 64) == (0.0, 63.0)  # not -0.5 / 63.5: refused by the tiling


class _FakeOnnx:
    """An ONNX backend as restore sees one: a path (whose sidecar is read), a static N and tile, the identity."""

    def __init__(self, path):
        self.path, self.n, self.tile, self.multiple, self.pooling = path, 4, 32, 8, "max"
        self.calls = 0

    def run(self, stacks):
        self.calls += 1
        return stacks


def test_an_exported_file_runs_with_the_tiling_it_was_exported_for_and_a_broken_sidecar_only_matters_if_read(
    tmp_path,
):
    image = np.random.default_rng(2).random((64, 96, 3), dtype=np.float32)
    path = tmp_path / "x.onnx"
    (tmp_path / "x.json").write_text(json.dumps({"model": {"task": "sharpen"}, "tiling": {"overlap": 14}}))
    runs = {}
    for overlap in (None, 14, 8):  # the sidecar's overlap by default: as overlap=14, not as the default 32 // 4
        backend = _FakeOnnx(path)
        restore(image, backend, strategy="spread", overlap=overlap)
        runs[overlap] = backend.calls
    assert runs[None] == runs[14] != runs[8]
    (tmp_path / "x.json").write_text("{broken")
    restore(image, _FakeOnnx(path), strategy="spread", overlap=8)  # nothing left open: the sidecar is not read
    with pytest.raises(ValueError, match=r"x.json: cannot read the ONNX model's sidecar"):
        restore(image, _FakeOnnx(path), overlap=8)  # the strategy is open: read, and refused


@pytest.mark.parametrize(
    ("tiling", "said"),
    [
        ({"tile": 256, "overlap": 500}, r"tiling.overlap must be an integer in \[0, tile // 2 = 128\], got 500"),
        ({"overlap": -1}, r"tiling.overlap must be an integer >= 0, got -1"),
        ({"overlap": 8.5}, r"tiling.overlap must be an integer"),
        ({"strategy": "swirl"}, r"tiling.strategy must be one of spread, local, mirror, got 'swirl'"),
    ],
)
def test_a_sidecar_tiling_the_file_cannot_run_with_is_refused_when_opened(tmp_path, tiling, said):
    """process --onnx reported a bad overlap as every input's fault, once per image, not the sidecar's."""
    from isp_collab.restore.model_card import onnx_sidecar

    (tmp_path / "x.json").write_text(json.dumps({"model": {"task": "sharpen"}, "tiling": tiling}))
    with pytest.raises(ValueError, match=rf"x.json: {said}"):
        onnx_sidecar(tmp_path / "x.onnx")
