"""The process-wide cache behind every view (views/compute.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from models.contract import Prediction
from views.compute import CACHE_MB_ENV, SharedCache, WorkGate, cache_bytes, nbytes


def test_at_most_slots_computations_run_at_once_and_nested_ones_pass():
    gate, running, most = WorkGate(2), [0], [0]
    lock = threading.Lock()

    def work():
        with gate():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            with gate():  # nested in the same thread: must not wait for a slot of its own
                time.sleep(0.05)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert most[0] == 2


def test_a_key_computed_inside_another_from_many_threads_does_not_deadlock():
    # Every outer computation needs the same inner key: with two slots and eight threads, a thread
    # holding the inner key's lock must also hold a slot, or all would wait for ever.
    cache = SharedCache(max_bytes=2**20, slots=2)
    calls = []

    def inner():
        calls.append("inner")
        time.sleep(0.05)
        return np.ones(4)

    results = {}

    def outer(index):
        results[index] = cache.get(("outer", index), lambda: cache.get(("inner",), inner) * index)

    threads = [threading.Thread(target=outer, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads)
    assert calls == ["inner"]
    assert [float(results[index].sum()) for index in range(8)] == [4.0 * index for index in range(8)]


def test_the_cache_counts_what_a_prediction_really_keeps_alive():
    # A padded batch (the Keras transformer pads every text to 128 tokens) sliced to the text's
    # 7 tokens: the prediction must not keep the whole padded array alive behind its view.
    padded = np.full((1, 2, 128, 128), 1 / 7, dtype=np.float32)
    prediction = Prediction(
        model="demo",
        labels=("a", "b"),
        probs=np.array([0.5, 0.5]),
        source_tokens=tuple("abcdefg"),
        target_tokens=tuple("abcdefg"),
        attentions=padded[:, :, :7, :7],
        readout="mean",
    )
    assert prediction.attentions.base is None
    assert nbytes(prediction.attentions) == prediction.attentions.nbytes == 2 * 7 * 7 * 4


def test_the_cache_is_bounded_by_bytes_and_drops_the_least_recently_used():
    cache = SharedCache(max_bytes=3 * 800)
    for name in "abc":
        cache.get(name, lambda: np.zeros(100))  # 800 bytes each
    cache.get("a", lambda: None)  # a hit: "a" is now the most recently used
    cache.get("d", lambda: np.zeros(100))
    assert cache.size_bytes == 3 * 800
    assert isinstance(cache.get("a", lambda: "recomputed"), np.ndarray)
    assert cache.get("b", lambda: "recomputed") == "recomputed"


@pytest.mark.parametrize(("value", "expected"), [(None, 512 * 2**20), ("128", 128 * 2**20), (" 64 ", 64 * 2**20)])
def test_the_operator_sets_the_cache_size_in_megabytes(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(CACHE_MB_ENV, raising=False)
    else:
        monkeypatch.setenv(CACHE_MB_ENV, value)
    assert cache_bytes() == expected


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "lots", ""])
def test_a_bad_cache_size_is_refused_with_the_variable_named(monkeypatch, value):
    monkeypatch.setenv(CACHE_MB_ENV, value)
    with pytest.raises(ValueError, match=CACHE_MB_ENV):
        cache_bytes()
