# The two README commands. Each creates .venv and installs on first use.
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: demo test lint bench bench-quick clean

$(VENV_STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# Pinned: this takes the local CPU build; an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(VENV_STAMP)

# The bundled real RAW (Blackmagic Pocket 4K DNG) through the pipeline with the shipped sharpening model.
DEMO_MODEL ?= sharpen-unet-tx-n4
demo: $(VENV_STAMP)
	mkdir -p out
	.venv/bin/isp-collab process isp_collab/assets/blackmagic_pocket4k.dng -o out/demo.png \
		--model $(DEMO_MODEL) --compare --overwrite

test: $(VENV_STAMP)
	$(PY) -m pytest

lint: $(VENV_STAMP)
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# Benchmarks (isp-collab bench; see benchmarks/RESULTS.md). Polyblur, the classical peer, needs torch at
# build time, hence its own step with --no-build-isolation (the `bench` extra of pyproject.toml).
BENCH_STAMP := .venv/.bench-installed
$(BENCH_STAMP): $(VENV_STAMP)
	$(PY) -m pip install -q --no-build-isolation 'polyblur>=0.1.6'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	.venv/bin/isp-collab bench all

bench-quick: $(BENCH_STAMP)
	.venv/bin/isp-collab bench all --quick

clean:
	rm -rf .venv build *.egg-info
