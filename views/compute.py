"""Work done once: models, predictions and derived arrays, shared by every session.

A widget change (layer, head, colours, view) re-runs the page script; nothing here runs the model
again for it. Results are kept in one process-wide cache keyed on what they depend on (model,
text, options), so 30 students who submit the same example share one prediction, and a student
who flips between views recomputes nothing.

Why not ``st.cache_data``: it pickles every value on store and unpickles a copy on every hit;
a 512-token MiniLM prediction holds 75 MB of attention (37.5 MB as the float16 stored here,
``compact``), which would be copied on each rerun of each session. Values here are immutable (frozen dataclasses, read-only arrays), so sessions can
share them without copies; the cache is bounded by bytes, not entries, and a second session
asking for a result being computed waits for it instead of computing it again.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np
import streamlit as st

import models
from models import warm_up
from models.base import AttentionModel, LensError
from models.contract import Prediction
from models.maths.tokens import merge_prediction
from views.i18n import _
from views.spec import Settings, Subject, for_data

# See README "Memory" for what a full cache of 512-token predictions adds. 256 MB holds as many
# predictions in float16 (``compact``) as 512 MB held in float32: about seven 512-token MiniLM
# ones. Operators on a smaller machine can lower it.
CACHE_MB_ENV = "ATTENTION_LENS_CACHE_MB"
DEFAULT_CACHE_MB = 256


def cache_bytes() -> int:
    value = os.environ.get(CACHE_MB_ENV, str(DEFAULT_CACHE_MB)).strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{CACHE_MB_ENV} must be a whole number of megabytes, at least 1; it is {value!r}")
    return int(value) * 2**20


# glibc's mallopt parameter number for the most arenas it may create (malloc.h).
M_ARENA_MAX = -8

# TensorFlow's oneDNN kernels (its default on x86) otherwise take their working memory from a
# pool of TensorFlow's own that keeps its largest size for the life of the process; from malloc
# it goes back to the system between computations (``release_free_memory``). Measured on
# minilm-agnews's warm-up steps (explanations at 16 tokens, predict up to 256), trimmed after
# each: the process kept 1,098 MB instead of 1,208 MB. Set here,
# before any model imports TensorFlow (the page modules never import it themselves).
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Let glibc keep at most ``arenas`` heaps instead of eight per core.

    Each page run is a new thread, and glibc gives threads that allocate at the same moment
    their own heap, which keeps what they free: 30 sessions sending 512-token texts to MiniLM
    peaked about 200 MB higher with the default (2.49 GB against 2.30 GB, bench/load_test.py
    --long), at the same speed. MALLOC_ARENA_MAX=2 set before the start (as ``make run`` does)
    saved about 80 MB more than this call, which comes after the server's first threads.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc (macOS, musl): its allocator needs no such limit
    libc.mallopt(M_ARENA_MAX, arenas)


limit_malloc_arenas()


def _malloc_trim() -> Callable[[], object] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to hand back this way


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc ``malloc_trim``).

    A model pass frees tens of MB of activations (a 512-token MiniLM pass with attentions, more
    for a batch of gradients); glibc keeps most of such freed memory in its heaps, so the
    server's resident size stays at the sum of its largest moments. Called whenever a computation
    leaves the work gate, not only when the gate empties: under a class's load it never empties
    (30 sessions sending 600-word texts kept both slots busy and 28 page runs waiting from the
    first page run to the last), so a trim on an empty gate never ran while memory was highest.
    """
    global _last_trim
    now = time.monotonic()
    if _TRIM is None or now - _last_trim < TRIM_EVERY_S:
        return
    _last_trim = now
    _TRIM(0)


# A trim walks every free chunk of the heap: at most one a second, whatever the traffic.
TRIM_EVERY_S = 1.0
_last_trim = float("-inf")


