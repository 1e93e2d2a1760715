"""Attention Lens: type a sentence, see what a text model predicts and where it looked.

The entry point only wires things together: load the page state (views.state), draw the
sidebar, run the prediction (views.compute, cached), and hand a context to the chosen view
(views.VIEWS). Everything a user sees is in the URL, so a link reproduces it.
"""

from __future__ import annotations

import functools

import streamlit as st

import models
from models.base import LensError
from models.registry import HF_PREFIX, hf_models_allowed
from views import BY_KEY, VIEWS, compute, lesson, presenter, share, state
from views.context import ViewContext
from views.i18n import LANGUAGES, _, use_language
from views.spec import Subject
from views.widgets import escape_markdown, show_output

st.set_page_config(page_title="Attention Lens", layout="wide")


def switch_model() -> None:
    """A date model fed a headline (or the reverse) only shows noise: switch examples with it.

    A text the user typed stays when both models are classifiers.
    """
    kind = state.model_kind(st.session_state.model)
    other_examples = {text for other, examples in state.EXAMPLES.items() if other != kind for text in examples}
    text = st.session_state.text
    if text not in state.EXAMPLES[kind] and (kind == "seq2seq" or text in other_examples):
        st.session_state.text = state.EXAMPLES[kind][0]
    if kind == "seq2seq":
        st.session_state.scheme = "grayscale"
        st.session_state.scale = "fixed"  # with grayscale, the paper's Fig. 3


def use_example() -> None:
    if st.session_state.example:
        st.session_state.text = st.session_state.example
    st.session_state.example = ""


def use_checkpoint() -> None:
    checkpoint = st.session_state.checkpoint.strip()
    if checkpoint:
        st.session_state.model = HF_PREFIX + checkpoint


def sidebar() -> tuple[str, str]:
    """Model choice and drawing options; returns (model id, second model id or "")."""
    descriptions = models.available()
    options = list(descriptions)
    if st.session_state.model not in options:  # an hf: checkpoint, from the field below or a link
        options.append(st.session_state.model)
    with st.sidebar:
        st.header("Attention Lens")
        st.selectbox(_("Language"), list(LANGUAGES), format_func=LANGUAGES.get, key="lang")
        st.caption(_("The news classifiers read English text only; the date model reads English and German dates."))
        st.toggle(_("Presenter mode"), key="present", help=_("Large type and figures, high contrast, sidebar collapsed: for a projector."))
        share.share_button()
        model_id = st.selectbox(_("Model"), options, key="model", on_change=switch_model)
        description = descriptions.get(model_id, "")
        st.caption(_(description) if description else "")
        if hf_models_allowed():
            st.text_input(
                _("…or your own checkpoint"),
                key="checkpoint",
                on_change=use_checkpoint,
                placeholder=_("folder or owner/name on the hub"),
                help=_("A sequence-classification checkpoint in Hugging Face format (BERT, DistilBERT, RoBERTa, ALBERT, ELECTRA). Remote code is never run."),
            )
        compare = st.toggle(_("Compare side by side with another model"), value=bool(st.session_state.compare), key="compare_on")
        if compare:
            if not st.session_state.compare:
                st.session_state.compare = state.model_ids()[-1]
            second = state.model_ids()
            if st.session_state.compare not in second:  # an hf: checkpoint named by a link
                second.append(st.session_state.compare)
            st.selectbox(_("Second model"), second, key="compare")
        else:
            st.session_state.compare = ""
        st.radio(
            _("Heatmap colours"),
            state.SCHEMES,
            format_func=lambda s: {"colour": _("Colour"), "grayscale": _("Grayscale (0 black, 1 white, as in the paper)")}[s],
            key="scheme",
        )
        st.radio(
            _("Colour scale"),
            state.SCALES,
            format_func=lambda s: {"auto": _("Auto"), "fixed": _("Fixed 0..1 (as in the paper)"), "stretch": _("Stretch to the strongest weight")}[s],
            key="scale",
            help=_(
                "Auto: a heatmap whose strongest weight is under 0.3 (a head that spreads its attention evenly, a classifier's "
                "one-row pooling) is stretched so that its strongest weight gets the top colour, and its colour bar says so; "
                "sharper ones keep the paper's fixed 0..1. Fixed: 0..1 always, so heads compare by eye. Stretch: always 0..the "
                "strongest weight. The colour bar's ticks give the range drawn."
            ),
        )
        st.toggle(
            _("Whole words instead of word pieces"),
            key="words",
            help=_("Attention to a word is the sum over its pieces, attention from a word the mean (Clark et al. 2019)."),
        )
        st.toggle(
            _("Hide special tokens ([CLS], [SEP], …)"),
            key="hide_special",
            help=_("Weights are not renormalised: rows then show only what went to ordinary tokens."),
        )
    return model_id, st.session_state.compare


