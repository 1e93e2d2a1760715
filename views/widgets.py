"""Small pieces of page that several views share: pickers, literal text, figure and data export."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import _
from views.spec import Table
from viz import probability_bars
from viz.present import for_projector


def escape_markdown(text: str) -> str:
    """User text and model labels are shown literally, never interpreted as Markdown or HTML."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>$~&])", r"\\\1", text)


def class_name(label: str) -> str:
    """A class label in the page's language (AG News classes are in the catalogs; others pass)."""
    return _(label) if label else label


def for_page(figure: go.Figure, presenter: bool) -> go.Figure:
    """A figure as the page draws it: in presenter mode with projector-sized type (``viz.present``)."""
    return for_projector(figure) if presenter else figure


def show_output(prediction: Prediction, panel: str) -> None:
    """The model's answer: the generated text, or the predicted class with every probability."""
    if prediction.is_seq2seq:
        st.subheader(_("Output"))
        st.code(prediction.output or _("(nothing)"), language=None)
        return
    label = escape_markdown(class_name(prediction.predicted_label or ""))
    st.subheader(_("Prediction: {label} ({probability:.0%})").format(label=label, probability=float(prediction.probs.max())))
    bars = probability_bars([class_name(label) for label in prediction.labels], prediction.probs)
    st.plotly_chart(for_page(bars, bool(state.get("present"))), width="stretch", key=f"bars-{panel}")


def only_special_tokens_left() -> None:
    st.info(_("Only special tokens are left: switch off “Hide special tokens” to see them."))


def layer_head_pickers(ctx: ViewContext, *, layer: bool = True, head: bool = True) -> tuple[int, int]:
    """Layer and head selectboxes bound to this panel's state, clamped to the model's size."""
    shown = ctx.shown
    st.session_state[ctx.key("layer")] = ctx.layer
    st.session_state[ctx.key("head")] = ctx.head
    columns = st.columns(2)
    if layer and shown.num_layers > 1:
        columns[0].selectbox(_("Layer"), range(1, shown.num_layers + 1), key=ctx.key("layer"))
    if head and shown.num_heads > 1:
        columns[1].selectbox(_("Head"), range(1, shown.num_heads + 1), key=ctx.key("head"))
    return ctx.layer, ctx.head


def show_figure(ctx: ViewContext, figure: go.Figure, name: str, on_click: Callable[[str, str], None] | None = None) -> None:
    """Draw ``figure`` (for the projector in presenter mode) and offer it as PNG and SVG (as drawn for a screen).

    ``on_click(chart_key, panel)`` runs before the next script run when the user clicks a point
    of the figure; it reads ``st.session_state[chart_key].selection`` and may change page state.
    """
    key = ctx.widget_key(f"chart-{name}")
    # The figure's width is the column's (Plotly's autosize): never a fixed layout width.
    shown = for_page(figure, ctx.style.presenter)
    if on_click is None:
        st.plotly_chart(shown, width="stretch", key=key)
    else:
        st.plotly_chart(shown, width="stretch", key=key, on_select=functools.partial(on_click, key, ctx.panel), selection_mode="points")
    figure_downloads(ctx, figure, name)


def clicked(chart_key: str) -> list | None:
    """The ``customdata`` of the point a user clicked in the chart ``chart_key``, if any."""
    points = st.session_state[chart_key].selection.get("points", [])
    return points[0].get("customdata") if points else None


def open_clicked_head(chart_key: str, panel: str) -> None:
    """A click on a head (customdata [layer, head], 1-based) opens it in the heatmap view."""
    data = clicked(chart_key)
    if data:
        st.session_state[state.key("layer", panel)] = int(data[0])
        st.session_state[state.key("head", panel)] = int(data[1])
        st.session_state[state.key("view")] = "heatmap"


def figure_downloads(ctx: ViewContext, figure: go.Figure, name: str) -> None:
    from viz.export import figure_png, figure_svg

    with st.popover(_("Download figure")):
        # Rendered only when asked: a static image costs a browser round trip in kaleido.
        if st.button(_("Prepare PNG and SVG"), key=ctx.widget_key(f"prepare-{name}")):
            try:
                png, svg = figure_png(figure), figure_svg(figure)
            except Exception as exc:  # kaleido or chromium missing: say so, keep the page
                st.error(_("Static export is not available here: {problem}").format(problem=exc))
                return
            left, right = st.columns(2)
            left.download_button("PNG", png, file_name=f"{name}.png", mime="image/png", key=ctx.widget_key(f"png-{name}"), on_click="ignore")
            right.download_button("SVG", svg, file_name=f"{name}.svg", mime="image/svg+xml", key=ctx.widget_key(f"svg-{name}"), on_click="ignore")


def matrix_downloads(ctx: ViewContext, tables: Mapping[str, Table]) -> None:
    """The view's ``rows()``: each table as CSV (tokens as header row and first column) and JSON.

    Written only when clicked: at 512 tokens the two files hold about 6 MB, which Streamlit would
    otherwise keep in memory for every session on every run. The session keeps the writers until
    its next run, so they hold a copy of each matrix: a view into the cached prediction would keep
    all of its layers and heads alive (72 MB for MiniLM at 512) after the cache let them go.

    A click downloads without rerunning the page (``on_click="ignore"``): a rerun started by the
    click replaces the writers, and when it finished before the browser fetched the file, the
    click gave no file (seen in tests/test_e2e_browser.py under load).
    """
    from viz.export import matrix_csv, matrix_json

    for name, table in tables.items():
        weights, rows, columns = np.array(table.weights), tuple(table.rows), tuple(table.columns)
        meta = {"model": ctx.model_id, "text": ctx.text, "view": ctx.view.KEY, "table": name, **table.meta}
        left, right = st.columns(2)
        left.download_button(
            _("{name} as CSV").format(name=name) if len(tables) > 1 else _("Data as CSV"),
            lambda weights=weights, rows=rows, columns=columns: matrix_csv(weights, rows, columns),
            file_name=f"{name}.csv",
            mime="text/csv",
            key=ctx.widget_key(f"csv-{name}"),
            on_click="ignore",
        )
        right.download_button(
            _("{name} as JSON").format(name=name) if len(tables) > 1 else _("Data as JSON"),
            lambda weights=weights, rows=rows, columns=columns, meta=meta: matrix_json(weights, rows, columns, **meta),
            file_name=f"{name}.json",
            mime="application/json",
            key=ctx.widget_key(f"json-{name}"),
            on_click="ignore",
        )
