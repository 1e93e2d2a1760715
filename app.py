"""Attention Lens: type a sentence, see what a text model predicts and where it looked.

Thin on purpose: widgets in, ``models`` and ``viz`` calls, figures out. Everything a student
might want to share (model, text, layer, head, colour scheme) lives in the URL.
"""

from __future__ import annotations

import re

import streamlit as st

import models
from models.base import LensError
from models.maths.rollout import attention_rollout
from models.maths.tokens import merge_prediction, without_special
from models.registry import HF_PREFIX, REGISTRY, hf_models_allowed
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
DATE_EXAMPLES = (
    "Tuesday, 3rd of March 2015",
    "03/03/15",
    "3 Mar 2015",
    "March 3rd, 2015",
    "2015 March 3",
    "3. März 2015",
    "Freitag, 24. Dezember 1999",
    "the 1st of July 1969",
)
EXAMPLES = {"classifier": CLASSIFIER_EXAMPLES, "seq2seq": DATE_EXAMPLES}
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


def model_kind(model_id: str) -> str:
    found = REGISTRY.get(model_id)
    return found.kind if found else "classifier"


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
    if requested.startswith(HF_PREFIX) and hf_models_allowed():
        st.session_state.checkpoint = requested.removeprefix(HF_PREFIX)
    compare = st.query_params.get("compare")
    st.session_state.compare = compare in ids
    st.session_state.compare_id = compare if compare in ids else ids[-1]
    kind = model_kind(st.session_state.model_id)
    st.session_state.text = st.query_params.get("text", EXAMPLES[kind][0])
    scheme = st.query_params.get("scheme", "grayscale" if kind == "seq2seq" else "colour")
    st.session_state.scheme = scheme if scheme in SCHEMES else "colour"
    for flag in ("stretch", "words", "hide_special"):
        st.session_state[flag] = st.query_params.get(flag) == "1"
    for key in ("layer", "head", "layer_b", "head_b"):
        st.session_state[key] = max(1, query_int(key, 1))


def use_example() -> None:
    if st.session_state.example:
        st.session_state.text = st.session_state.example


def switch_model() -> None:
    """A date model fed a headline (or the reverse) only shows noise: switch examples with it."""
    kind = model_kind(st.session_state.model_id)
    if st.session_state.text not in EXAMPLES[kind]:
        st.session_state.text = EXAMPLES[kind][0]
    st.session_state.example = ""
    if kind == "seq2seq":
        st.session_state.scheme = "grayscale"


def sidebar() -> tuple[str, str | None, str]:
    descriptions = models.available()
    with st.sidebar:
        st.header("Attention Lens")
        model_id = st.selectbox("Model", list(descriptions), key="model_id", on_change=switch_model)
        st.caption(descriptions[model_id])
        if hf_models_allowed():
            checkpoint = st.text_input(
                "…or your own checkpoint",
                key="checkpoint",
                placeholder="folder or owner/name on the hub",
                help="A sequence-classification checkpoint in Hugging Face format (BERT, DistilBERT, RoBERTa, ALBERT, ELECTRA). Remote code is never run.",
            ).strip()
            if checkpoint:
                model_id = HF_PREFIX + checkpoint
        compare_id = None
        if st.toggle("Compare side by side with another model", key="compare"):
            compare_id = st.selectbox("Second model", list(descriptions), key="compare_id")
        scheme = st.radio("Heatmap colours", list(SCHEMES), format_func=SCHEMES.get, key="scheme")
        st.toggle("Stretch colours to the strongest weight", key="stretch", help="Off: the paper's fixed 0..1 scale. On: diffuse heads show their structure.")
        st.toggle(
            "Whole words instead of word pieces",
            key="words",
            help="Attention to a word is the sum over its pieces, attention from a word the mean (Clark et al. 2019).",
        )
        st.toggle(
            "Hide special tokens ([CLS], [SEP], …)", key="hide_special", help="Weights are not renormalised: rows then show only what went to ordinary tokens."
        )
    return model_id, compare_id, scheme


def choose_head(prediction: models.Prediction, suffix: str) -> tuple[int, int]:
    """Layer and head pickers, clamped to this model's size (a URL may ask for head 12 of 2)."""
    layer_key, head_key = f"layer{suffix}", f"head{suffix}"
    st.session_state[layer_key] = min(st.session_state.get(layer_key, 1), prediction.num_layers)
    st.session_state[head_key] = min(st.session_state.get(head_key, 1), prediction.num_heads)
    if prediction.num_layers * prediction.num_heads == 1:
        return 1, 1
    left, right = st.columns(2)
    layer = left.selectbox("Layer", range(1, prediction.num_layers + 1), key=layer_key)
    head = right.selectbox("Head", range(1, prediction.num_heads + 1), key=head_key)
    st.query_params.update({layer_key: str(layer), head_key: str(head)})
    return layer, head


def reading_hint(prediction: models.Prediction) -> str:
    if prediction.is_seq2seq:
        return (
            "How to read it (as Fig. 3 of Bahdanau et al. 2015): each row is one character the "
            "decoder wrote, top to bottom; the bright cells in that row are the input characters "
            "it looked at while writing it. Black is 0, white is 1."
        )
    if len(prediction.target_tokens) == 1:
        return (
            "One row: the attention of the classifier's single learned query. Each word's weight "
            "is its share of the summary vector the classifier reads; the weights sum to 1."
        )
    return "Row i shows where token i looked: its weights over the tokens along the top sum to 1. Hover a cell for the exact weight."


