"""The sharpen stack sampler: shapes, shared blur, exact targets, determinism."""

import math

import pytest
import torch

from isp_collab.data.batch import StackBatch
from isp_collab.data.sharpen import SharpenSampler
from isp_collab.data.sources import DeadLeaves
from isp_collab.physics.unprocess import unprocess

# tiny kernels keep these tests fast; the sampler warns that they cut the widest blurs (tested below)
pytestmark = pytest.mark.filterwarnings("ignore:kernel_size .* cuts Gaussians")


class ImpulseSource:
    """Black crops with one white pixel at the centre; records what it returned."""

    def __init__(self) -> None:
        self.crops: list[torch.Tensor] = []

    def random_crops(self, size, count, generator=None, same_image=False):
        x = torch.zeros(count, 3, size, size)
        x[..., size // 2, size // 2] = 1.0
        self.crops.append(x)
        return x


@pytest.mark.parametrize("noise", ["demosaic", "gaussian"])
def test_shapes_and_info(noise):
    s = SharpenSampler(DeadLeaves(), n=3, patch=16, noise=noise, kernel_size=9)
    b = s.sample(2, torch.Generator().manual_seed(0))
    assert isinstance(b, StackBatch)
    assert b.blurry.shape == b.sharp.shape == (2, 3, 3, 16, 16)
    assert b.blurry.dtype == b.sharp.dtype == torch.float32
    assert b.sharp.min() >= 0 and b.sharp.max() <= 1
    assert b.info["kernels"].shape == (2, 9, 9) and b.info["sigmas"].shape == (2, 2)
    key = "noise_sigma" if noise == "gaussian" else "shot"
    assert b.info[key].shape == (2, 3)


def test_one_kernel_per_stack_and_exact_centre_targets():
    src = ImpulseSource()
    k, P = 9, 16
    s = SharpenSampler(src, n=3, patch=P, kernel_size=k, sigma_range=(0.5, 3.0))
    b = s.sample_clean(2, torch.Generator().manual_seed(1))
    h = k // 2
    for i in range(2):
        linear = unprocess(src.crops[i], b.info["isp"][i])
        torch.testing.assert_close(b.sharp[i], linear[..., h : h + P, h : h + P])
        # A centred impulse of amplitude a blurs to a * kernel: every patch shows the stack's kernel.
        amp = linear[..., (P + k - 1) // 2, (P + k - 1) // 2]  # (N, 3)
        window = b.blurry[i][..., P // 2 - h : P // 2 + h + 1, P // 2 - h : P // 2 + h + 1]
        expected = amp[..., None, None] * b.info["kernels"][i]
        torch.testing.assert_close(window, expected, atol=1e-6, rtol=1e-4)
    assert not torch.allclose(b.info["kernels"][0], b.info["kernels"][1])


def test_noise_is_per_patch_by_default():
    s = SharpenSampler(ImpulseSource(), n=4, patch=8, kernel_size=5, noise="gaussian")
    b = s.sample(1, torch.Generator().manual_seed(2))
    sigma = b.info["noise_sigma"][0]
    assert sigma.unique().numel() == 4


@pytest.mark.parametrize("noise", ["gaussian", "demosaic"])
def test_noise_per_stack_on_request(noise):
    """Like one photo: one noise level (and one Bayer pattern) for a stack's N patches, new per stack."""
    s = SharpenSampler(DeadLeaves(), n=4, patch=8, kernel_size=5, noise=noise, noise_per="stack")
    b = s.sample(3, torch.Generator().manual_seed(2))
    level = b.info["noise_sigma"] if noise == "gaussian" else b.info["shot"]
    assert level.shape == (3, 4)
    assert all(row.unique().numel() == 1 for row in level)
    assert level[:, 0].unique().numel() == 3
    if noise == "demosaic":
        assert all(len(set(p)) == 1 for p in b.info["patterns"])
    with pytest.raises(ValueError, match="noise_per"):
        SharpenSampler(DeadLeaves(), n=2, noise_per="pixel")


def test_seeded_sampler_is_deterministic():
    s = SharpenSampler(DeadLeaves(), n=2, patch=16, kernel_size=9)
    a = s.sample(2, torch.Generator().manual_seed(5))
    b = s.sample(2, torch.Generator().manual_seed(5))
    c = s.sample(2, torch.Generator().manual_seed(6))
    assert torch.equal(a.blurry, b.blurry) and torch.equal(a.sharp, b.sharp)
    assert not torch.equal(a.sharp, c.sharp)


def test_same_image_and_bad_arguments():
    s = SharpenSampler(DeadLeaves(), n=2, patch=16, kernel_size=9, same_image=True)
    assert s.sample(1, torch.Generator().manual_seed(0)).sharp.shape == (1, 2, 3, 16, 16)
    with pytest.raises(ValueError, match="noise"):
        SharpenSampler(DeadLeaves(), n=2, noise="poisson")
    with pytest.raises(ValueError, match="even patch"):
        SharpenSampler(DeadLeaves(), n=2, patch=15)


@pytest.mark.parametrize("same_image", [False, True])
def test_same_image_reaches_the_source(same_image):
    class Recording(ImpulseSource):
        flags: list[bool] = []

        def random_crops(self, size, count, generator=None, same_image=False):
            self.flags.append(same_image)
            return super().random_crops(size, count, generator, same_image)

    source = Recording()
    source.flags = []
    SharpenSampler(source, n=2, patch=8, kernel_size=5, same_image=same_image).sample(3, torch.Generator())
    assert source.flags == [same_image] * 3


@pytest.mark.parametrize("same_image", [False, True])
def test_image_folder_crops_one_photo_for_a_stack_when_asked(tmp_path, same_image):
    import cv2
    import numpy as np

    from isp_collab.data.sources import ImageFolder

    levels = [10, 60, 110, 160, 210, 250]
    for i, level in enumerate(levels):  # flat photos: a crop's level says which photo it came from
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((40, 40, 3), level, np.uint8))
    src = ImageFolder(tmp_path)
    stacks = [  # the photos each stack's four crops came from
        {round(float(c.mean()) * 255) for c in src.random_crops(16, 4, torch.Generator().manual_seed(s), same_image)}
        for s in range(5)
    ]
    if same_image:
        assert all(len(photos) == 1 for photos in stacks)
    else:  # 4 crops of 6 photos, drawn 5 times: some stack mixes photos
        assert max(len(photos) for photos in stacks) > 1
    assert len(set().union(*stacks)) > 1  # and stacks come from different photos


def test_image_folder_reads_8_16_bit_and_grey(tmp_path):
    import cv2
    import numpy as np

    from isp_collab.data.sources import ImageFolder

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "a16.png"), rng.integers(0, 65535, (40, 30, 3), dtype=np.uint16))
    cv2.imwrite(str(tmp_path / "grey.png"), rng.integers(0, 255, (30, 50), dtype=np.uint8))
    src = ImageFolder(tmp_path)
    assert len(src) == 2 and [a.dtype for a in src.arrays] == [np.uint16, np.uint8]
    grey = list(src.images())[1]
    assert grey.shape == (3, 30, 50) and torch.equal(grey[0], grey[2])
    crops = src.random_crops(24, 5, torch.Generator().manual_seed(0), same_image=True)
    assert crops.shape == (5, 3, 24, 24) and crops.min() >= 0 and crops.max() <= 1
    with pytest.warns(UserWarning, match="memory cap"):
        assert len(ImageFolder(tmp_path, max_bytes=8000)) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        ImageFolder(tmp_path / "empty")


