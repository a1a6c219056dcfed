"""Recipes: image folders relative to the recipe file; validation photos spread over a large folder; how
the [data] options stacks_of_one, stack_sizes, blur_group, blur_jitter and clip draw training stacks."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from isp_collab.cli import main
from isp_collab.training import load_recipe

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "train" / "tiny.toml"


def tiny():
    return load_recipe(TINY)


def test_recipe_image_folders_are_relative_to_the_recipe(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "mine.toml"
    text = TINY.read_text().replace("[data]\n", '[data]\nimages = ["../photos", "/abs/photos"]\nval_images = ["val"]\n')
    recipe.write_text(text)
    monkeypatch.chdir(tmp_path / "recipes")  # anywhere but the recipe's parent
    r = load_recipe(Path("mine.toml"))
    assert r.data.images == ["../photos", "/abs/photos"] and r.data.val_images == ["val"]
    monkeypatch.chdir(tmp_path)
    r = load_recipe(Path("recipes/mine.toml"))
    assert r.data.images == ["photos", "/abs/photos"] and r.data.val_images == [os.path.join("recipes", "val")]


def test_recipe_image_folders_must_be_strings(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("[data]\n", "[data]\nimages = [3]\n"))
    assert main(["train", str(bad), "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "images must be a list of folder paths" in err and str(bad) in err


def test_validation_photos_are_spread_over_a_large_folder(tmp_path):
    from PIL import Image

    from isp_collab.training.tasks import validation_photos

    folder = tmp_path / "val"
    folder.mkdir()
    for i in range(10):  # photo i is a flat grey of level 10 * i
        Image.fromarray(np.full((40, 40, 3), 10 * i, np.uint8)).save(folder / f"{i:02d}.png")
    r = tiny()
    r.data.val_images, r.val.max_images = [str(folder)], 4
    levels = [round(float(p.mean()) * 255) for p in validation_photos(r)]
    assert levels == [0, 20, 50, 70]  # not the first four (0, 10, 20, 30)


def _stack_shapes(tmp_path, data_lines: str, stacks: int, draws: int) -> set[tuple[int, int]]:
    """The (stacks, N) shapes a tiny sharpen task (model.n = 2) draws with ``data_lines`` added to [data]."""
    from isp_collab.training.tasks import build_task

    recipe = tmp_path / "draw.toml"
    recipe.write_text(TINY.read_text().replace("[data]\n", f"[data]\n{data_lines}"))
    task = build_task(load_recipe(recipe))
    gen = torch.Generator().manual_seed(0)
    return {tuple(task.sample(stacks, gen).blurry.shape[:2]) for _ in range(draws)}


def _refused(tmp_path, data_lines: str, match: str) -> None:
    """The tiny recipe with ``data_lines`` in [data] (and model.n = 1 when ``match`` names it) is refused."""
    path = tmp_path / "bad.toml"
    text = TINY.read_text().replace("[data]\n", f"[data]\n{data_lines}\n")
    path.write_text(text.replace("n = 2", "n = 1") if "model.n" in match else text)
    with pytest.raises(ValueError, match=match):
        load_recipe(path)


def test_stacks_of_one_draws_single_patches_at_equal_patches(tmp_path):
    """data.stacks_of_one: that fraction of draws is N x as many stacks of 1 (same patches per step)."""
    assert _stack_shapes(tmp_path, "stacks_of_one = 0.5\n", 3, 12) == {(3, 2), (6, 1)}
    assert _stack_shapes(tmp_path, "", 3, 6) == {(3, 2)}
    for bad, match in (("stacks_of_one = 1.5", r"\[0, 1\]"), ("stacks_of_one = 0.5\n", "model.n > 1")):
        _refused(tmp_path, bad, match)


def test_stack_sizes_draw_every_listed_size_at_equal_patches(tmp_path):
    """data.stack_sizes: each draw is stacks of one listed size, always the same number of patches."""
    assert _stack_shapes(tmp_path, "stack_sizes = [1, 2, 4]\n", 4, 24) == {(8, 1), (4, 2), (2, 4)}
    for bad, match in (
        ("stack_sizes = [2, 3]", "not a multiple"),
        ("stack_sizes = [0, 2]", "whole numbers >= 1"),
        ("stack_sizes = [2, 4]\nstacks_of_one = 0.5", "not both"),
        ("stack_sizes = [2, 4]", "model.n > 1"),
    ):
        _refused(tmp_path, bad, match)


def test_blur_group_draws_single_patches_that_share_a_blur_in_groups(tmp_path):
    """data.blur_group (N=1): stacks of 1 whose blur is shared by consecutive groups of g patches."""
    from isp_collab.training.tasks import build_task

    recipe = tmp_path / "group.toml"
    recipe.write_text(TINY.read_text().replace("n = 2", "n = 1").replace("[data]\n", "[data]\nblur_group = 2\n"))
    task = build_task(load_recipe(recipe))
    b = task.sample(6, torch.Generator().manual_seed(0))
    kernels = b.info["kernels"]  # the kernel of each of the 6 patches: pairs share one, 3 blurs in all
    assert b.blurry.shape[:2] == (6, 1) and kernels.shape[0] == 6
    assert all(torch.equal(kernels[i], kernels[i + 1]) for i in (0, 2, 4))
    assert not any(torch.equal(kernels[i], kernels[i + 2]) for i in (0, 2))
    # a sampler draws the blur of a stack for all its patches: the pairs are drawn as stacks of 2
    assert task.grouped.n == 2
    for bad, match in (("blur_group = 0", ">= 1"), ("blur_group = 2", "model.n = 1"), ("blur_group = 5", "multiple")):
        path = tmp_path / "bad.toml"
        text = TINY.read_text().replace("[data]\n", f"[data]\n{bad}\n")
        path.write_text(text if "model.n" in match else text.replace("n = 2", "n = 1"))
        with pytest.raises(ValueError, match=match):
            load_recipe(path)


class _Dot:
    """A source whose every crop is black with one white pixel at its centre: blurred, it shows the kernel."""

    def random_crops(self, size, count, generator=None, same_image=False):
        crops = torch.zeros(count, 3, size, size)
        crops[..., size // 2, size // 2] = 1.0
        return crops


def test_blur_jitter_blurs_each_patch_with_its_own_kernel_near_the_stacks():
    """data.blur_jitter: every patch is blurred with its own kernel, close to the stack's; 0 keeps it shared."""
    from isp_collab.data.sharpen import SharpenSampler

    clean = SharpenSampler(_Dot(), n=3, patch=9 + 1, kernel_size=9, blur_jitter=0.3).sample_clean(
        2, torch.Generator().manual_seed(0)
    )
    own, shared = clean.info["patch_kernels"], clean.info["kernels"]
    seen = clean.blurry[..., 1, 1:, 1:]  # a dot at the crop centre, blurred: the kernel, scaled by its colour
    assert torch.allclose(seen / seen.sum(dim=(-2, -1), keepdim=True), own, atol=1e-5)
    gaps = (own - shared[:, None]).abs().sum(dim=(-2, -1))
    assert (gaps > 1e-3).all() and (gaps < 1.0).all()
    exact = SharpenSampler(_Dot(), n=3, patch=10, kernel_size=9).sample_clean(2, torch.Generator().manual_seed(0))
    seen = exact.blurry[..., 1, 1:, 1:]
    assert "patch_kernels" not in exact.info
    assert torch.allclose(
        seen / seen.sum(dim=(-2, -1), keepdim=True), exact.info["kernels"][:, None].expand_as(seen), atol=1e-5
    )
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        SharpenSampler(_Dot(), n=3, patch=10, kernel_size=9, blur_jitter=1.5)