def show_output(prediction: models.Prediction) -> None:
    if prediction.is_seq2seq:
        st.subheader("Output")
        st.code(prediction.output or "(nothing)", language=None)
        return
    label = escape_markdown(prediction.predicted_label or "")
    st.subheader(f"Prediction: {label} ({prediction.probs.max():.0%})")
    st.plotly_chart(probability_bars(prediction.labels, prediction.probs), width="stretch")


def visible(prediction: models.Prediction, attentions) -> tuple:
    """``attentions`` (..., T, S) with its token labels, without special tokens if so chosen."""
    if not st.session_state.hide_special:
        return attentions, prediction.source_tokens, prediction.target_tokens
    kept, source_keep, target_keep = without_special(attentions, prediction.source_special, prediction.target_special)
    return kept, [prediction.source_tokens[i] for i in source_keep], [prediction.target_tokens[i] for i in target_keep]


def show_attention(prediction: models.Prediction, scheme: str, suffix: str) -> None:
    layer, head = choose_head(prediction, suffix)
    weights, source, target = visible(prediction, prediction.attentions[layer - 1, head - 1])
    if not source or not target:
        st.info("Only special tokens are left: switch off “Hide special tokens” to see them.")
        return
    title = "Alignment" if prediction.num_layers * prediction.num_heads == 1 else f"Layer {layer}, head {head}"
    axis_titles = dict(source_title="input characters", target_title="output characters") if prediction.is_seq2seq else {}
    stretch = st.session_state.stretch
    st.plotly_chart(alignment_heatmap(weights, source, target, scheme=scheme, title=title, stretch=stretch, **axis_titles), width="stretch")
    st.caption(reading_hint(prediction))
    if prediction.num_layers * prediction.num_heads > 1:
        with st.expander(f"All {prediction.num_layers * prediction.num_heads} heads at once"):
            grid, source, target = visible(prediction, prediction.attentions)
            st.plotly_chart(head_grid(grid, source, target, scheme=scheme, selected=(layer - 1, head - 1)), width="stretch")
    if prediction.num_layers > 1 and prediction.source_tokens == prediction.target_tokens:
        with st.expander(f"Attention rollout up to layer {layer} (Abnar & Zuidema 2020)"):
            rolled, source, target = visible(prediction, attention_rollout(prediction.attentions)[layer - 1])
            st.plotly_chart(
                alignment_heatmap(rolled, source, target, scheme=scheme, title=f"Rollout through layers 1-{layer}", stretch=stretch), width="stretch"
            )
            st.caption(
                "Rollout multiplies the head-averaged attention of each layer, counting the residual "
                "connection as half of it: row i estimates how much each input token has flowed into "
                "token i by this layer, which single-layer heatmaps cannot show."
            )


def show_model(model_id: str, text: str, scheme: str, suffix: str = "") -> None:
    """Everything one model says about ``text``; errors stay inside this panel."""
    try:
        model = load_model(model_id)
        prediction = model.predict(text)
    except LensError as error:
        st.error(str(error))
        return
    if st.session_state.words:
        prediction = merge_prediction(prediction, model.subword_scheme)
    for note in prediction.notes:
        st.warning(note)
    if prediction.dropped_tokens:
        st.warning(
            f"The text is longer than this model reads ({model.max_tokens} tokens): the last {prediction.dropped_tokens} tokens were dropped and are not shown."
        )
    show_output(prediction)
    show_attention(prediction, scheme, suffix)


def sync_url(model_id: str, compare_id: str | None, scheme: str, text: str) -> None:
    flags = {flag: "1" if st.session_state[flag] else "0" for flag in ("stretch", "words", "hide_special")}
    st.query_params.update(model=model_id, scheme=scheme, **flags)
    if compare_id:
        st.query_params["compare"] = compare_id
    elif "compare" in st.query_params:
        del st.query_params["compare"]
    if len(text) <= URL_TEXT_LIMIT:
        st.query_params["text"] = text
    elif "text" in st.query_params:
        del st.query_params["text"]


def main() -> None:
    init_state()
    model_id, compare_id, scheme = sidebar()
    st.title("What is the model looking at?")
    examples = EXAMPLES[model_kind(model_id)]
    st.selectbox("Pick an example", ["", *examples], key="example", on_change=use_example, format_func=lambda e: e or "…or type your own below")
    text = st.text_area("Text", key="text", height=90)
    sync_url(model_id, compare_id, scheme, text)
    if not text.strip():
        st.info("Type a sentence above (or pick an example) to see the prediction and its attention.")
        return
    if compare_id is None:
        show_model(model_id, text, scheme)
        return
    left, right = st.columns(2)
    with left:
        st.markdown(f"#### {escape_markdown(model_id)}")
        show_model(model_id, text, scheme)
    with right:
        st.markdown(f"#### {escape_markdown(compare_id)}")
        show_model(compare_id, text, scheme, suffix="_b")


main()
