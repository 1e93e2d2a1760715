"""The process-wide cache behind every view (views/compute.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from models.contract import Prediction
from views import compute
from views.compute import CACHE_MB_ENV, SharedCache, WorkGate, cache_bytes, nbytes


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_at_most_slots_computations_run_at_once_and_nested_ones_pass(slots):
    gate, running, most = WorkGate(slots), [0], [0]
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
    assert most[0] == slots


@pytest.mark.parametrize("slots", [1, 2])
def test_a_key_computed_inside_another_from_many_threads_does_not_deadlock(slots):
    # Every outer computation needs the same inner key: with few slots and eight threads, a thread
    # holding the inner key's lock must also hold a slot, or all would wait for ever.
    cache = SharedCache(max_bytes=2**20, slots=slots)
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


@pytest.fixture
def trims(monkeypatch) -> list[int]:
    """The ``malloc_trim`` calls the gate makes, recorded instead of run, the last trim long ago."""
    calls: list[int] = []
    monkeypatch.setattr(compute, "_TRIM", calls.append)
    monkeypatch.setattr(compute, "_last_trim", float("-inf"))
    return calls


def test_freed_memory_is_handed_back_when_a_computation_leaves_while_another_still_runs(trims):
    # Under a class's load the gate never empties: a trim only on an empty gate never ran then.
    gate, inside, leave = WorkGate(2), threading.Event(), threading.Event()

    def long_computation():
        with gate():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=long_computation)
    thread.start()
    try:
        assert inside.wait(10)
        with gate():
            pass
        assert trims == [0]
    finally:
        leave.set()
        thread.join(10)


def test_the_heap_is_trimmed_at_most_once_a_second_whatever_the_traffic(trims):
    gate = WorkGate(2)
    started = time.monotonic()
    for _ in range(50):
        with gate():
            pass
    assert time.monotonic() - started < compute.TRIM_EVERY_S
    assert trims == [0]


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


@pytest.mark.parametrize(("value", "expected"), [(None, 256 * 2**20), ("128", 128 * 2**20), (" 64 ", 64 * 2**20)])
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


def test_the_warm_up_traces_explanations_for_explained_models_and_longer_lengths_for_opened_ones(monkeypatch):
    from functools import partial

    from models import warm_up
    from views import compute

    ran: list[tuple[str, str]] = []
    finished = threading.Event()

    def record(model_id: str, what: str) -> None:
        ran.append((model_id, what))
        if len(ran) == 7:
            finished.set()

    monkeypatch.setattr(compute.models, "available", lambda: ["a", "b", "c"])
    monkeypatch.setattr(compute, "_load_model", lambda model_id: model_id)
    monkeypatch.setattr(warm_up, "predict_steps", lambda m: [warm_up.Step(f"{m} {i}", partial(record, m, f"predict {i}")) for i in range(2)])
    monkeypatch.setattr(warm_up, "explain_steps", lambda m: [warm_up.Step(m, partial(record, m, "explain"))])
    monkeypatch.setattr(compute, "shared_cache", lambda: SharedCache(2**20))
    monkeypatch.setattr(compute, "WARM_UP_DELAY_S", 0.0)
    monkeypatch.setattr(compute, "ASKED_FOR_POLL_S", 0.01)
    monkeypatch.setattr(compute, "_STOP_WARM_UP", threading.Event())
    monkeypatch.setattr(compute, "_ASKED_FOR", ["b", "a"])
    monkeypatch.setattr(compute, "_EXPLAINED", [])
    compute._note_explaining("attribution", "a")
    compute._note_explaining("heatmap", "b")  # a view that runs no explanation function
    thread = threading.Thread(target=compute._warm_up, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(ran) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Every model loads and traces its first length, those opened first; then the explained
        # model's explanations; then the opened models' other lengths. "c" was never opened.
        assert ran == [("b", "predict 0"), ("a", "predict 0"), ("c", "predict 0"), ("a", "explain"), ("b", "predict 1"), ("a", "predict 1")]
        compute._note_explaining("norms", "c")  # a user explains with the third model later
        assert finished.wait(10)
        assert ran[-1] == ("c", "explain")
    finally:
        compute._STOP_WARM_UP.set()
        thread.join(10)