@pytest.mark.parametrize("noise_per", ["patch", "stack"])
def test_mixed_noise_draws_both_kinds(noise_per):
    """noise="mixed": each draw is demosaicking residual or white noise; info says which, per patch."""
    s = SharpenSampler(DeadLeaves(), n=4, patch=8, kernel_size=5, noise="mixed", noise_per=noise_per)
    b = s.sample(8, torch.Generator().manual_seed(3))
    demosaic = b.info["demosaic"]
    assert demosaic.shape == (8, 4) and demosaic.any() and (~demosaic).any()
    assert ((b.info["noise_sigma"] > 0) == ~demosaic).all()
    assert ((b.info["shot"] > 0) == demosaic).all()
    if noise_per == "stack":
        assert all(row.unique().numel() == 1 for row in demosaic.int())
    clean = SharpenSampler(DeadLeaves(), n=4, patch=8, kernel_size=5).sample_clean(8, torch.Generator().manual_seed(3))
    assert not torch.equal(b.blurry, clean.blurry)  # every patch got noise of one kind
    assert ((b.blurry - clean.blurry).flatten(2).std(-1) > 0).all()
    with pytest.raises(ValueError, match="noise must be"):
        SharpenSampler(DeadLeaves(), n=2, noise="speckle")


def test_noise_kind_per_stack_keeps_levels_per_patch_and_n1_stream():
    """noise_kind_per="stack": one demosaicking-or-white coin per stack (as in one photo), levels per patch."""
    s = SharpenSampler(DeadLeaves(), n=4, patch=8, kernel_size=5, noise="mixed", noise_kind_per="stack")
    b = s.sample(8, torch.Generator().manual_seed(3))
    demosaic = b.info["demosaic"]
    assert all(row.unique().numel() == 1 for row in demosaic.int())
    assert demosaic[:, 0].any() and (~demosaic[:, 0]).any()  # both kinds over the batch
    levels = torch.where(demosaic, b.info["shot"], b.info["noise_sigma"])
    assert all(row.unique().numel() == 4 for row in levels)  # a level per patch
    # at N=1 a stack is a patch: the same random stream as the per-patch coin
    one = {
        k: SharpenSampler(DeadLeaves(), n=1, patch=8, kernel_size=5, noise="mixed", noise_kind_per=k)
        for k in ("patch", "stack")
    }
    a, c = (one[k].sample(4, torch.Generator().manual_seed(1)) for k in ("patch", "stack"))
    assert torch.equal(a.blurry, c.blurry)
    with pytest.raises(ValueError, match="noise_kind_per must be"):
        SharpenSampler(DeadLeaves(), n=2, noise="mixed", noise_kind_per="photo")


