# Two entry points: `make demo` (set up, then run the main job on the built-in default) and
# `make test` (set up, then run the test suite). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup clean

setup: $(STAMP)

# torch is installed first, pinned, so pip takes the local CPU wheel and never a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[all,dev]"
	touch $@

# The main job on the built-in default: export the shipped model for every platform, check parity,
# benchmark, write artifacts/demo/manifest.json (+ parity.html, bench.png, golden vectors).
demo: $(STAMP)
	$(BIN)/mobile-sdk export --out artifacts/demo

# The Python suite (Chromium, from Debian's packages where we may install them, renders parity.html
# in one test), then the demo apps' checks that can run here (the Android JVM core's golden-vector
# tests need a JDK; they report "skipped" without one).
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		echo "installing Chromium (Debian package chromium) for the report rendering test..." && \
		{ apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
		apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || echo "no Chromium: the report rendering test is skipped"
	$(BIN)/python -m pytest -m "not heavy"
	@if [ -x android_demo/run_core_tests.sh ]; then android_demo/run_core_tests.sh; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache artifacts android_demo/build-tests
