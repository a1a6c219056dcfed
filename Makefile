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

demo: $(VENV_STAMP)
	.venv/bin/isp-collab info

test: $(VENV_STAMP)
	$(PY) -m pytest

lint: $(VENV_STAMP)
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

clean:
	rm -rf .venv build *.egg-info
