"""``isp-collab bench quality|speed --quick`` end to end into tmp_path (the model runs are slow)."""

import pytest
import torch

from isp_collab.bench.report import read_section
from isp_collab.cli import main
from isp_collab.models import create_model, save_model


def _fake_model(folder, n, task):
    """An untrained-but-perturbed UNet-TX saved as a model folder (quality numbers are meaningless)."""
    torch.manual_seed(n)
    model = create_model("unet-tx", n=n)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(model, folder, {"n_trained": n, "task": task})
    return str(folder)


def test_quality_quick_classical_rows_only(tmp_path):
    assert main(["bench", "quality", "--quick", "--models", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    table = read_section(text, "quality")
    assert "| blurry input |" in table and "| unsharp mask |" in table
    assert "Quick run" in table
    assert "Not measured: no lens model among --models" in read_section(text, "lens")
    assert (tmp_path / "psnr_vs_sigma.png").is_file() and (tmp_path / "crops.png").is_file()


@pytest.mark.slow
def test_quality_quick_with_models(tmp_path):
    sharpen = _fake_model(tmp_path / "models" / "sharpen-fake-n4", 4, "sharpen")
    lens4 = _fake_model(tmp_path / "models" / "lens-a-fake-n4", 4, "lens")
    lens1 = _fake_model(tmp_path / "models" / "lens-a-fake-n1", 1, "lens")
    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--models", sharpen, lens4, lens1, "--out", str(out)]) == 0
    text = (out / "RESULTS.md").read_text()
    assert "| sharpen-fake-n4 |" in read_section(text, "quality")
    lens = read_section(text, "lens")
    assert "lens-a-fake-n4 (mirror-aligned)" in lens and "lens-a-fake-n4 (no alignment)" in lens
    assert "| lens-a-fake-n1 |" in lens
    assert (out / "psnr_vs_n.png").is_file()


@pytest.mark.slow
def test_speed_quick(tmp_path):
    assert main(["bench", "speed", "--quick", "--out", str(tmp_path)]) == 0
    speed = read_section((tmp_path / "RESULTS.md").read_text(), "speed")
    for runtime in ("| torch |", "| torch-cl |", "| onnx-fp32 |", "| onnx-int8 |"):
        assert runtime in speed
    assert "torch.mm throughput (fp32, 256²" in speed and "of torch.mm throughput" in speed
    assert (tmp_path / "latency_vs_params.png").is_file()
    # quick mode times only the first shipped model unless --models names more; --size sets the image
    out = tmp_path / "two"
    argv = ["bench", "speed", "--quick", "--size", "225", "--models", "sharpen-unet-tx-n1", "sharpen-unet-tx-n4"]
    assert main([*argv, "--out", str(out)]) == 0
    speed = read_section((out / "RESULTS.md").read_text(), "speed")
    assert "sharpen-unet-tx-n1" in speed and "sharpen-unet-tx-n4" in speed
    assert "225x225 image (its 256-px tiles cover 5.18x its pixels" in speed


@pytest.mark.slow  # 40 s: every bench action in turn
def test_bench_all_quick_end_to_end(tmp_path):
    """The CI check of the benchmark machinery (numbers are not checked): every section and plot is written."""
    assert main(["bench", "all", "--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    for section in ("machine", "kernel-estimation", "training", "quality", "speed"):
        assert read_section(text, section), f"section {section} missing"
    for plot in ("ksim_vs_n.png", "psnr_vs_sigma.png", "latency_vs_params.png"):
        assert (tmp_path / plot).stat().st_size > 1000


def test_lens_alone_quick(tmp_path):
    """``bench lens`` writes only the lens table (and the machine header), for the given lens models."""
    lens4 = _fake_model(tmp_path / "models" / "lens-a-fake-n4", 4, "lens")
    out = tmp_path / "out"
    assert main(["bench", "lens", "--quick", "--models", lens4, "--out", str(out)]) == 0
    text = (out / "RESULTS.md").read_text()
    assert "lens-a-fake-n4 (mirror-aligned)" in read_section(text, "lens")
    assert read_section(text, "quality") is None


def test_lens_model_found_by_its_card_not_its_folder_name(tmp_path):
    mine = _fake_model(tmp_path / "models" / "mylens", 4, "lens")
    out = tmp_path / "out"
    assert main(["bench", "lens", "--quick", "--models", mine, "--out", str(out)]) == 0
    assert "mylens (mirror-aligned)" in read_section((out / "RESULTS.md").read_text(), "lens")


@pytest.mark.parametrize("case", ["model", "device", "image"])
def test_bad_inputs_are_refused_before_anything_is_written(tmp_path, capsys, case):
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "a.png").write_text("hello")
    args = {
        "model": ["--models", str(tmp_path / "nope")],
        "device": ["--device", "tpu"],
        "image": ["--images", str(images)],
    }[case]
    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "\n" not in err
        and {"model": "nope: no such model", "device": "'tpu'", "image": "a.png: cannot read"}[case] in err
    )
    assert not (out / "RESULTS.md").exists()
