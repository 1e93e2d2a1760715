"""Attention Lens: type a sentence, see what a text model predicts and where it looked.

Thin on purpose: widgets in, ``models`` and ``viz`` calls, figures out. Everything a student
might want to share (model, text, layer, head, colour scheme) lives in the URL.
"""

from __future__ import annotations

import re

import streamlit as st

import models
from models.base import LensError
from viz import alignment_heatmap, head_grid, probability_bars

CLASSIFIER_EXAMPLES = (
    "UN Security Council calls for ceasefire as fighting spreads in the region",
    "Prime minister wins confidence vote after week of protests in the capital",
    "Federer beats Nadal in straight sets to reach the Wimbledon final",
    "Red Sox rally in ninth inning to stun the Yankees",
    "Oil prices climb to record high as investors worry about supply",
    "Shares of the bank fell after quarterly profit missed forecasts",
    "NASA probe sends back first images from the surface of Mars",
    "Microsoft releases security patch for Windows software flaw",
)
URL_TEXT_LIMIT = 1500  # longer texts stay out of the URL so links remain shareable
SCHEMES = {"colour": "Colour", "grayscale": "Grayscale (0 black, 1 white, as in the paper)"}

st.set_page_config(page_title="Attention Lens", layout="wide")


@st.cache_resource(show_spinner="Loading the model (first time only)…")
def load_model(model_id: str) -> models.AttentionModel:
    # Shared by every session: 30 students on one server load each model once.
    return models.load(model_id)


def escape_markdown(text: str) -> str:
    """User text and model labels are shown literally, never interpreted as markup."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>$~])", r"\\\1", text)


def query_int(name: str, default: int) -> int:
    try:
        return int(st.query_params.get(name, default))
    except ValueError:
        return default


def init_state() -> None:
    """First run of a session: take model, text and view settings from the URL."""
    if "initialised" in st.session_state:
        return
    st.session_state.initialised = True
    ids = list(models.available())
    requested = st.query_params.get("model", ids[0])
    st.session_state.model_id = requested if requested in ids else ids[0]
    st.session_state.text = st.query_params.get("text", CLASSIFIER_EXAMPLES[0])
    scheme = st.query_params.get("scheme", "colour")
    st.session_state.scheme = scheme if scheme in SCHEMES else "colour"
    st.session_state.layer = max(1, query_int("layer", 1))
    st.session_state.head = max(1, query_int("head", 1))


def use_example() -> None:
    if st.session_state.example:
        st.session_state.text = st.session_state.example


def sidebar() -> tuple[str, str]:
    descriptions = models.available()
    with st.sidebar:
        st.header("Attention Lens")
        model_id = st.selectbox("Model", list(descriptions), key="model_id")
        st.caption(descriptions[model_id])
        scheme = st.radio("Heatmap colours", list(SCHEMES), format_func=SCHEMES.get, key="scheme")
    return model_id, scheme


def choose_head(prediction: models.Prediction) -> tuple[int, int]:
    """Layer and head pickers, clamped to this model's size (a URL may ask for head 12 of 2)."""
    st.session_state.layer = min(st.session_state.layer, prediction.num_layers)
    st.session_state.head = min(st.session_state.head, prediction.num_heads)
    left, right = st.columns(2)
    layer = left.selectbox("Layer", range(1, prediction.num_layers + 1), key="layer")
    head = right.selectbox("Head", range(1, prediction.num_heads + 1), key="head")
    return layer, head


def show_classification(prediction: models.Prediction) -> None:
    label = escape_markdown(prediction.predicted_label or "")
    st.subheader(f"Prediction: {label} ({prediction.probs.max():.0%})")
    st.plotly_chart(probability_bars(prediction.labels, prediction.probs), width="stretch")


def show_attention(prediction: models.Prediction, scheme: str) -> None:
    layer, head = choose_head(prediction)
    weights = prediction.attentions[layer - 1, head - 1]
    st.plotly_chart(
        alignment_heatmap(weights, prediction.source_tokens, prediction.target_tokens, scheme=scheme, title=f"Layer {layer}, head {head}"),
        width="stretch",
    )
    st.caption(
        "Row i shows where token i looked: its weights over the tokens along the top sum to 1. "
        "Hover a cell for the exact weight."
    )
    if prediction.num_layers * prediction.num_heads > 1:
        with st.expander(f"All {prediction.num_layers * prediction.num_heads} heads at once"):
            st.plotly_chart(
                head_grid(prediction.attentions, prediction.source_tokens, prediction.target_tokens, scheme=scheme, selected=(layer - 1, head - 1)),
                width="stretch",
            )
    st.query_params.update(layer=str(layer), head=str(head))


def main() -> None:
    init_state()
    model_id, scheme = sidebar()
    st.title("What is the model looking at?")
    st.selectbox("Pick an example", ["", *CLASSIFIER_EXAMPLES], key="example", on_change=use_example, format_func=lambda e: e or "…or type your own below")
    text = st.text_area("Text", key="text", height=90)
    st.query_params.update(model=model_id, scheme=scheme)
    if len(text) <= URL_TEXT_LIMIT:
        st.query_params["text"] = text
    elif "text" in st.query_params:
        del st.query_params["text"]

    if not text.strip():
        st.info("Type a sentence above (or pick an example) to see the prediction and its attention.")
        return
    try:
        model = load_model(model_id)
        prediction = model.predict(text)
    except LensError as error:
        st.error(str(error))
        return
    if prediction.dropped_tokens:
        st.warning(
            f"The text is longer than this model reads ({model.max_tokens} tokens): the last "
            f"{prediction.dropped_tokens} tokens were dropped and are not shown."
        )
    show_classification(prediction)
    show_attention(prediction, scheme)


main()