def test_every_command_reads_the_same_photo_files(tmp_path):
    """train, bench, export calibration and process accept one set of photo suffixes, found the same way."""
    import cv2
    import numpy as np

    from isp_collab.bench.data import list_images
    from isp_collab.data.sources import IMAGE_SUFFIXES, image_files
    from isp_collab.export.calibration import validation_files
    from isp_collab.pipeline.io import IMAGE_EXTENSIONS

    assert set(IMAGE_SUFFIXES) == IMAGE_EXTENSIONS
    (tmp_path / "sub").mkdir()
    (tmp_path / "trap.png").mkdir()  # a folder named like a photo is not a photo
    photo = np.zeros((8, 8, 3), np.uint8)
    for name in ("a.png", "sub/b.JPG", "c.bmp"):
        assert cv2.imwrite(str(tmp_path / name), photo)
    (tmp_path / "d.txt").touch()
    expected = [tmp_path / "a.png", tmp_path / "sub/b.JPG"]
    assert image_files(tmp_path) == list_images(tmp_path) == validation_files(tmp_path) == expected


def test_hidden_files_are_not_photos_and_opencvs_log_prefix_is_not_the_reason(tmp_path):
    """A macOS ._IMG.png (AppleDouble metadata) stopped a training run as 'cannot read the image'."""
    import cv2
    import numpy as np

    from isp_collab.data.sources import image_files, read_image

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / ".thumbs").mkdir()
    cv2.imwrite(str(tmp_path / ".thumbs" / "b.png"), np.zeros((8, 8, 3), np.uint8))
    assert image_files(tmp_path) == [tmp_path / "a.png"]
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:30])
    with pytest.raises(ValueError, match=r"cut\.png: cannot read the image \((?!\[)"):
        read_image(tmp_path / "cut.png")


def test_a_recipes_widest_blur_fits_its_kernel():
    """sigma_max = 8 was cut by the sampler's 33-px kernel (milder blurs than drawn), warned three times."""
    import warnings
    from pathlib import Path

    from isp_collab.training import load_recipe
    from isp_collab.training.tasks import build_task

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "train" / "tiny.toml")
    recipe.data.sigma_max = 8.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task = build_task(recipe)
    assert task.sampler.kernel_size == 49
    recipe.data.sigma_max = 4.0
    assert build_task(recipe).sampler.kernel_size == 33  # the shipped recipes' kernel, unchanged


# --- Contracts found untested by mutation testing -------------------------------------------------


def test_defaults_are_the_papers_setting():
    # Paper §5.2: 33x33 kernels, principal stds in [0.3, 4] px; 64-px patches; noise drawn per patch.
    s = SharpenSampler(DeadLeaves(), n=2)
    assert (s.patch, s.kernel_size, s.sigma_range) == (64, 33, (0.3, 4.0))
    assert (s.noise, s.noise_per, s.same_image, s.blur_jitter) == ("demosaic", "patch", False, 0.0)


