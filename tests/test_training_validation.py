"""evaluate(): the validation figures that pick best.pt and fill the card come from the model's output."""

import pytest
import torch

from isp_collab.training.validation import ValGroup, evaluate, psnr


class AddConstant(torch.nn.Module):
    """A 'network' whose output is its input plus ``c``; records the stack sizes it was given."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c, self.seen = c, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[:2]))
        return x + self.c


def _valset() -> dict[str, ValGroup]:
    g = torch.Generator().manual_seed(0)
    sharp = torch.rand(8, 3, 16, 16, generator=g)
    return {
        "sigma=1": ValGroup(sharp + 0.01 * torch.randn(sharp.shape, generator=g), sharp, 4),
        "sigma=2": ValGroup(sharp + 0.03 * torch.randn(sharp.shape, generator=g), sharp, 4),
    }


@pytest.mark.parametrize("n", [1, 2, 4])
def test_restored_psnr_is_that_of_the_model_output(n):
    valset, model = _valset(), AddConstant(0.05)
    v = evaluate(model, valset, n=n, border=2, device=torch.device("cpu"))
    for cond, g in valset.items():
        assert v["restored"][cond] == pytest.approx(psnr(g.blurry + 0.05, g.sharp, 2).mean().item(), abs=1e-5)
        assert v["blurry"][cond] == pytest.approx(psnr(g.blurry, g.sharp, 2).mean().item(), abs=1e-5)
        assert v["restored"][cond] < v["blurry"][cond] - 0.5  # the offset costs: the output was scored
    assert {shape[1] for shape in model.seen} == {n}  # stacks of n tiles of one photo
    assert v["mean_psnr"] == pytest.approx(sum(v["restored"].values()) / 2)


def test_a_stack_size_that_does_not_divide_the_photo_groups_is_refused():
    with pytest.raises(ValueError, match="cannot be stacked by n=3"):
        evaluate(AddConstant(0.0), _valset(), n=3, border=0, device=torch.device("cpu"))
