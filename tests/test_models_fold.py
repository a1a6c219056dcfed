"""fold_batchnorm on small hand-made modules: every Conv2d -> BatchNorm2d pair, and only those."""

import pytest
import torch
from torch import nn

from isp_collab.models.fold import fold_batchnorm


def _trained_bn(channels: int, **kw) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, **kw)
    with torch.no_grad():  # running statistics and affine parameters far from the identity
        if bn.track_running_stats:
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
        if bn.affine:
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
    return bn


def test_every_conv_bn_pair_is_folded_exactly_nested_and_at_the_end_of_a_sequential():
    torch.manual_seed(0)
    inner = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), _trained_bn(4))  # the pair is last
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _trained_bn(4), nn.Sequential(inner)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert not [m for m in folded.modules() if isinstance(m, nn.BatchNorm2d)]
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[2][0][2], nn.Identity)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(folded(x), model(x), atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched


@pytest.mark.parametrize(
    "model",
    [
        lambda: nn.Sequential(_trained_bn(3), nn.Conv2d(3, 3, 1)),  # a BatchNorm before the conv
        lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU(), _trained_bn(3)),  # not right after it
        lambda: nn.Sequential(nn.Conv2d(3, 3, 1), _trained_bn(3, affine=False)),
        lambda: nn.Sequential(nn.Conv2d(3, 3, 1), _trained_bn(3, track_running_stats=False)),
    ],
)
def test_a_batchnorm_that_cannot_be_folded_is_refused(model):
    with pytest.raises(ValueError, match="cannot fold BatchNorm"):
        fold_batchnorm(model())
