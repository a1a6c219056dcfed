"""``isp-collab process``: how outputs are named and checked before any file is decoded."""

from test_pipeline_cli import _png, files_under, run


def test_output_mode_follows_the_arguments_not_the_file_count(capsys, tmp_path):
    folder = tmp_path / "one"
    _png(folder / "a.png", 0)
    # a folder input is folder mode even when it holds one file
    code, err, _ = run(capsys, folder, "-o", tmp_path / "outA", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "outA") == ["a.png"], err
    code, err, _ = run(capsys, folder, "-o", tmp_path / "x.png", "--stages", "none")
    assert code == 2 and err == [
        f"isp-collab process: error: {tmp_path / 'x.png'}: a folder input needs an output "
        "folder, not an image file name"
    ]
    # several files and an image file name: refused, not turned into a folder called x.png
    _png(tmp_path / "b.png", 1)
    code, err, _ = run(capsys, folder / "a.png", tmp_path / "b.png", "-o", tmp_path / "x.png", "--stages", "none")
    assert code == 2 and "2 inputs need an output folder" in err[0] and not (tmp_path / "x.png").exists()
    # one file and a name without suffix: a folder
    code, err, _ = run(capsys, folder / "a.png", "-o", tmp_path / "outB", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "outB") == ["a.png"], err
    code, err, _ = run(capsys, folder / "a.png", "-o", tmp_path / "y.png", "--format", "jpg", "--stages", "none")
    assert code == 2 and err[0].endswith(f"--format jpg contradicts the output file name {tmp_path / 'y.png'}")


def test_empty_folder_is_one_failed_input_and_the_batch_goes_on(capsys, tmp_path):
    _png(tmp_path / "in" / "a.png", 0)
    (empty := tmp_path / "empty").mkdir()
    code, err, _ = run(capsys, tmp_path / "in", empty, "-o", tmp_path / "out", "--stages", "none")
    assert code == 2 and files_under(tmp_path / "out") == ["a.png"]
    assert (
        err[0]
        == f"isp-collab process: error: {empty}: folder holds no file to process (RAW, PNG/JPEG/TIFF or described .raw)"
    )
    assert err[-1] == "isp-collab process: 1 of 2 inputs processed, 1 failed"


def test_impossible_output_format_is_refused_before_any_decoding(capsys, tmp_path):
    (src := tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    code, err, _ = run(capsys, src, "-o", tmp_path / "x.jpg", "--bit-depth", "16", "--stages", "none")
    assert code == 2 and len(err) == 1 and err[0].endswith(".jpg cannot hold 16-bit samples (8-bit only)"), err
    code, err, _ = run(
        capsys, src, src, "-o", tmp_path / "o", "--format", "jpg", "--bit-depth", "16", "--stages", "none"
    )  # said of the two flags, not of one of the files it would write
    assert err == ["isp-collab process: error: --format jpg cannot hold --bit-depth 16 samples (8-bit only)"], err
    assert code == 2
    assert not (tmp_path / "o").exists()


def test_a_file_named_twice_or_inside_a_named_folder_is_processed_once(capsys, tmp_path):
    folder = tmp_path / "in"
    _png(folder / "a.png", 0)
    _png(folder / "b.png", 1)
    code, err, out = run(capsys, folder / "a.png", folder, folder / "a.png", "-o", tmp_path / "out", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "out") == ["a.png", "b.png"], err
    assert len([line for line in out.splitlines() if line.strip()]) == 2, out