def _keep_keras_state() -> None:
    """Stop Streamlit from clearing Keras's global state after every script run.

    Streamlit calls ``keras.backend.clear_session()`` at the end of each run (a guard against
    graphs piling up in old tf.keras apps). Here the models are built once and shared, so it
    only costs: about 30% of a page run's CPU under the 30-session load test, and it resets the
    counters Keras names layers with while another session's thread may be building a model.
    Matplotlib, the only other module it tidies, is not used by the page.
    """
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = lambda: None


_keep_keras_state()


def nbytes(value: Any) -> int:
    """Approximate memory held by a cached value: its numpy arrays, strings, and containers."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, str | bytes):
        return len(value)
    if dataclasses.is_dataclass(value):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(nbytes(k) + nbytes(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return sum(nbytes(v) for v in value) + 8 * len(value)
    return 64


def freeze(value: Any) -> Any:
    """Make the arrays inside ``value`` read-only: a shared result must not be changed by a view."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            freeze(getattr(value, f.name))
    elif isinstance(value, dict):
        for v in value.values():
            freeze(v)
    elif isinstance(value, list | tuple):
        for v in value:
            freeze(v)
    return value


class WorkGate:
    """At most ``slots`` computations at a time in the whole process; nested ones in a thread pass.

    Thirty sessions submitting at once would otherwise run thirty model passes side by side, each
    holding its working memory: memory grows with the class, not with the cores, and two cores
    finish them no sooner. With two slots, 30 sessions sending 512-token texts to MiniLM peaked
    at 1.98 GB instead of 2.30 GB, at 6.3 instead of 6.6 page runs per second.

    ``idle()`` is the background's way in (the warm-up): it takes a slot only once no user's
    computation has run or waited for ``quiet`` seconds, so a user waits for background work at
    most when two users arrive during one background step, and then for that one step. The quiet
    time keeps background steps out of the gaps between one page run's computations (an
    attribution page draws a figure between its three stages).
    """

    def __init__(self, slots: int, quiet: float = 1.0):
        self.slots = slots
        self.quiet = quiet
        self._changed = threading.Condition()
        self._running = 0  # computations holding a slot, users' and background ones
        self._users = 0  # users' computations running or waiting for a slot
        self._last_user = float("-inf")  # time.monotonic() when the last user's computation ended
        self._held = threading.local()

    def _background_waits(self) -> float | None:
        """None if background work may start now, else how long to wait before asking again."""
        if self._running >= self.slots or self._users:
            return self.quiet
        remaining = self._last_user + self.quiet - time.monotonic()
        return remaining if remaining > 0 else None

    @contextlib.contextmanager
    def _slot(self, background: bool) -> Iterator[None]:
        if getattr(self._held, "active", False):
            yield
            return
        with self._changed:
            if background:
                while (wait := self._background_waits()) is not None:
                    self._changed.wait(wait)
            else:
                self._users += 1
                while self._running >= self.slots:
                    self._changed.wait()
            self._running += 1
        self._held.active = True
        try:
            yield
        finally:
            self._held.active = False
            with self._changed:
                self._running -= 1
                if not background:
                    self._users -= 1
                    self._last_user = time.monotonic()
                self._changed.notify_all()
            release_free_memory()

    def __call__(self) -> contextlib.AbstractContextManager[None]:
        return self._slot(background=False)

    def idle(self) -> contextlib.AbstractContextManager[None]:
        return self._slot(background=True)


