"""benchmarks/bench_restore.py: bad options are one line (exit 2) before anything is measured."""

import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizes", "5"], "--sizes 5: no 5 MP frame; choose from 12,24,6,1"),
        (["--sizes", "1,x"], "--sizes 1,x: expected comma-separated megapixel sizes"),
        (["--host", "--sizes", "1", "--reps", "0"], "--reps must be >= 1, got 0"),  # was "inf ms/MP"
        (["--host", "--sizes", "1", "--reps", "1", "--threads", "0"], "--threads must be >= 1, got 0"),  # was torch's
        (["--host", "--sizes", "1", "--reps", "1", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ],
)
def test_bad_options_are_one_line_before_any_measurement(capsys, load_benchmark, args, message):
    script = load_benchmark("bench_restore")
    with pytest.raises(SystemExit) as stop:
        script.main(args)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert stop.value.code == 2 and "\n" not in err and message in err, err
    assert captured.out == ""
