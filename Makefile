# brainrank: `make run` scores the default suite; `make test` runs lint (ruff, the import
# contracts of pyproject.toml) and the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to a pair that works together (override for other platforms,
# e.g. make test TORCH="torch torchvision")
TORCH ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: run test test-slow lint browser-deps bench bench-quick bench-peer clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/brainrank run

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: lint browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's chromium and chromium-driver for the web page's browser test, installed with
# apt-get when missing (as root); without them that one test is skipped, saying why.
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium and chromium-driver with apt-get"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null; } \
		|| echo "browser-deps: apt-get could not install chromium; the browser test will be skipped" >&2; \
	else \
		echo "browser-deps: chromium is not installed and apt-get needs root; the browser test will be skipped" >&2; \
	fi

# the long sweeps that `make test` leaves out (marker "slow")
test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench

bench-quick: $(VENV)/.installed-bench
	$(BIN)/python -m bench --quick

# The pipeline a lab writes today (thingsvision + scikit-learn) side by side with brainrank
# (bench/pipeline.py, bench/README.md). thingsvision 2.7.3 pins torchvision 0.15.2, numpy < 2
# and tensorflow < 2.16, none of which exists for this torch, so it goes in with --no-deps
# into its own environment (.bench-peer/), next to the project's torch, numpy 2 and the
# packages it imports.
PEER ?= .bench-peer
PEER_PACKAGES ?= scikit-learn tensorflow==2.21.0 "typeguard<3" torchtyping ftfy regex h5py \
	pandas scipy pillow tqdm timm open_clip_torch matplotlib scikit-image numba

$(PEER)/.installed: Makefile
	$(PYTHON) -m venv $(PEER)
	$(PEER)/bin/python -m pip install --quiet --upgrade pip
	$(PEER)/bin/python -m pip install --quiet $(TORCH)
	$(PEER)/bin/python -m pip install --quiet $(PEER_PACKAGES)
	$(PEER)/bin/python -m pip install --quiet --no-deps thingsvision==2.7.3
	@# imported as bench/pipeline.py's peer worker imports it (numpy 2 lacks np.AxisError;
	@# torch's triton loads before tensorflow)
	TF_CPP_MIN_LOG_LEVEL=3 $(PEER)/bin/python -c "import numpy; numpy.AxisError = numpy.exceptions.AxisError; \
		import torch, torch._dynamo, sklearn, thingsvision; \
		print('peer environment: thingsvision', thingsvision.__version__, 'torch', torch.__version__)"
	touch $@

bench-peer: $(VENV)/.installed-bench $(PEER)/.installed
	$(BIN)/python -m bench.pipeline --peer-python $(PEER)/bin/python

clean:
	rm -rf $(VENV) $(PEER) .pytest_cache .ruff_cache