def test_info_kernels_are_the_kernels_of_info_sigmas_and_theta():
    s = SharpenSampler(ImpulseSource(), n=2, patch=8, kernel_size=9, sigma_range=(0.5, 1.4))
    info = s.sample_clean(3, torch.Generator().manual_seed(4)).info
    from isp_collab.physics.kernels import gaussian_kernel

    assert torch.allclose(
        info["kernels"], gaussian_kernel(info["sigmas"][:, 0], info["sigmas"][:, 1], info["theta"], 9)
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"n": 0}, {"patch": 0}, {"patch": 3}, {"kernel_size": 8}, {"blur_jitter": 1.0}, {"blur_jitter": -0.1}],
)
def test_bad_sampler_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        SharpenSampler(DeadLeaves(), **{"n": 2, "patch": 8, "kernel_size": 3, **kwargs})


def test_smallest_patch_largest_jitter_and_a_kernel_that_just_fits_are_accepted():
    import warnings

    SharpenSampler(DeadLeaves(), n=1, patch=2, kernel_size=3, sigma_range=(0.3, 0.3), blur_jitter=0.99)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 6 σ + 1 = 25: the support holds the widest Gaussian, no warning
        SharpenSampler(DeadLeaves(), n=1, patch=8, kernel_size=25, sigma_range=(0.3, 4.0))
    for sigma in (4.0, 23 / 6):  # 6 σ + 1 = 25 and 24: a 23-px support cuts both
        with pytest.warns(UserWarning, match="kernel_size 23 cuts"):
            SharpenSampler(DeadLeaves(), n=1, patch=8, kernel_size=23, sigma_range=(0.3, sigma))
    with pytest.raises(ValueError, match="batch"):
        SharpenSampler(DeadLeaves(), n=1, patch=8, kernel_size=3).sample_clean(0)


def _axis_angle(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal-axis angle (mod π/2) and eigenvalue ratio of (..., s, s) kernels, from their second moments."""
    r = torch.arange(k.shape[-1], dtype=torch.float64) - k.shape[-1] // 2
    y, x = r[:, None], r[None, :]
    k = k.double()
    xx, yy, xy = (k * x * x).sum((-2, -1)), (k * y * y).sum((-2, -1)), (k * x * y).sum((-2, -1))
    root = torch.sqrt(((xx - yy) / 2) ** 2 + xy**2)
    ratio = ((xx + yy) / 2 + root) / ((xx + yy) / 2 - root)
    return (0.5 * torch.atan2(2 * xy, xx - yy)) % (math.pi / 2), ratio


def test_blur_jitter_turns_each_patch_kernel_by_at_most_a_quarter_of_pi_times_j():
    """Angles turn by j u π/4 (u in [-1, 1]): at j = 0.5 by up to 22.5°, and some turn most of that."""
    s = SharpenSampler(ImpulseSource(), n=4, patch=2, kernel_size=21, sigma_range=(0.8, 3.0), blur_jitter=0.5)
    info = s.sample_clean(48, torch.Generator().manual_seed(5)).info
    stack_angle, stack_ratio = _axis_angle(info["kernels"])
    own_angle, own_ratio = _axis_angle(info["patch_kernels"])
    turn = (own_angle - stack_angle[:, None]).abs()
    turn = torch.minimum(turn, math.pi / 2 - turn)  # angles of axes, modulo a right angle
    clear = (stack_ratio[:, None] > 3) & (own_ratio > 3)  # clearly elongated: the axis is well defined
    assert clear.sum() > 20
    assert turn[clear].max() < math.radians(22.5 + 2)  # 2°: moments of a cut, sampled kernel
    assert turn[clear].max() > math.radians(15)


@pytest.mark.parametrize("noise_kind_per", ["patch", "stack"])
def test_mixed_noise_is_demosaicking_residual_half_of_the_time(noise_kind_per):
    """One fair coin per patch (or per stack): 800 coins give a fraction within 0.06 of 1/2 (3.4 standard errors)."""
    n = 2 if noise_kind_per == "patch" else 1
    s = SharpenSampler(ImpulseSource(), n=n, patch=4, kernel_size=3, noise="mixed", noise_kind_per=noise_kind_per)
    kinds = s.sample(800 // n, torch.Generator().manual_seed(6)).info["demosaic"]
    assert kinds.shape == (800 // n, n) and abs(kinds.float().mean().item() - 0.5) < 0.06