def show_panel(model_id: str, text: str, view, panel: str = "", *, width_px: int, answer=None) -> None:
    """One model's output and the chosen view of it; a failure stays inside this panel.

    ``answer`` is where the model's answer goes (the column beside the text, with one panel),
    else above the view; ``width_px`` is the width the panel is laid out for.
    """
    try:
        model = compute.load_model(model_id)
        prediction = compute.prediction(model_id, text)
        shown = compute.shown_prediction(model_id, text, state.get("words"))
    except LensError as error:
        st.error(str(error))
        return
    for note in prediction.notes:
        st.warning(escape_markdown(note))
    if prediction.dropped_tokens:
        st.warning(
            _("The text is longer than this model reads ({limit} tokens): the last {dropped} tokens were dropped and are not shown.").format(
                limit=model.max_tokens, dropped=prediction.dropped_tokens
            )
        )
    if not getattr(view, "HOLDS_BACK_OUTPUT", False):
        with answer if answer is not None else st.container():
            show_output(prediction, panel)
    applies, reason = view.applies(shown, model)
    if not applies:
        st.info(reason)
        return
    subject = Subject(model_id, model, text, prediction, predictor=functools.partial(compute.prediction, model_id))
    view.render(ViewContext(subject, shown, view, panel, width_px=width_px))


def main() -> None:
    state.load()
    use_language(state.get("lang"))
    present = bool(state.get("present"))
    presenter.apply(present)
    lesson.prepare()
    model_id, compare_id = sidebar()
    st.title(_("What is the model looking at?"))
    # Everything above the view fits a laptop's first screen with the top of the figure: the
    # example and view pickers share a row, and with one panel the answer stands beside the text.
    examples = state.EXAMPLES[state.model_kind(model_id)]
    pick, choose = st.columns([3, 2])
    pick.selectbox(_("Pick an example"), ["", *examples], key="example", on_change=use_example, format_func=lambda e: e or _("…or type your own below"))
    choose.selectbox(_("View"), [view.KEY for view in VIEWS], format_func=lambda key: _(BY_KEY[key].TITLE), key="view")
    view = BY_KEY[state.get("view")]
    one_panel = not compare_id or getattr(view, "WHOLE_PAGE", False)
    if one_panel and not getattr(view, "HOLDS_BACK_OUTPUT", False):
        typing, answer = st.columns([3, 2])
    else:
        typing, answer = st.container(), None
    text = typing.text_area(_("Text"), key="text", height=110 if answer is not None else 75)
    st.caption(_(view.CAPTION))
    if not text.strip():
        st.info(_("Type a sentence above (or pick an example) to see the prediction and its attention."))
    elif one_panel:
        if compare_id:
            st.caption(_("This view uses the whole page, so it shows the first model only."))
        show_panel(model_id, text, view, answer=answer, width_px=presenter.column_px(present))
    else:
        left, right = st.columns(2)
        for column, panel_model, panel in ((left, model_id, ""), (right, compare_id, state.SECOND_PANEL)):
            with column:
                st.markdown(f"#### {escape_markdown(panel_model)}")
                show_panel(panel_model, text, view, panel, width_px=presenter.column_px(present, columns=2))
    state.write_url()
    # After the first page is out: loading the other models must not delay it.
    compute.start_warm_up()


main()
