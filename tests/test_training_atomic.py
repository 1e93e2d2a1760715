"""Training writes atomically: a run killed at any moment leaves a model that loads and predicts.

``python -m models train keras-transformer --limit 400 --epochs 3 --out DIR`` runs on a copy of
the shipped assets and is killed (SIGKILL) while it trains, and right after each of its files is
renamed into place (tests/helpers/interrupt.py freezes it there: the moments between two
renames are far too short to hit by polling). The folder must then load and predict, and hold
nothing a later load would read by mistake.

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
from pathlib import Path

import numpy as np
import psutil
import pytest

from models.base import ASSETS_DIR, REPO_ROOT, LensError
from models.io import PENDING_PREFIX

pytestmark = pytest.mark.slow

MODEL = "keras-transformer"
INTERRUPT = Path(__file__).parent / "helpers" / "interrupt.py"
TRAIN = ["train", MODEL, "--limit", "400", "--epochs", "3"]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "HF_HUB_OFFLINE": "1"}
TEXTS = ("Federer beats Nadal to reach the Wimbledon final", "Oil prices climb to a record high")
# The order in which training renames its files into place (models.io.atomic_write_files, then models/__main__.py).
WRITTEN = ("checksums.json", "config.json", "vocab.json", "weights.weights.h5", "training.json")
MODEL_FILES = WRITTEN[:4]


def fingerprint(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir()) if path.is_file()}


def assets_copy(tmp_path: Path) -> Path:
    folder = tmp_path / MODEL
    shutil.copytree(ASSETS_DIR / MODEL, folder)
    return folder


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


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


def test_a_run_killed_while_training_leaves_the_old_model_untouched(tmp_path):
    folder = assets_copy(tmp_path)
    before, old = fingerprint(folder), probabilities(folder)
    process = subprocess.Popen([sys.executable, "-m", "models", *TRAIN, "--out", str(folder)], cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        # Killed in the middle of the second fit (the refit on every row), the last moment before any file is written.
        for line in process.stdout:
            if line.startswith("Refitting"):
                time.sleep(1.0)
                break
        assert process.poll() is None, "training finished before it could be killed"
    finally:
        kill(process)
    assert fingerprint(folder) == before
    np.testing.assert_array_equal(load_and_predict(folder), old)


@pytest.mark.parametrize("name", WRITTEN)
def test_a_run_killed_right_after_a_file_is_replaced_leaves_a_loadable_model(tmp_path, name):
    folder = assets_copy(tmp_path)
    before, old = fingerprint(folder), probabilities(folder)
    process = subprocess.Popen(
        [sys.executable, str(INTERRUPT), f"after:{name}", *TRAIN, "--out", str(folder)], cwd=REPO_ROOT, env=ENV, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 600
        while psutil.Process(process.pid).status() != psutil.STATUS_STOPPED:
            assert process.poll() is None, f"training exited ({process.returncode}) without replacing {name}"
            assert time.monotonic() < deadline, f"training did not reach {name} in time"
            time.sleep(0.05)
        finished = finished_files(folder, tmp_path / "finished")
    finally:
        kill(process)
    new = load_and_predict(folder)
    # Killed after a file reached its final name, the new set was already committed: the load
    # finished it, so the folder holds exactly the files the run had written, never a mixture,
    # and the model it serves is the new one.
    after = fingerprint(folder)
    assert {file: after[file] for file in WRITTEN} == fingerprint(finished)
    assert [file for file in MODEL_FILES if after[file] != before[file]] == list(MODEL_FILES)
    recorded = json.loads((folder / "checksums.json").read_text(encoding="utf-8"))
    assert recorded == {file: after[file] for file in MODEL_FILES if file != "checksums.json"}
    np.testing.assert_array_equal(new, probabilities(finished))
    assert np.abs(new - old).max() > 1e-3  # 400 rows and 3 epochs do not give the shipped model's answers
