"""Whatever a classroom pastes, every model and every view answers or says clearly why not.

Property-based (hypothesis): arbitrary unicode, empty and whitespace-only text, control
characters, zero-width joiners, right-to-left scripts, emoji, combining marks, up to 10^5
characters. A model either returns a Prediction (whose own validation ran on construction) or
raises the documented InputError. For every view in ``views.VIEWS``, the prediction then goes
through the view's own functions as the page calls them (``views.spec``): ``applies`` is the only
way to decline; otherwise ``data``, ``figure`` and ``rows`` all succeed, whatever the layer, head,
words switch, "hide special tokens" and the view's own fields.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from models import registry
from models.base import MAX_INPUT_CHARS, InputError
from models.contract import Prediction
from models.maths.tokens import merge_prediction
from models.shortcut import BASES
from views import VIEWS
from views.spec import Settings, Style, Subject, Table, for_data

# Texts per model for the prediction property: 1,000 took 94-110 s of the suite's time (MiniLM
# 35-42 ms a text), the most of any one test; the guide's 12 minutes were reached with it.
EXAMPLES_PER_MODEL = 500
VIEW_EXAMPLES_PER_MODEL = 12
# A shortcut model is its base family's code with other weights (models/shortcut.py): its text
# handling is what the base model runs with the full count, so a fifth of the examples checks its
# own weights and costs a fifth of the time.
DERIVED_SHARE = 5
DERIVED = {model_id: base_id for model_id, (base_id, _module) in BASES.items()}
# 6 layers x 12 heads: attribution, ablation and flow take seconds per text, so its view test is slow.
SLOW_VIEW_MODEL = "minilm-agnews"


def examples(model_id: str, count: int) -> int:
    return count // DERIVED_SHARE if model_id in DERIVED else count


HF_MODEL = "hf-tiny-bert"  # a seeded tiny checkpoint (tests/helpers/checkpoints.py): the hf: family's tokenizers

# Characters a classroom really pastes, each a known way to break text handling.
TRICKY = [
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner (emoji sequences)
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\ufeff",  # byte-order mark
    "\u0301",  # combining acute accent
    "\u0000",
    "\x1b[31m",
    "\r\n",
    "\t",
    "👩‍👩‍👧",
    "🚀",
    "مرحبا بالعالم",
    "שלום עולם",
    "日本語のテキスト",
    "Ǆ ﬁ Ⅻ ２０１５",
    "<script>alert(1)</script>",
    "{{7*7}} ${7*7}",
    "[CLS] [SEP] [PAD] [UNK] </s>",
]

pieces = st.one_of(st.text(max_size=40), st.sampled_from(TRICKY), st.sampled_from(["Stocks fell", "Federer wins", "3 March 2015", " ", "\n"]))
ordinary = st.lists(pieces, max_size=12).map("".join)
# Long pastes: a chunk repeated up to 10^5 characters, over the 20,000-character limit and under.
huge = st.builds(lambda chunk, times: (chunk * times)[:100_000], st.text(min_size=1, max_size=30), st.integers(1, 100_000))
texts = st.one_of(ordinary, ordinary, ordinary, huge)

PROFILE = settings(
    max_examples=EXAMPLES_PER_MODEL,
    deadline=None,
    derandomize=True,  # CI runs the same examples every time; a failure is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# URL values a view field may be given; each field keeps those its own parser accepts (as a link
# would), so counts, 1-based positions past the text's end, head lists and fractions all occur.
FIELD_CANDIDATES = ("0", "1", "2", "3", "7", "0.5", "1:1", "1:2,2:1", "1,2", "")


def field_values(field) -> list:
    """The field's default, then the candidates its parser accepts; text fields keep their default.

    A text field (the compare view's second text) given odd text is the model's documented
    refusal, which the prediction test covers.
    """
    values = [field.default]
    if isinstance(field.default, str):
        return values
    for candidate in FIELD_CANDIDATES:
        try:
            value = field.parse(candidate)
        except (ValueError, TypeError):
            continue
        if value not in values:
            values.append(value)
    return values


MODEL_IDS = [*registry.REGISTRY, HF_MODEL]


@pytest.fixture(scope="module")
def models(shipped_model, checkpoint):
    """``models(model_id)``: the session's shared bundled model, or the seeded tiny hf: checkpoint loaded once."""
    loaded = {}

    def get(model_id: str):
        if model_id != HF_MODEL:
            return shipped_model(model_id)
        if model_id not in loaded:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv(registry.ALLOW_HF_ENV, "1")
                loaded[model_id] = registry.load(f"{registry.HF_PREFIX}{checkpoint()}")
        return loaded[model_id]

    return get


def predict_or_refuse(model, text: str) -> Prediction | None:
    try:
        prediction = model.predict(text)
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message
        # models.base.check_text: a blank text is empty whatever its length; a long one says how long.
        if not text.strip():
            assert "empty" in message
        elif len(text) > MAX_INPUT_CHARS:
            assert f"{len(text):,} characters" in message
        return None
    assert len(text) <= MAX_INPUT_CHARS and text.strip()
    assert isinstance(prediction, Prediction)
    return prediction


@pytest.mark.slow
@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_any_text_gives_a_valid_prediction_or_the_documented_input_error(model_id, models):
    model = models(model_id)

    @settings(PROFILE, max_examples=examples(model_id, EXAMPLES_PER_MODEL))
    @given(texts)
    def check(text):
        predict_or_refuse(model, text)

    check()


def check_table(name: str, table: Table) -> None:
    """What CSV and JSON export write: one row label per row, one column label per column, numbers.

    Leading axes (layers, heads) are allowed: JSON keeps them and ``python -m views render``
    refuses them for CSV with a message. NaN marks a value undefined for this text (head
    statistics of a one-word text).
    """
    assert isinstance(table, Table), name
    weights = np.asarray(table.weights)
    labels = (len(table.rows), len(table.columns))
    assert weights.ndim >= 2 and weights.shape[-2:] == labels, f"{name}: {weights.shape} for {labels[0]} x {labels[1]} labels"
    assert weights.dtype.kind in "fiub" and not np.isinf(weights).any(), name


def check_view(view, model, text: str, words: bool, hide_special: bool, draw) -> None:
    """``text`` through ``view`` as the page calls it; ``draw`` picks layer, head and the view's fields."""
    prediction = predict_or_refuse(model, text)
    if prediction is None:
        return
    subject = Subject(model.model_id, model, text, prediction)
    # What the page hands ``applies`` and the pickers (views.compute.shown_prediction).
    shown = merge_prediction(prediction, model.subword_scheme) if words else prediction
    applies, reason = view.applies(shown, model)
    if not applies:
        assert reason and "\n" not in reason
        return
    fields = {field.name: draw(st.sampled_from(field_values(field)), label=field.name) for field in view.FIELDS}
    # Clamped to the model as ViewContext.layer / .head do: a link may ask for layer 6 of 1.
    layer = min(draw(st.integers(1, 8), label="layer"), shown.num_layers)
    head = min(draw(st.integers(1, 16), label="head"), shown.num_heads)
    page = Settings.of(fields, layer=layer, head=head, words=words, hide_special=hide_special)
    d = view.data(subject, for_data(view, page))
    assert isinstance(view.figure(d, page, Style()), go.Figure)
    tables = view.rows(d)
    assert all(isinstance(name, str) for name in tables)
    for name, table in tables.items():
        check_table(name, table)


PROTOCOL = ("data", "figure", "rows")


def has_protocol(view) -> bool:
    """Whether the view draws with ``data``, ``figure`` and ``rows``: every view but a whole-page one.

    A view that takes the whole page (the lesson, ``views/spec.py``) has none: each of its steps
    is drawn by another view, which is tested here in its own right. Any other view has all three.
    """
    present = [callable(getattr(view, name, None)) for name in PROTOCOL]
    if getattr(view, "WHOLE_PAGE", False):
        assert not any(present), f"{view.KEY} takes the whole page, yet defines some of {PROTOCOL}"
        return False
    assert all(present), f"{view.KEY} lacks {[n for n, p in zip(PROTOCOL, present) if not p]}"
    return True


# Not the shortcut models: their views run their base family's code, fuzzed here with its full
# count. What they cost is tracing that code again for their own weights (minilm-shortcut's
# attribution: 19 s for two texts), and test_combinations opens every view on them on the page.
VIEW_CASES = [
    pytest.param(model_id, view, id=f"{model_id}-{view.KEY}", marks=[pytest.mark.slow] if model_id == SLOW_VIEW_MODEL else [])
    for model_id in MODEL_IDS
    if model_id not in DERIVED
    for view in VIEWS
    if has_protocol(view)
]


@pytest.mark.parametrize(("model_id", "view"), VIEW_CASES)
def test_every_view_computes_draws_and_exports_or_says_it_does_not_apply(model_id, view, models):
    model = models(model_id)

    # No shrinking: each example runs the model and the view, and shrinking one failure took over
    # five minutes. The failing example is printed as drawn (text, switches, every field), and
    # derandomize replays it.
    @settings(PROFILE, max_examples=VIEW_EXAMPLES_PER_MODEL, phases=(Phase.explicit, Phase.generate))
    @given(ordinary, st.booleans(), st.booleans(), st.data())
    def check(text, words, hide_special, data):
        check_view(view, model, text, words, hide_special, data.draw)

    check()
