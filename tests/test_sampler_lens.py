"""The lens stack sampler: shapes, mirror positions, the shared PSF of aligned stacks, determinism."""

from __future__ import annotations

import pytest
import torch

from isp_collab.data.batch import StackBatch
from isp_collab.data.lens import LensSampler
from isp_collab.data.sources import DeadLeaves
from isp_collab.physics.psf_field import make_lens

SIZE = (96, 144)  # (H, W)
P = 32
K = 21


@pytest.fixture(scope="module")
def field():
    return make_lens("lens-a", image_size=SIZE, grid=(5, 7), ksize=K)


class NoiseSource:
    """Uniform random sRGB crops; only ``random_crop`` (the contract's minimum)."""

    def random_crop(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(3, size, size, generator=generator)


class DeltaSource:
    """A single bright pixel at the centre of each crop: the blurry patch shows the PSF itself."""

    def random_crop(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        img = torch.zeros(3, size, size)
        img[:, size // 2, size // 2] = 1.0
        return img


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("noise", ["demosaic", "gaussian", "none"])
def test_shapes_and_info(field, n, noise):
    batch = LensSampler(NoiseSource(), field, n=n, patch=P, noise=noise).sample(3, gen())
    assert isinstance(batch, StackBatch)
    assert batch.blurry.shape == batch.sharp.shape == (3, n, 3, P, P)
    assert batch.blurry.dtype == torch.float32 and torch.isfinite(batch.blurry).all()
    assert batch.sharp.min() >= 0 and batch.sharp.max() <= 1
    info = batch.info
    assert info["positions"].shape == info["offsets"].shape == (3, n, 2) and info["radius"].shape == (3, n)
    assert info["psf"].shape == (3, n, 3, K, K) and info["flips"].shape == (3, n, 2)
    x, y = info["positions"][..., 0], info["positions"][..., 1]
    lo = (P - 1) / 2  # whole patches inside the image
    assert (x >= lo - 1e-3).all() and (x <= SIZE[1] - 1 - lo + 1e-3).all()
    assert (y >= lo - 1e-3).all() and (y <= SIZE[0] - 1 - lo + 1e-3).all()
    assert ((info["radius"] >= 0) & (info["radius"] <= 1)).all()


def test_four_mirror_positions(field):
    info = LensSampler(NoiseSource(), field, n=4, patch=P, noise="none").sample(16, gen()).info
    off = info["offsets"]
    assert (off[:, 0] >= 0).all()  # the first patch is in the first quadrant
    signs = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    assert torch.allclose(off, off[:, :1] * signs, atol=1e-4)
    assert torch.allclose(info["radius"], info["radius"][:, :1].expand(-1, 4))
    assert info["flips"][:, 1].tolist() == [[True, False]] * 16 and info["flips"][:, 3].all()
    assert info["radius"].max() > 0.6  # reaches far into the field


def local_psfs(batch: StackBatch) -> torch.Tensor:
    """(B, N, 3, K, K) blur around each patch's (flipped) delta, normalised per channel."""
    B, N = batch.blurry.shape[:2]
    r = K // 2
    out = torch.empty(B, N, 3, K, K)
    for b in range(B):
        for j in range(N):
            yx = torch.nonzero(batch.sharp[b, j, 1] == batch.sharp[b, j, 1].max())[0]
            win = batch.blurry[b, j, :, yx[0] - r : yx[0] + r + 1, yx[1] - r : yx[1] + r + 1]
            out[b, j] = win / win.sum(dim=(-2, -1), keepdim=True)
    return out


def tv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 0.5 * (a - b).abs().sum(dim=(-2, -1)).mean(dim=-1)


def test_aligned_stacks_share_almost_one_psf(field):
    aligned = LensSampler(DeltaSource(), field, n=4, patch=P, noise="none").sample(8, gen(1))
    psf = local_psfs(aligned)
    assert torch.allclose(psf, aligned.info["psf"], atol=1e-5)  # info says what the patch shows
    unaligned = LensSampler(DeltaSource(), field, n=4, patch=P, align=False, noise="none").sample(8, gen(1))
    psf_u = local_psfs(unaligned)
    d_aligned, d_unaligned = tv(psf[:, 1:], psf[:, :1]), tv(psf_u[:, 1:], psf_u[:, :1])
    far = aligned.info["radius"][:, 0] > 0.3  # off-axis stacks, where the PSFs have an orientation
    assert far.sum() >= 3
    assert (d_aligned[far] < 0.2).all(), d_aligned
    assert (d_aligned[far].mean(-1) < 0.4 * d_unaligned[far].mean(-1)).all()


def test_seeded_and_deterministic(field):
    sampler = LensSampler(NoiseSource(), field, n=4, patch=P, noise="demosaic")
    a, b, c = sampler.sample(2, gen(7)), sampler.sample(2, gen(7)), sampler.sample(2, gen(8))
    assert torch.equal(a.blurry, b.blurry) and torch.equal(a.sharp, b.sharp)
    assert torch.equal(a.info["positions"], b.info["positions"])
    assert not torch.equal(a.blurry, c.blurry)


def test_with_dead_leaves_source(field):
    batch = LensSampler(DeadLeaves(seed=0), field, n=4, patch=P, noise="gaussian").sample(2, gen())
    assert batch.blurry.shape == (2, 4, 3, P, P)
    # blur removes detail: the blurry patches have less high-frequency energy than the sharp ones
    hf = lambda x: x.diff(dim=-1).abs().mean()  # noqa: E731
    assert hf(LensSampler(DeadLeaves(0), field, n=4, patch=P, noise="none").sample(2, gen()).blurry) < hf(batch.sharp)


def test_rejects_bad_arguments(field):
    with pytest.raises(ValueError, match="n must be"):
        LensSampler(NoiseSource(), field, n=2)
    with pytest.raises(ValueError, match="noise"):
        LensSampler(NoiseSource(), field, noise="poisson")
    with pytest.raises(ValueError, match="patch"):
        LensSampler(NoiseSource(), field, patch=33)


class RecordingSource:
    """Batched source that records the ``same_image`` flag it was asked for."""

    def __init__(self) -> None:
        self.flags: list[bool] = []

    def random_crops(self, size, count, generator=None, same_image=False):
        self.flags.append(same_image)
        return torch.rand(count, 3, size, size, generator=generator)


@pytest.mark.parametrize("same_image", [False, True])
def test_same_image_reaches_the_source(field, same_image):
    source = RecordingSource()
    LensSampler(source, field, n=4, patch=P, same_image=same_image).sample(2, gen())
    assert source.flags == [same_image, same_image]
