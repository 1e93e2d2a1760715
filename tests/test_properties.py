"""Whatever a classroom pastes, every model and every view answers or says clearly why not.

Property-based (hypothesis): arbitrary unicode, empty and whitespace-only text, control
characters, zero-width joiners, right-to-left scripts, emoji, combining marks, up to 10^5
characters. A model either returns a Prediction (whose own validation ran on construction) or
raises the documented InputError; every view's computation returns a figure or the view's
one-line "does not apply".
"""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import registry
from models.base import MAX_INPUT_CHARS, InputError, LensError
from models.contract import Prediction

EXAMPLES_PER_MODEL = 1000
VIEW_EXAMPLES_PER_MODEL = 25

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


@pytest.fixture(scope="module", params=list(registry.REGISTRY))
def model(request):
    return registry.load(request.param)


def predict_or_refuse(model, text: str) -> Prediction | None:
    try:
        prediction = model.predict(text)
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message
        if len(text) > MAX_INPUT_CHARS:
            assert f"{len(text):,} characters" in message
        return None
    assert len(text) <= MAX_INPUT_CHARS and text.strip()
    assert isinstance(prediction, Prediction)
    return prediction


@pytest.mark.slow
def test_any_text_gives_a_valid_prediction_or_the_documented_input_error(model):
    @PROFILE
    @given(texts)
    def check(text):
        predict_or_refuse(model, text)

    check()


@pytest.mark.slow
def test_every_view_draws_or_says_it_does_not_apply(model):
    from models.maths.tokens import merge_prediction
    from viz.__main__ import RENDERERS, VIEWS, _parser

    @settings(PROFILE, max_examples=VIEW_EXAMPLES_PER_MODEL)
    @given(ordinary, st.booleans(), st.booleans())
    def check(text, words, hide_special):
        prediction = predict_or_refuse(model, text)
        if prediction is None:
            return
        shown = merge_prediction(prediction, model.subword_scheme) if words else prediction
        for view in VIEWS:
            options = ["--words"] * words + ["--hide-special"] * hide_special
            args = _parser().parse_args(["render", "--model", model.model_id, "--text", text, "--view", view, "-o", "out.json", *options])
            try:
                rendered = RENDERERS[view](args, model, shown)
            except LensError as error:  # the view does not apply to this model or text: one line
                assert str(error) and "\n" not in str(error)
                continue
            assert isinstance(rendered.figure, go.Figure)

    check()
