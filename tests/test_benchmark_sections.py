"""The scripts of benchmarks/ write their ``--section`` of RESULTS.md only where it replaces nothing, unless
``--overwrite``: a section another command writes (``bench``'s own) or one the file already holds is refused,
in one line, before anything is measured."""

import sys

import pytest

from isp_collab.bench.report import HEADER, merge_section, read_section

#: Each script with arguments it accepts; ``--section NAME --results FILE`` is added.
SCRIPTS = {
    "stack_at_inference": ["m@4"],
    "runs_table": ["runs/a", "--note", "why"],
    "seed_gain": ["--family", "x", "a", "b"],
    "known_blur": ["--blind", "a", "--known", "2=b"],
    "tile_default": [],
    "exposure": [],
}


def _results(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(merge_section(merge_section(HEADER, "quality", "bench's"), "mine", "an earlier run"))
    return results


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("quality", "--section quality: a section `isp-collab bench` writes; pass --overwrite"),
        ("lens-val-1a2b3c", "--section lens-val-1a2b3c: a section `isp-collab bench` writes"),  # its --images name
        ("machine", "--section machine: a section `isp-collab bench` writes"),
        ("mine", "already holds section mine; pass --overwrite to replace it"),
    ],
)
def test_a_section_of_another_command_or_an_earlier_run_is_refused(
    tmp_path, capsys, monkeypatch, load_benchmark, script, section, message
):
    results = _results(tmp_path)
    before = results.read_text()
    module = load_benchmark(script)
    argv = [*SCRIPTS[script], "--section", section, "--results", str(results)]
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    with pytest.raises(SystemExit) as stop:
        module.main()
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and message in err, err
    assert results.read_text() == before


def test_overwrite_replaces_and_a_new_section_needs_none(tmp_path, load_benchmark, monkeypatch):
    results = _results(tmp_path)
    module = load_benchmark("stack_at_inference")
    monkeypatch.setattr(module, "measure", lambda *a, **k: ("| table |\n", 1.0))
    module.main(["m@4", "--section", "new", "--results", str(results)])
    module.main(["m@4", "--section", "mine", "--results", str(results), "--overwrite"])
    module.main(["m@4", "--section", "quality", "--results", str(results), "--overwrite"])
    text = results.read_text()
    assert all(read_section(text, s).endswith("| table |") for s in ("new", "mine", "quality"))


def test_every_section_bench_writes_is_kept_from_the_scripts():
    from isp_collab.bench.report import OWNED_SECTIONS
    from isp_collab.cli.bench import ACTION_ALSO_WRITES, ACTION_SECTIONS

    written = {s for sections in (*ACTION_SECTIONS.values(), *ACTION_ALSO_WRITES.values()) for s in sections}
    assert written | {"machine"} <= set(OWNED_SECTIONS)


def test_a_file_whose_markers_do_not_pair_up_is_refused_even_with_overwrite(tmp_path, capsys, load_benchmark):
    results = tmp_path / "RESULTS.md"
    results.write_text("<!-- section:mine -->\nold\n<!-- section:other -->\nkept\n<!-- /section:other -->\n")
    before = results.read_text()
    module = load_benchmark("stack_at_inference")
    with pytest.raises(SystemExit) as stop:
        module.main(["m@4", "--section", "mine", "--results", str(results), "--overwrite"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and "`<!-- section:other -->` opens inside section mine" in err
    assert results.read_text() == before