def test_blur_group_must_split_over_the_processes(monkeypatch, tmp_path):
    """Under DDP each process draws its own groups: a split that breaks them is refused before anything is written."""
    from isp_collab.training import train, trainer

    recipe = tmp_path / "group.toml"
    recipe.write_text(TINY.read_text().replace("n = 2", "n = 1").replace("[data]\n", "[data]\nblur_group = 4\n"))
    r = load_recipe(recipe)
    r.train.patches_per_step = 8  # 4 per process on 2 processes: one group each
    monkeypatch.setattr(trainer, "_dist_info", lambda: (0, 4))  # 2 per process: not a group of 4
    with pytest.raises(
        ValueError, match=r"2 patches per process and step cannot be drawn in groups of data.blur_group = 4"
    ):
        train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    assert trainer._stacks_per_process(r, 2) == 4


@pytest.mark.parametrize("task_lines", ["", '[task]\nname = "lens"\nlens = "lens-a"\n'], ids=["sharpen", "lens"])
def test_clip_keeps_training_inputs_in_the_unit_range_and_draws_the_same_batch(tmp_path, task_lines):
    """data.clip: the noisy inputs are the unclipped draw clipped to [0, 1] (as the pipeline's white balance and
    the validation tiles clip); the targets and the random stream are untouched."""
    from isp_collab.training.tasks import build_task

    batches = {}
    for clip in (False, True):
        recipe = tmp_path / f"clip-{clip}.toml"
        text = TINY.read_text().replace("[data]\n", f"[data]\nclip = {str(clip).lower()}\n") + task_lines
        recipe.write_text(
            text if not task_lines else text.replace("n = 2", "n = 1").replace("tiles_per_image = 2\n", "")
        )
        batches[clip] = build_task(load_recipe(recipe)).sample(8, torch.Generator().manual_seed(0))
    raw, clipped = batches[False].blurry, batches[True].blurry
    assert raw.min() < 0 or raw.max() > 1  # the noise leaves the range somewhere, so the option has work to do
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert torch.equal(clipped, raw.clamp(0, 1)) and torch.equal(batches[True].sharp, batches[False].sharp)
