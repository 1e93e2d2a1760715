"""The server's background warm-up: what it traces, and that it never holds up a user's page."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from views.compute import WorkGate

REPO = Path(__file__).resolve().parent.parent


PAGE_MODULES = (
    "models, models.registry, models.warm_up, models.value_aware, models.explain.attribution, models.explain.ablation, "
    "models.explain.faithfulness, views, views.compute, views.state"
)


def modules_imported_with_the_page(candidates: tuple[str, ...]) -> list[str]:
    code = f"import sys, {PAGE_MODULES}\nprint(' '.join(sorted(m for m in {candidates!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.split()


def test_importing_the_page_modules_does_not_import_tensorflow():
    # The page is drawn while TensorFlow (about 3 s) is still to be imported: only loading a model may import it.
    assert modules_imported_with_the_page(("tensorflow", "keras", "tf_keras", "transformers")) == []


def test_importing_the_page_modules_leaves_scipy_for_the_computations_that_use_it():
    # scipy.stats, its sparse graphs and special functions were 0.5-0.6 s of a new server's first page.
    assert modules_imported_with_the_page(("scipy.stats", "scipy.sparse", "scipy.special")) == []


class TraceCounter:
    """Stands in for TensorFlow's retracing detector, which every tf.function call reports to: counts the calls that traced."""

    def __init__(self, inner):
        self.inner = inner
        self.traced: list[str] = []

    def called_without_tracing(self, key):
        self.inner.called_without_tracing(key)

    def called_with_tracing(self, key, function_name, omit_warning):
        self.traced.append(str(function_name))
        self.inner.called_with_tracing(key, function_name, omit_warning)


@pytest.fixture
def traces(monkeypatch):
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    counter = TraceCounter(polymorphic_function._frequent_tracing_detector_manager)
    monkeypatch.setattr(polymorphic_function, "_frequent_tracing_detector_manager", counter)
    return counter


def explain_as_the_views_do(model, text: str) -> None:
    """What the attribution, ablation and value-aware views compute for a text (views/attribution.py, ablation.py, norms.py)."""
    from models.explain.ablation import head_importance, predict_with_heads_off, single_head_effects, supports_ablation
    from models.explain.attribution import attribute, merge
    from models.explain.faithfulness import faithfulness_table
    from models.value_aware import supports_value_aware, value_aware
    from views.attribution import STAGES

    model.predict(text)
    for words in (False, True):
        attributions = merge([attribute(model, text, words=words, methods=methods) for methods in STAGES])
        faithfulness_table(model, text, attributions)
    if supports_ablation(model) is None:
        if model.ablation_mode == "heads":
            single_head_effects(model, text)
            head_importance(model, text)
            predict_with_heads_off(model, text, frozenset({(0, 0)}))
        else:
            predict_with_heads_off(model, text, frozenset(), uniform=True)
    if supports_value_aware(model) is None:
        value_aware(model, text)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["keras-transformer", "bahdanau-rnn"])
def test_after_the_warm_up_explaining_new_headlines_traces_nothing(model_id, traces):
    from models import registry, warm_up

    # A model of its own: the shared instance may have been traced by other tests already.
    model = registry.load(model_id)
    for step in [*warm_up.predict_steps(model), *warm_up.explain_steps(model)]:
        step.run()
    assert traces.traced, "the warm-up traced nothing"
    warmed = len(traces.traced)
    # 10 and 20 words: the two padded lengths (16, 32) of headlines; their left-out and deleted rows fall into both.
    for text in (
        "Scientists in Oslo discover a new species of tree frog",
        "Stocks rally in Lisbon as investors cheer strong quarterly earnings from big technology firms and banks",
    ):
        explain_as_the_views_do(model, text)
    assert traces.traced[warmed:] == []


def test_explaining_a_headline_without_the_warm_up_does_trace(traces):
    # The counter above must see the traces a first explanation pays for, or its empty list proves nothing.
    from models import registry

    model = registry.load("keras-transformer")
    from models.explain.ablation import single_head_effects

    single_head_effects(model, "Scientists in Oslo discover a new species of tree frog")
    assert len(traces.traced) == 1


def test_the_date_model_has_nothing_to_explain_and_one_predict_shape():
    from models import registry, warm_up

    model = registry.load("bahdanau-dates")
    assert warm_up.explain_steps(model) == []
    assert len(warm_up.predict_steps(model)) == 1


def hold(gate_entry, entered: threading.Event, release: threading.Event) -> threading.Thread:
    def work():
        with gate_entry():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_background_work_waits_while_a_user_computes_and_a_user_never_waits_for_it_with_a_slot_free():
    gate = WorkGate(2, quiet=0.05)
    user_in, user_out = threading.Event(), threading.Event()
    user = hold(gate, user_in, user_out)
    assert user_in.wait(5)
    background_in, background_out = threading.Event(), threading.Event()
    background = hold(gate.idle, background_in, background_out)
    # A slot is free, but a user is computing: the background waits for the user to finish.
    assert not background_in.wait(0.3)
    user_out.set()
    user.join(5)
    assert background_in.wait(5)
    # While the background holds its slot, a user takes the other one at once.
    second_in, second_out = threading.Event(), threading.Event()
    second = hold(gate, second_in, second_out)
    assert second_in.wait(5)
    second_out.set()
    background_out.set()
    for thread in (second, background):
        thread.join(5)
        assert not thread.is_alive()


def test_background_work_waits_while_a_user_waits_for_a_slot():
    gate = WorkGate(1, quiet=0.05)
    first_in, first_out = threading.Event(), threading.Event()
    first = hold(gate, first_in, first_out)
    assert first_in.wait(5)
    waiting_in, waiting_out = threading.Event(), threading.Event()
    waiting = hold(gate, waiting_in, waiting_out)
    background_in, background_out = threading.Event(), threading.Event()
    background = hold(gate.idle, background_in, background_out)
    first_out.set()
    # The freed slot goes to the user who was waiting, not to the background.
    assert waiting_in.wait(5)
    assert not background_in.is_set()
    waiting_out.set()
    assert background_in.wait(5)
    background_out.set()
    for thread in (first, waiting, background):
        thread.join(5)
        assert not thread.is_alive()


def test_background_work_waits_for_a_quiet_moment_after_a_users_computation():
    # A page run is several computations with figures drawn between them: background work must not slip into the gaps.
    gate = WorkGate(2, quiet=0.6)
    with gate():
        pass
    background_in, background_out = threading.Event(), threading.Event()
    background = hold(gate.idle, background_in, background_out)
    assert not background_in.wait(0.3)
    assert background_in.wait(5)
    background_out.set()
    background.join(5)
    assert not background.is_alive()


def test_a_users_computation_nested_in_background_work_in_one_thread_takes_no_second_slot():
    # One slot: a nested entry that waited for a slot of its own would wait for ever.
    gate, entered = WorkGate(1), threading.Event()
    with gate.idle(), gate():
        entered.set()
    assert entered.is_set()
