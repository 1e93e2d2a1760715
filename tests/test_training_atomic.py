"""Training writes atomically: a run killed at any moment leaves a model that loads and predicts.

``python -m models train keras-transformer --limit 400 --epochs 3 --out DIR`` runs on a copy of
the shipped assets and is stopped (SIGSTOP) while it trains, and right after each of its files is
renamed into place (tests/helpers/interrupt.py freezes it there: the moments between two
renames are far too short to hit by polling). The folder is copied at each stop: that copy is
exactly what a SIGKILL there would leave, since a killed process runs no more code (no
``finally``, no ``atexit``, no flush of its buffers) and the kernel keeps every write it made.
The run then continues to the next stop, and is killed at the last. One training run serves
every moment; each copy must then load and predict, and hold nothing a later load would read by
mistake.

Weights, vocabulary, config and their checksums are written as one set (models.io.atomic_write_files): a
400-row run has a smaller vocabulary than the shipped one, so new weights beside the old
vocabulary would not load. The set is renamed into place after a journal names it; a load first
finishes a committed set or drops an uncommitted one. training.json follows, on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest

from models.base import ASSETS_DIR, REPO_ROOT, LensError
from models.io import PENDING_PREFIX, PROBE_FILES, sha256
from tests.helpers.interrupt import STOPPED

pytestmark = pytest.mark.slow

MODEL = "keras-transformer"
INTERRUPT = Path(__file__).parent / "helpers" / "interrupt.py"
TRAIN = ["train", MODEL, "--limit", "400", "--epochs", "3"]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "HF_HUB_OFFLINE": "1"}
TEXTS = ("Federer beats Nadal to reach the Wimbledon final", "Oil prices climb to a record high")
# The order in which training renames its files into place (models.io.atomic_write_files, then models/__main__.py).
WRITTEN = ("checksums.json", "config.json", "vocab.json", "weights.weights.h5", "training.json")
MODEL_FILES = WRITTEN[:4]
WHILE_TRAINING = "training"
STOP_TIMEOUT_S = 600


def fingerprint(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir()) if path.is_file()}


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def stopped(process: subprocess.Popen, what: str) -> None:
    """Wait until ``process`` is stopped (by itself or by us); fail if it exits or takes too long."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while psutil.Process(process.pid).status() != psutil.STATUS_STOPPED:
        assert process.poll() is None, f"training exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"training did not reach {what} in time"
        time.sleep(0.05)


def probabilities(folder: Path) -> np.ndarray:
    """The probabilities the model in ``folder`` gives TEXTS (loaded as the app loads it)."""
    from models import registry

    try:
        model = registry.load(MODEL, folder)
    except LensError as error:
        pytest.fail(f"{folder} does not load: {error}")
    return np.stack([prediction.probs for prediction in model.predict_batch(list(TEXTS))])


def load_and_predict(folder: Path) -> np.ndarray:
    """Load the folder a killed run left, and check it then holds nothing a later load would misread."""
    probs = probabilities(folder)
    # Only the files a load reads, and temporary files under names no load reads.
    assert {path.name for path in folder.iterdir() if not path.name.startswith(".tmp-")} == set(fingerprint(ASSETS_DIR / MODEL))
    return probs


def finished_files(folder: Path, into: Path) -> Path:
    """A copy of what the frozen run has finished writing: each file's new version if there is one yet."""
    into.mkdir()
    for name in WRITTEN:
        pending = folder / f"{PENDING_PREFIX}{name}"
        shutil.copy2(pending if pending.is_file() else folder / name, into / name)
    return into


@dataclass(frozen=True)
class Stop:
    left: Path  # the folder as a kill at this moment leaves it
    finished: Path  # what the run had finished writing by then


@dataclass(frozen=True)
class Run:
    before: dict[str, str]  # the shipped folder's fingerprint
    old: np.ndarray  # and its probabilities
    stops: dict[str, Stop]  # by moment: WHILE_TRAINING, or the file just renamed into place


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """One training run on a copy of the shipped assets, stopped at every moment under test."""
    work = tmp_path_factory.mktemp("training")
    folder = work / MODEL
    shutil.copytree(ASSETS_DIR / MODEL, folder)
    before, old = fingerprint(folder), probabilities(folder)
    stops: dict[str, Stop] = {}

    def keep(moment: str) -> None:
        into = work / moment
        into.mkdir()
        stops[moment] = Stop(shutil.copytree(folder, into / "left"), finished_files(folder, into / "finished"))

    command = [sys.executable, str(INTERRUPT), "after:" + ",".join(WRITTEN), *TRAIN, "--out", str(folder)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            if line.startswith("Refitting") and WHILE_TRAINING not in stops:
                # In the middle of the second fit (the refit on every row), the last moment before any file is written.
                time.sleep(1.0)
                assert process.poll() is None, "training finished before it could be stopped"
                process.send_signal(signal.SIGSTOP)
                stopped(process, "the refit")
                keep(WHILE_TRAINING)
                process.send_signal(signal.SIGCONT)
            elif line.startswith(f"{STOPPED}after:"):
                name = line.strip().removeprefix(f"{STOPPED}after:")
                stopped(process, f"replacing {name}")
                keep(name)
                if name == WRITTEN[-1]:
                    break
                process.send_signal(signal.SIGCONT)
    finally:
        kill(process)
    assert WHILE_TRAINING in stops, "training never started its refit"
    return Run(before, old, stops)


def test_a_run_killed_while_training_leaves_the_old_model_untouched(run):
    left = run.stops[WHILE_TRAINING].left
    assert fingerprint(left) == run.before
    np.testing.assert_array_equal(load_and_predict(left), run.old)


@pytest.mark.parametrize("name", WRITTEN)
def test_a_run_killed_right_after_a_file_is_replaced_leaves_a_loadable_model(run, name):
    if name not in run.stops:
        pytest.fail(f"training exited without replacing {name}")
    folder, finished = run.stops[name].left, run.stops[name].finished
    new = load_and_predict(folder)
    # Killed after a file reached its final name, the new set was already committed: the load
    # finished it, so the folder holds exactly the files the run had written, never a mixture,
    # and the model it serves is the new one.
    after = fingerprint(folder)
    assert {file: after[file] for file in WRITTEN} == fingerprint(finished)
    assert [file for file in MODEL_FILES if after[file] != run.before[file]] == list(MODEL_FILES)
    recorded = json.loads((folder / "checksums.json").read_text(encoding="utf-8"))
    # The probes stay as they were, checksums included: their own load then refuses them as
    # trained on other weights (models/probes.py, tests/test_probes.py).
    probes = {name: sha256(folder / name) for name in PROBE_FILES if (folder / name).is_file()}
    assert recorded == {file: after[file] for file in MODEL_FILES if file != "checksums.json"} | probes
    np.testing.assert_array_equal(new, probabilities(finished))
    assert np.abs(new - run.old).max() > 1e-3  # 400 rows and 3 epochs do not give the shipped model's answers
