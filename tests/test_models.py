"""The UNet family: parameter counts vs the paper, identity start, permutation equivariance, any N."""

import pytest
import torch

from isp_collab.models import ARCHITECTURES, count_params, create_model
from isp_collab.models.collab import POOLINGS
from isp_collab.models.complexity import PAPER_PARAMS, gflops_per_megapixel


@pytest.mark.parametrize(("arch", "label"), sorted(PAPER_PARAMS))
def test_param_counts_match_paper_within_5_percent(arch, label):
    model = create_model(arch, n=1 if label == "N=1" else 4, pooling="max")
    assert count_params(model) == pytest.approx(PAPER_PARAMS[(arch, label)], rel=0.05)


def test_every_named_arch_has_a_paper_count():
    assert {a for a, _ in PAPER_PARAMS} == set(ARCHITECTURES)


@pytest.mark.parametrize("pooling", ["max", "mean", "global-max", "attention"])
def test_untrained_model_is_identity(pooling):
    model = create_model("unet-tx", n=3, pooling=pooling).eval()
    x = torch.rand(2, 3, 3, 16, 24)
    assert torch.equal(model(x), x)


@pytest.mark.parametrize("collab_init", ["identity", "random"])
def test_untrained_model_is_identity_whatever_the_collaboration_init(collab_init):
    model = create_model("unet-tx", n=4, collab_init=collab_init).eval()
    x = torch.rand(1, 4, 3, 16, 16)
    assert torch.equal(model(x), x)


def test_collaboration_init_identity_ignores_the_pooled_features_random_mixes_them():
    """[I | 0] starts each merge conv as 'own features only'; 'random' keeps PyTorch's init."""
    ident = create_model("unet-tx", n=4).collab_down[0].merge.weight[:, :, 0, 0]
    c = ident.shape[0]
    assert torch.equal(ident, torch.cat([torch.eye(c), torch.zeros(c, c)], dim=1))
    rand = create_model("unet-tx", n=4, collab_init="random").collab_down[0].merge.weight[:, :, 0, 0]
    assert rand[:, c:].abs().sum() > 0 and not torch.equal(rand[:, :c], torch.eye(c))
    with pytest.raises(ValueError, match="init must be one of"):
        create_model("unet-tx", n=4, collab_init="zeros")


def _randomise(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize(
    ("pooling", "merge", "norm"),
    [(p, "concat", "batch") for p in POOLINGS] + [("max", "film", "batch"), ("max", "concat", "none")],
)
def test_permuting_the_stack_permutes_the_output(pooling, merge, norm):
    model = _randomise(create_model("unet-tx", n=4, pooling=pooling, merge=merge, norm=norm))
    x = torch.rand(2, 4, 3, 16, 16)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        torch.testing.assert_close(model(x[:, perm]), model(x)[:, perm], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_same_weights_run_at_any_n(n):
    model = _randomise(create_model("unet-tx", n=4))
    with torch.no_grad():
        y = model(torch.rand(1, n, 3, 16, 16))
    assert y.shape == (1, n, 3, 16, 16)
    assert torch.isfinite(y).all()


def test_collaboration_actually_mixes_the_stack():
    model = _randomise(create_model("unet-tx", n=4))
    x = torch.rand(1, 4, 3, 16, 16)
    x2 = x.clone()
    x2[0, 3] = torch.rand(3, 16, 16)  # change one patch: the others must change too
    with torch.no_grad():
        assert (model(x)[0, 0] - model(x2)[0, 0]).abs().max() > 1e-4


def test_n1_weights_run_as_a_plain_unet_patch_by_patch():
    model = _randomise(create_model("unet-tx", n=1))
    assert model.collab_down is None
    x = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        stacked = model(x)
        single = torch.cat([model(x[:, i : i + 1]) for i in range(3)], dim=1)
    torch.testing.assert_close(stacked, single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 3, 12, 16), (1, 1, 3, 16, 20)])
def test_size_not_multiple_of_2_pow_depth_is_a_clear_error(shape):
    with pytest.raises(ValueError, match="multiples of 8"):
        create_model("unet-tx")(torch.rand(shape))


def test_wrong_rank_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(B, N, 3, H, W\)"):
        create_model("unet-tx")(torch.rand(1, 3, 16, 16))


def test_unknown_arch_and_bad_n():
    with pytest.raises(ValueError, match="unknown architecture"):
        create_model("resnet")
    with pytest.raises(ValueError, match="n must be"):
        create_model("unet-tx", n=0)


def test_flops_scale_with_width():
    tx = gflops_per_megapixel(create_model("unet-tx"), size=32)
    ts = gflops_per_megapixel(create_model("unet-ts"), size=32)
    assert 3.5 < ts / tx < 4.5  # width x2 -> ~4x the multiply-adds


def test_global_max_pooling_sees_the_stack_only_through_patch_descriptors():
    # Shuffling the pixels of another patch keeps its spatial mean: global-max pooling cannot tell,
    # per-pixel max pooling can.
    x = torch.rand(1, 4, 3, 16, 16)
    x2 = x.clone()
    x2[0, 3] = x[0, 3].flatten(1)[:, torch.randperm(256)].reshape(3, 16, 16)
    layer = create_model("unet-tx", n=4, pooling="global-max").collab_down[0]
    local = create_model("unet-tx", n=4, pooling="max").collab_down[0]
    for m in (layer, local):
        with torch.no_grad():
            m.merge.weight.normal_()
    feats, feats2 = (t.reshape(4, 3, 16, 16).repeat(1, 6, 1, 1)[:, :16] for t in (x, x2))
    with torch.no_grad():
        torch.testing.assert_close(layer(feats, 4)[:3], layer(feats2, 4)[:3])
        assert (local(feats, 4)[:3] - local(feats2, 4)[:3]).abs().max() > 1e-3


def test_film_merge_starts_as_the_plain_layer_and_scales_by_a_stack_descriptor():
    """merge="film": identity at init; then own features are scaled per channel by a descriptor of
    the whole stack (the same for every member, unchanged by permuting or repeating members)."""
    x = torch.rand(1, 4, 3, 16, 16)
    model = create_model("unet-tx", n=4, merge="film").eval()
    assert torch.equal(model(x), x)
    assert model.config.merge == "film" and create_model("unet-tx", n=4).collab_down[0].scale is None
    layer = create_model("unet-tx", n=4, merge="film").collab_down[0]
    plain = create_model("unet-tx", n=4).collab_down[0]
    with torch.no_grad():
        layer.scale.weight.normal_()
        feats = torch.rand(8, 16, 8, 8)  # two stacks of 4
        scale = layer(feats, 4) / plain(feats, 4)  # the merge conv is [I | 0] in both: own features
        per_channel = scale.flatten(2)
        torch.testing.assert_close(per_channel, per_channel[..., :1].expand_as(per_channel))  # uniform over space
        torch.testing.assert_close(scale[:4], scale[:1].expand(4, -1, -1, -1))  # shared by the stack
        assert (scale[0] - scale[4]).abs().max() > 1e-3  # another stack, another scale
        five = torch.cat([feats[:4], feats[:1]])  # the first stack with member 0 repeated (restore pads so)
        torch.testing.assert_close(layer(five, 5)[:4], layer(feats, 4)[:4])
    with pytest.raises(ValueError, match="merge must be one of"):
        create_model("unet-tx", n=4, merge="add")
