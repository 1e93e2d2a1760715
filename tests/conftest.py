"""Shared fixtures. Tests never touch the network: hub look-ups are switched off here too."""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A pytest-xdist worker shares the cores with the other workers and with what it starts (the
# browser tests' server, the fault driver, Ray's actors: they inherit this). TensorFlow's default
# of a thread pool as wide as the machine in every process oversubscribed them: the suite took
# 668 s of test time with it and 561 s with an even share of the cores per worker (2 cores, 2
# workers, one thread each; 13.6 instead of 16.5 CPU minutes).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _SHARE)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _SHARE)

# Seconds per test file (setup, call and teardown together, so a session fixture counts where it
# is first used): the suite has a time budget, and the slowest tests alone do not show which file
# grew.
FILE_SECONDS: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    FILE_SECONDS[report.nodeid.split("::", 1)[0]] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not FILE_SECONDS:
        return
    terminalreporter.section("seconds per test file")
    for path, seconds in FILE_SECONDS.most_common(20):
        terminalreporter.write_line(f"{seconds:8.1f}s  {path}")
    terminalreporter.write_line(f"{sum(FILE_SECONDS.values()):8.1f}s  in all ({len(FILE_SECONDS)} files)")


# `make test` runs on two pytest-xdist workers with --dist loadgroup: a test goes to whichever
# worker is free, except that the tests of one xdist_group all run on one worker, so that an
# expensive fixture is made once instead of once per worker. The tests that use one of these
# fixtures are grouped by it; test_faults.py marks itself ("faults": its 100-scenario driver
# run, 80 s), and so does test_combinations.py (its states share the page's cache and MiniLM's
# traced shapes: 132 s summed on one worker against 144-171 s split over two). Grouping
# test_properties.py the same way made it slower (303 s against 189-194 s).
GROUP_OF_FIXTURE = {
    "browser_session": "browser",  # one server that loads and warms up every model, one Chromium
    "local_ray": "ray",  # test_corpus.py: one local Ray cluster and its model-loading workers
}


# First: xdist's own hook turns the xdist_group marks into the node ids' "@group" suffix, by
# which the controller groups the tests; a mark added after it has no effect (3e2f36c).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in GROUP_OF_FIXTURE:
                item.add_marker(pytest.mark.xdist_group(GROUP_OF_FIXTURE[fixture]))
                break


TINY_ROWS = [
    ("1", "Leaders meet in Geneva", "Foreign ministers discussed the peace treaty and the election crisis."),
    ("2", "Team wins the final", "The striker scored twice as the club won the championship match."),
    ("3", "Stocks rise on earnings", "Shares of the bank climbed after profits beat forecasts, investors said."),
    ("4", "New chip doubles speed", "The software company unveiled a processor for internet servers and phones."),
]


def write_ag_news(directory: Path, rows_per_class: int = 8) -> Path:
    """A miniature AG News folder (train.csv and test.csv) in the original format."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("train.csv", "test.csv"):
        with open(directory / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
            for i in range(rows_per_class):
                for label, title, description in TINY_ROWS:
                    writer.writerow([label, f"{title} {i}", description])
    return directory


@pytest.fixture
def tiny_ag_news(tmp_path: Path) -> Path:
    return write_ag_news(tmp_path / "ag_news")


@pytest.fixture(scope="session", autouse=True)
def no_background_warm_up():
    """The page's first run starts a thread that loads every model and traces MiniLM and the explanation views.

    In a test process that thread only competes with the tests for the two cores (and calls the
    shared models while a test counts their calls); each model loads on first use anyway. The
    real server runs it in tests/test_e2e_browser.py and tests/test_lesson_browser.py. Only
    when the collected tests use the page (they imported streamlit or views): a run of model
    tests alone does not import the page.
    """
    if "views" in sys.modules or "streamlit" in sys.modules:
        from views import compute

        compute._STOP_WARM_UP.set()


@pytest.fixture(scope="session")
def shipped_model():
    """``shipped_model(model_id)``: the page's one shared instance of a bundled model (views.compute.load_model).

    Loading MiniLM takes seconds; every test module that only reads a bundled model gets the
    same instance, which the pages opened with AppTest in this process also use.
    """
    from views import compute

    return compute.load_model


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """``checkpoint(family)``: a tiny hf: classifier folder (tests/helpers/checkpoints.py), saved once per session.

    Tests only read these folders; one that changes a checkpoint makes its own.
    """
    from tests.helpers.checkpoints import make_checkpoint

    saved: dict[str, Path] = {}

    def get(family: str = "bert") -> Path:
        if family not in saved:
            saved[family] = make_checkpoint(tmp_path_factory.mktemp(f"checkpoint-{family}"), family)
        return saved[family]

    return get


@pytest.fixture(scope="session")
def browser_session(request):
    """One ``streamlit run`` server and one headless Chromium for every browser test (tests/helpers/browser.py).

    Starting the server loads and warms up every model (MiniLM: tens of seconds on two shared
    cores); the browser tests open their own pages on it.
    """
    from tests.helpers.browser import served

    # The server reads the corpus runs' folder from its environment when it starts, so the runs
    # must exist first when any collected browser state shows the corpus view.
    if any(_shows_the_corpus_view(item) and "browser_session" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("corpus_root")
    with served() as session:
        yield session


# Small corpus runs (models/corpus.py, the local engine) for the corpus view: the classifiers
# the browser matrix and the lesson show it on. 40 texts give every class and a few hundred points
# per head in the joint query-key space.
CORPUS_MODELS = ("keras-transformer", "minilm-agnews")
CORPUS_TEXTS = 40


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory, shipped_model):
    """A folder of corpus runs, one per CORPUS_MODELS, named by ATTENTION_LENS_CORPUS for the whole session."""
    from models.corpus import run_corpus
    from views.corpus import ROOT_ENV

    root = tmp_path_factory.mktemp("corpus")
    for model_id in CORPUS_MODELS:
        run_corpus(model_id, None, root / model_id, n=CORPUS_TEXTS, model=shipped_model(model_id), progress=lambda done: None)
    before = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(root)
    yield root
    if before is None:
        os.environ.pop(ROOT_ENV, None)
    else:
        os.environ[ROOT_ENV] = before


def _shows_the_corpus_view(item: pytest.Item) -> bool:
    """A test of the corpus view (``test_corpus_view.py``, a matrix state ``[corpus-…]``).

    The command's own tests (``test_corpus.py``) make their own runs.
    """
    return item.path.name == "test_corpus_view.py" or ("corpus" in item.name and item.path.name != "test_corpus.py")


@pytest.fixture(autouse=True)
def corpus_for_the_corpus_view(request):
    """A test of the corpus view finds the session's runs made before it starts.

    The combination, property and browser matrices pick the view up from ``views.VIEWS``: with
    runs to read it is drawn, not only refused. The runs are made at the first such test in this
    process, so a pytest-xdist worker that runs none of them makes none.
    """
    if _shows_the_corpus_view(request.node):
        request.getfixturevalue("corpus_root")
