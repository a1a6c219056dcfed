"""Collaboration layers against independent references: stack attention = torch's scaled dot-product attention
over the N patches of each pixel, in a pre-norm transformer block."""

import torch
import torch.nn.functional as F

from isp_collab.models.collab import StackAttention


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
