"""Every view on every model, alone and beside another model, on the real page (AppTest).

The page states are generated when the tests are collected, from ``views.VIEWS`` and the model
registry (plus one ``hf:`` checkpoint), so a new view or model is covered without editing this
file. Every view × model × panel mode (alone, or side by side) is run in full; the model beside,
language, the words switch and "hide special tokens" are assigned so that every pair of values
of any two settings is run at least once: every model beside every other, every view with every
model beside (all-pairs, ``tests/helpers/pairwise.py``; checked below when the module is
collected). The
all-pairs sample runs in the fast lane; the rest of the full product is marked slow.

What each panel must show: the view's figure or table, or exactly the reason the view's own
``applies()`` gives, or the hint that hiding special tokens left nothing. Never an exception,
never an error.

Each state is one page run, models loaded once for the module (``views.compute`` caches them per
process).
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Button, Dataframe, Error, Info

from models import registry
from models.registry import ALLOW_HF_ENV, HF_PREFIX
from tests.helpers import checkpoints
from tests.helpers.page import APP, TIMEOUT
from tests.helpers.pairwise import all_pairs, required_pairs, uncovered
from views import BY_KEY, VIEWS, compute, state
from views.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalog, use_language

# Stands for the seeded checkpoint folder the ``checkpoint`` fixture saves; the folder is only
# known once the test session runs, the model list is needed when the tests are collected.
HF_MODEL = HF_PREFIX + "tiny-bert"
MODELS = (*registry.available(), HF_MODEL)

DIMENSIONS = {
    "view": tuple(view.KEY for view in VIEWS),
    "model": MODELS,
    "compare": ("", *MODELS),  # "": one panel; otherwise the second panel's model
    "lang": tuple(LANGUAGES),
    "words": (False, True),
    "hide_special": (False, True),
}


def side_by_side_with_another(row) -> bool:
    """A model is compared with each *other* model, never with itself."""
    return not ("model" in row and "compare" in row and row["model"] == row["compare"])


PANELS = ("alone", "beside")  # one panel, or side by side with another model


def panel_of(row) -> str:
    return "beside" if row["compare"] else "alone"


# The full product is view × model × panel; which model sits beside is a setting like the
# language, covered with every other setting's every value by the all-pairs sample.
FULL = [(view, model, panel) for view in DIMENSIONS["view"] for model in DIMENSIONS["model"] for panel in PANELS]
# The fast lane runs an all-pairs sample of every setting; `make test` adds the rest of the full
# product, each beside the model that has sat beside others least so far, and completed with the
# values that spread pairs most evenly.
PAIRWISE = all_pairs(DIMENSIONS, valid=side_by_side_with_another)
sampled = {(row["view"], row["model"], panel_of(row)) for row in PAIRWISE}
beside_counts = {model: sum(row["compare"] == model for row in PAIRWISE) for model in MODELS}


def partner(model: str) -> str:
    chosen = min((other for other in MODELS if other != model), key=lambda other: beside_counts[other])
    beside_counts[chosen] += 1
    return chosen


REST = [
    {"view": view, "model": model, "compare": partner(model) if panel == "beside" else ""} for view, model, panel in FULL if (view, model, panel) not in sampled
]
STATES = PAIRWISE + all_pairs(DIMENSIONS, REST, side_by_side_with_another)[: len(REST)]

# Checked at collection: a broken generator fails every run, not silently covers less.
assert not uncovered(DIMENSIONS, PAIRWISE, side_by_side_with_another)
assert {(s["view"], s["model"], panel_of(s)) for s in STATES} == set(FULL)

# widgets.only_special_tokens_left(), translated with the page's catalog below.
ONLY_SPECIAL_TOKENS = "Only special tokens are left: switch off “Hide special tokens” to see them."
# widgets.show_output's probability bars carry the key "bars-<panel>": the model's answer, not the view's figure.
OUTPUT_BARS = re.compile(r"-bars-b?$")


def text_for(model_id: str) -> str:
    """One short text per model kind: its shortest example of more than one word (the words switch has words to merge)."""
    if model_id == HF_MODEL:
        return checkpoints.TEXT  # in the tiny checkpoint's vocabulary, with word pieces
    return min((text for text in state.EXAMPLES[state.model_kind(model_id)] if " " in text), key=len)


# One worker runs every state (conftest): the page's shared cache and MiniLM's traced shapes serve
# them all, where split over two workers each worker computed and traced them again.
pytestmark = pytest.mark.xdist_group("combinations")


def state_id(s) -> str:
    return f"{s['view']}-{s['model']}-{s['compare'] or 'alone'}-{s['lang']}-w{int(s['words'])}-h{int(s['hide_special'])}"


@pytest.fixture(scope="module", autouse=True)
def no_warm_up():
    """The page starts loading every model and tracing MiniLM at 8 lengths up to 500 words after its first run.

    That competes with the states for the two cores; the models load on first use anyway.
    """
    compute._STOP_WARM_UP.set()
    yield
    compute._STOP_WARM_UP.clear()


def leaves(node):
    children = getattr(node, "children", None)
    if isinstance(node, Block) and isinstance(children, dict):
        for child in children.values():
            yield from leaves(child)
    else:
        yield node


def panels(at: AppTest, side_by_side: bool) -> list:
    """The block of each panel: the whole main area, or the two columns side by side."""
    if not side_by_side:
        return [at.main]
    # The panels' row: two columns, each headed by its model's name (the pickers above share a row too).
    row = next(
        child
        for child in at.main.children.values()
        if isinstance(child, Block)
        and [getattr(c, "type", None) for c in child.children.values()] == ["column", "column"]
        and all(column.markdown and column.markdown[0].value.startswith("####") for column in child.children.values())
    )
    return list(row.children.values())


def applies_here(view, model_id: str, text: str, words: bool, lang: str) -> tuple[bool, str]:
    """The view's own verdict on what the panel showed, in the page's language."""
    model = compute.load_model(model_id)
    shown = compute.shown_prediction(model_id, text, words)
    use_language(lang)
    try:
        return view.applies(shown, model)
    finally:
        use_language(DEFAULT_LANGUAGE)


@pytest.mark.parametrize(
    "page",
    [pytest.param(s, id=state_id(s), marks=() if index < len(PAIRWISE) else pytest.mark.slow) for index, s in enumerate(STATES)],
)
def test_every_panel_draws_or_says_why_not(page, checkpoint, monkeypatch):
    monkeypatch.setenv(ALLOW_HF_ENV, "1")

    def real(model_id: str) -> str:
        return f"{HF_PREFIX}{checkpoint()}" if model_id == HF_MODEL else model_id  # the session's tiny checkpoint

    model_id, compare_id = real(page["model"]), real(page["compare"]) if page["compare"] else ""
    text = text_for(page["model"])
    query = {"model": model_id, "text": text, "view": page["view"], "lang": page["lang"]}
    query.update(words=str(int(page["words"])), hide_special=str(int(page["hide_special"])))
    if compare_id:
        query["compare"] = compare_id
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    # The panels show the models the link names (a selectbox resets a value it does not offer).
    shown_models = (at.session_state["model"], at.session_state["compare"])
    assert shown_models == (model_id, compare_id), f"the page shows {shown_models}, the link asks for {(model_id, compare_id)}"
    view = BY_KEY[page["view"]]
    # A view that takes the whole page (views/spec.py) shows the first model only.
    side_by_side = bool(compare_id) and not getattr(view, "WHOLE_PAGE", False)
    if getattr(view, "HOLDS_BACK_OUTPUT", False):
        # Such a view shows the answer and its figure when asked (views/__init__.py): the
        # lesson's "predict, then reveal". Its primary button is that ask.
        reveal = [thing for thing in leaves(panels(at, side_by_side)[0]) if isinstance(thing, Button) and thing.proto.type == "primary"]
        assert len(reveal) == 1, [button.label for button in reveal]
        # AppTest sends back every widget's value through its format_func, in this thread: the
        # translated labels (the example picker's) need this thread in the page's language.
        use_language(page["lang"])
        try:
            reveal[0].click().run()
        finally:
            use_language(DEFAULT_LANGUAGE)
        assert not at.exception, at.exception

    hint = catalog(page["lang"]).gettext(ONLY_SPECIAL_TOKENS)
    for block, panel_model in zip(panels(at, side_by_side), [model_id, compare_id][: 1 + side_by_side], strict=True):
        things = list(leaves(block))
        errors = [e.value for e in things if isinstance(e, Error)]
        infos = [e.value for e in things if isinstance(e, Info)]
        figures = [e for e in things if getattr(e, "type", None) == "plotly_chart" and not OUTPUT_BARS.search(e.proto.id)]
        tables = [e for e in things if isinstance(e, Dataframe)]
        where = f"panel of {panel_model}"
        assert not errors, f"{where}: {errors}"
        applies, reason = applies_here(view, panel_model, text, page["words"], page["lang"])
        if not applies:
            assert infos == [reason], f"{where}: shows {infos}, applies() says {reason!r}"
            assert not figures and not tables, f"{where}: does not apply, yet draws"
        elif hint in infos:
            assert page["hide_special"], f"{where}: special-token hint with nothing hidden"
        else:
            assert figures or tables, f"{where}: neither a figure, a table, nor a reason; infos: {infos}"


def test_all_pairs_covers_every_pair_of_a_small_example():
    dimensions = {"a": (1, 2, 3), "b": ("x", "y", "z"), "c": (False, True), "d": (False, True)}

    def differ(row) -> bool:
        return not ("a" in row and "b" in row and (row["a"], row["b"]) == (1, "x"))

    rows = all_pairs(dimensions, valid=differ)
    # Every allowed pair, counted by brute force over all rows, and nothing the constraint forbids.
    for pair in required_pairs(dimensions, differ):
        (n1, v1), (n2, v2) = pair
        assert any(row[n1] == v1 and row[n2] == v2 for row in rows), pair
    assert all(differ(row) and set(row) == set(dimensions) for row in rows)
    assert not any(row["a"] == 1 and row["b"] == "x" for row in rows)
    # Fewer rows than the product (36 with the forbidden pair's 4), at least the 8 pairs a × b needs.
    assert 8 <= len(rows) < 32
    assert all_pairs(dimensions, valid=differ) == rows  # the same on every run


def test_all_pairs_keeps_seed_rows_and_completes_them():
    dimensions = {"a": (1, 2), "b": ("x", "y"), "c": (False, True)}
    seed = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    rows = all_pairs(dimensions, seed)
    assert [{"a": r["a"], "b": r["b"]} for r in rows[:2]] == seed
    assert rows[0] == {"a": 1, "b": "x", "c": False}  # a tie goes to the first value
    assert not uncovered(dimensions, rows)
    # The first row alone leaves 9 of the 12 pairs, worked out by hand.
    assert uncovered(dimensions, rows[:1]) == [
        (("a", 1), ("b", "y")),
        (("a", 2), ("b", "x")),
        (("a", 2), ("b", "y")),
        (("a", 1), ("c", True)),
        (("a", 2), ("c", False)),
        (("a", 2), ("c", True)),
        (("b", "x"), ("c", True)),
        (("b", "y"), ("c", False)),
        (("b", "y"), ("c", True)),
    ]