class SharedCache:
    """A thread-safe LRU bounded by bytes, computing each key once even when asked concurrently.

    A computation first takes a slot of the process's ``WorkGate``, then the key's own lock: every
    thread that holds a key's lock also holds (or runs inside) a slot, so waiting for a key
    computed elsewhere cannot wait for ever.
    """

    def __init__(self, max_bytes: int, slots: int = 2):
        self.max_bytes = max_bytes
        self.gate = WorkGate(slots)
        self._values: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}
        self.hits = 0
        self.misses = 0
        # Computations by kind (the key's first part: "prediction", ("data", "flow"), ...).
        self.computed: Counter[Hashable] = Counter()

    def _lookup(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                self.hits += 1
                return True, self._values[key][0]
            return False, None

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        found, value = self._lookup(key)
        if found:
            return value
        with self.gate():
            with self._lock:
                pending = self._pending.setdefault(key, threading.Lock())
            with pending:
                found, value = self._lookup(key)
                if found:
                    return value
                try:
                    value = freeze(compute())
                finally:
                    with self._lock:
                        self._pending.pop(key, None)
                self._store(key, value)
                return value

    def _store(self, key: Hashable, value: Any) -> None:
        size = nbytes(value)
        with self._lock:
            self.misses += 1
            if isinstance(key, tuple) and key:
                self.computed[key[0]] += 1
            if size > self.max_bytes:
                return  # larger than the whole cache: computed for this caller only
            self._values[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._values.popitem(last=False)
                self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._values)

    @property
    def size_bytes(self) -> int:
        return self._bytes


@st.cache_resource(show_spinner=False)
def shared_cache() -> SharedCache:
    return SharedCache(cache_bytes())


@st.cache_resource(show_spinner=False)
def _load_model(model_id: str) -> AttentionModel:
    return models.load(model_id)


# Models in the order users first asked for them: the warm-up prepares those before the others.
_ASKED_FOR: list[str] = []
# Computations (``cached`` names, view keys) that run the functions ``warm_up.explain_steps``
# traces, and the models users ran them on, in that order.
EXPLAINING = frozenset({"attribution", "faithfulness", "ablation", "head_effects", "norms"})
_EXPLAINED: list[str] = []


def _note_explaining(name: Hashable, model_id: Hashable) -> None:
    if name in EXPLAINING and isinstance(model_id, str) and model_id not in _EXPLAINED:
        _EXPLAINED.append(model_id)


def load_model(model_id: str) -> AttentionModel:
    """The one shared instance of ``model_id``: 30 students on one server load each model once."""
    if model_id not in _ASKED_FOR:
        _ASKED_FOR.append(model_id)
    with st.spinner(_("Loading the model {model} (first time only)…").format(model=model_id)):
        return _load_model(model_id)


_STOP_WARM_UP = threading.Event()
# The browser is still drawing the first page when its script ends (Plotly's code loads then):
# loading the next model at once, on the same 2 cores, delayed that first chart by 0.5-0.7 s.
WARM_UP_DELAY_S = 3.0


def _warm_up() -> None:
    """Load every bundled model, then trace what users of the models they opened would wait for.

    Starts ``WARM_UP_DELAY_S`` after the first page. First every model (those users asked for
    first) is loaded and traces predict at its first length, so that switching models is quick.
    Then every function the explanation views run for a headline
    (``models.warm_up.explain_steps``) for each model a user has run an explanation on
    (``EXPLAINING``, in that order, and any later), and predict at the longer lengths for each
    model a user has opened (``_ASKED_FOR``). Each step takes a slot of the work gate only once
    users' computations have left it quiet (``WorkGate.idle``), and the thread stops between
    steps when the server exits.

    Why not everything for every model: each traced shape keeps its graph and kernels for the
    life of the process. One MiniLM went from 883 MB loaded to 1,523 MB after its full warm-up
    (explanations up to 32 tokens and predict at 8 lengths), and the server with six bundled
    models traced in full held 2.1 GB before a single user's text. A class uses one or two models
    and not every view: the first explanation on a model waits for its own shapes (a few seconds
    per function, ``models.warm_up``), and the background traces the rest.
    """
    if _STOP_WARM_UP.wait(WARM_UP_DELAY_S):
        return
    gate = shared_cache().gate
    broken: set[str] = set()  # that model's panel says what is wrong when someone opens it

    def run(model_id: str, steps_of: Callable[[AttentionModel], list[warm_up.Step]]) -> bool:
        """Run ``steps_of(model)`` in the gate's quiet moments; False once the server is stopping."""
        try:
            with gate.idle():
                model = _load_model(model_id)
            for step in steps_of(model):
                if _STOP_WARM_UP.is_set():
                    return False
                with gate.idle():
                    step.run()
        except LensError:
            broken.add(model_id)
        return not _STOP_WARM_UP.is_set()

    for model_id in sorted(models.available(), key=lambda m: _ASKED_FOR.index(m) if m in _ASKED_FOR else len(_ASKED_FOR)):
        if not run(model_id, lambda model: warm_up.predict_steps(model)[:1]):
            return
    later: tuple[tuple[list[str], Callable[[AttentionModel], list[warm_up.Step]]], ...] = (
        (_EXPLAINED, warm_up.explain_steps),
        (_ASKED_FOR, lambda model: warm_up.predict_steps(model)[1:]),
    )
    done: set[tuple[str, int]] = set()
    while not _STOP_WARM_UP.is_set():
        # Read again each time: a user may open another model or view while this runs.
        work = next(((m, r) for r, (wanted, _steps) in enumerate(later) for m in list(wanted) if (m, r) not in done and m not in broken), None)
        if work is None:
            _STOP_WARM_UP.wait(ASKED_FOR_POLL_S)
            continue
        done.add(work)
        if not run(work[0], later[work[1]][1]):
            return


# How often the warm-up looks for a model a user opened since it last ran out of work.
ASKED_FOR_POLL_S = 2.0


def _finish_warm_up(thread: threading.Thread) -> None:
    """At interpreter exit: a daemon thread killed inside TensorFlow aborts the process (exit 134)."""
    _STOP_WARM_UP.set()
    thread.join(timeout=120)


@st.cache_resource(show_spinner=False)
def start_warm_up() -> threading.Thread:
    """Load every bundled model and trace its common shapes, once per server, in the background."""
    thread = threading.Thread(target=_warm_up, name="attention-lens-warm-up", daemon=True)
    thread.start()
    atexit.register(_finish_warm_up, thread)
    return thread


def cached(name: str, compute: Callable[[], Any], *key: Hashable) -> Any:
    """``compute()``'s result, shared by all sessions, under (``name``, ``key``)."""
    if key:
        _note_explaining(name, key[0])
    return shared_cache().get((name, *key), compute)


def compact(prediction: Prediction) -> Prediction:
    """``prediction`` with its attention stored as float16: half the memory, weights within 2^-11.

    A 512-token MiniLM prediction holds 75 MB of float32 attention, and every page run that
    draws it keeps a reference while it runs (30 sessions, tens of them at once), besides the
    cache. Float16 keeps about three significant digits, more than a heatmap's colours or a
    table's rounding show; every view upcasts at use (``views.spec.display`` to float32, the
    composing maths to float64), so figures, CSV and JSON are computed in full precision from the
    stored weights, and every view's data equals its data from float32 attention to 1e-3
    (tests/test_float16_cache.py).
    """
    if prediction.attentions.dtype == np.float16:
        return prediction
    return dataclasses.replace(prediction, attentions=prediction.attentions.astype(np.float16))


def prediction(model_id: str, text: str) -> Prediction:
    """What the model says about ``text``, pieces and all; runs the model once per text.

    Its attention is float16 (``compact``).
    """
    return cached("prediction", lambda: compact(load_model(model_id).predict(text)), model_id, text)


def view_data(view: Any, subject: Subject, settings: Settings, progress: Callable[[int, int], None] | None = None) -> Any:
    """``view.data(subject, settings)``, computed once per text and the settings it depends on.

    ``progress(done, total)`` is handed to views whose data takes long (``data(..., progress=)``).
    """
    _note_explaining(view.KEY, subject.model_id)
    settings = for_data(view, settings)
    extra = {} if progress is None else {"progress": progress}
    return cached(("data", view.KEY), lambda: view.data(subject, settings, **extra), subject.model_id, subject.text, settings)


def shown_prediction(model_id: str, text: str, words: bool) -> Prediction:
    """The prediction as the views draw it: merged into whole words when the user asks."""
    if not words:
        return prediction(model_id, text)
    model = load_model(model_id)
    return cached("words", lambda: merge_prediction(prediction(model_id, text), model.subword_scheme), model_id, text)
