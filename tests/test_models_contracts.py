"""Collaboration layers and UNet configs against independent references: stack attention = torch's scaled
dot-product attention over the N patches of each pixel, in a pre-norm transformer block; exact pooling and FiLM."""

import pytest
import torch
import torch.nn.functional as F

from isp_collab.models.collab import Collaboration, StackAttention


def test_heads_split_the_channels_or_fall_back_to_one():
    assert StackAttention(6).heads == 2  # the default: 2 heads
    assert StackAttention(5).heads == 1  # 5 channels cannot split into 2 heads
    assert StackAttention(6, heads=3).heads == 3
    assert StackAttention(6).mlp[0].out_features == 12  # inverted bottleneck, expansion 2


def test_stack_attention_is_a_pre_norm_transformer_block_over_the_stack():
    torch.manual_seed(0)
    for channels, heads in ((6, 2), (5, 1), (6, 3)):
        att = StackAttention(channels, heads=heads)
        b, n, h, w = 2, 3, 2, 3
        x = torch.randn(b, n, channels, h, w)
        t = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, n, channels)  # tokens: the N patches of one pixel
        q, k, v = (
            z.transpose(1, 2)  # (pixels, heads, N, d)
            for z in att.qkv(att.norm1(t)).reshape(b * h * w, n, 3, att.heads, channels // att.heads).unbind(2)
        )
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b * h * w, n, channels)
        t = t + att.proj(o)
        t = t + att.mlp(att.norm2(t))
        expected = t.reshape(b, h, w, n, channels).permute(0, 3, 4, 1, 2)
        with torch.no_grad():
            assert torch.allclose(att(x), expected, atol=1e-5)


def _pooled_only(pooling: str, channels: int, merge: str = "concat") -> Collaboration:
    """A layer whose merge conv is [0 | I]: its output is the pooled features g themselves."""
    layer = Collaboration(channels, pooling=pooling, merge=merge)
    with torch.no_grad():
        layer.merge.weight.zero_()
        layer.merge.weight[:, channels:, 0, 0].copy_(torch.eye(channels))
    return layer


def test_pooling_is_the_stacks_max_mean_or_max_of_patch_means():
    torch.manual_seed(1)
    x = torch.randn(2 * 3, 4, 5, 5)  # two stacks of N = 3
    stack = x.reshape(2, 3, 4, 5, 5)
    expected = {
        "max": stack.amax(dim=1, keepdim=True),
        "mean": stack.mean(dim=1, keepdim=True),
        "global-max": stack.mean(dim=(3, 4), keepdim=True).amax(dim=1, keepdim=True),
    }
    with torch.no_grad():
        for pooling, g in expected.items():
            out = _pooled_only(pooling, 4)(x, 3).reshape(2, 3, 4, 5, 5)
            assert torch.allclose(out, g.expand_as(stack), atol=1e-6), pooling


def test_film_layer_starts_as_the_plain_layer():
    torch.manual_seed(2)
    x = torch.randn(2 * 3, 4, 5, 5)
    plain, film = Collaboration(4, init="random"), Collaboration(4, init="random", merge="film")
    film.merge.load_state_dict(plain.merge.state_dict())
    with torch.no_grad():
        assert torch.allclose(film(x, 3), plain(x, 3), atol=1e-6)


def test_film_scales_the_merged_features_by_one_plus_a_conv_of_the_stack_descriptor():
    torch.manual_seed(3)
    x = torch.randn(2 * 3, 4, 5, 5)
    plain, film = Collaboration(4, init="random"), Collaboration(4, init="random", merge="film")
    film.merge.load_state_dict(plain.merge.state_dict())
    with torch.no_grad():
        film.scale.weight.normal_()
        film.scale.bias.normal_()
        g = x.reshape(2, 3, 4, 5, 5).amax(dim=1, keepdim=True).expand(2, 3, 4, 5, 5).reshape(6, 4, 5, 5)
        expected = plain(x, 3) * (1 + film.scale(g.mean(dim=(2, 3), keepdim=True)))
        assert torch.allclose(film(x, 3), expected, atol=1e-5)


def test_default_config_is_the_default_architecture_and_norm_picks_batchnorm_or_biases():
    from torch import nn

    from isp_collab.models import ARCHITECTURES, create_model
    from isp_collab.models.unet import ModelConfig

    default = create_model()
    assert ModelConfig() == default.config  # unet-tx, N = 1
    assert (default.config.depth, default.config.width) == ARCHITECTURES["unet-tx"]
    for norm, has_bn in (("batch", True), ("none", False)):
        model = create_model("unet-tx", norm=norm)
        convs3 = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == has_bn
        assert all((c.bias is None) == has_bn for c in convs3)  # a BatchNorm makes the conv's bias redundant


def test_every_layer_of_a_collaborative_unet_takes_part_and_n2_collaborates():
    """After randomising (the zero output conv would stop every gradient), each parameter gets a gradient:
    no collaboration layer is built and then skipped, or skipped in forward."""
    from isp_collab.models import create_model

    assert create_model(n=2).config.collaborative and not create_model(n=1).config.collaborative
    torch.manual_seed(0)
    model = create_model("unet-tx", n=2, collab_init="random").train()
    assert len(model.collab_down) == len(model.collab_up) == model.config.depth
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model(torch.rand(1, 2, 3, 16, 16)).square().sum().backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not unused


def test_the_output_is_the_input_plus_the_residual_and_bad_stacks_are_refused():
    from isp_collab.models import create_model

    model = create_model("unet-tx", n=2).eval()
    with torch.no_grad():
        model.outc.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))  # a constant residual per channel
        x = torch.rand(1, 2, 3, 16, 16)
        assert torch.allclose(model(x), x + torch.tensor([0.1, -0.2, 0.3])[:, None, None], atol=1e-6)
    for bad in (torch.rand(1, 2, 1, 16, 16), torch.rand(0, 2, 3, 16, 16), torch.rand(1, 0, 3, 16, 16)):
        with pytest.raises(ValueError, match="stack"):
            model(bad)
