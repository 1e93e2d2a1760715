"""Head statistics: one row per (layer, head) for the current text, and a map of each column."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.head_stats import STATISTICS, head_statistics, head_table
from models.maths.tokens import merge_prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Style, Subject, Table
from views.widgets import matrix_downloads, open_clicked_head, show_figure
from viz.stats import stat_heatmaps

KEY = "stats"
TITLE = N_("Head statistics")
CAPTION = N_(
    "Known head types (Clark et al. 2019) and how to find them: sort by “Previous” for previous-token heads, by “On special” "
    "for heads that park on [CLS]/[SEP] when they have nothing to do, by “Entropy” for broad heads that average everything "
    "(entropy near 1). A head whose entropy is close to 1 barely chooses at all. Click a head in a map to open it."
)
FIELDS: tuple[state.Field, ...] = ()
# One row per head of the model: the chosen head is only outlined, so changing it reuses the data.
DEPENDS_ON: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatsData:
    """``head_statistics`` of the text: each statistic (``STATISTICS`` order) shaped (layers, heads)."""

    stats: Mapping[str, np.ndarray]

    @property
    def single(self) -> bool:
        """One layer of one head: a map of one cell says nothing the table does not."""
        return next(iter(self.stats.values())).size == 1


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def data(subject: Subject, settings: Settings) -> StatsData:
    """Statistics of the attention as drawn: between words when the word switch is on.

    Special tokens are never hidden here: the statistics already leave out their rows, and the
    share the words give to them is itself a statistic ("On special").
    """
    prediction = subject.prediction
    shown = merge_prediction(prediction, subject.model.subword_scheme) if settings.words else prediction
    stats = head_statistics(shown.attentions, shown.source_special, shown.target_special, self_attention=prediction.self_attention)
    return StatsData(stats=stats)


def figure(d: StatsData, settings: Settings, style: Style) -> go.Figure:
    titles = {key: _(title) for key, (title, _how) in STATISTICS.items()}
    selected = (settings.layer - 1, settings.head - 1)
    return stat_heatmaps(dict(d.stats), titles, selected=selected, scheme=style.scheme, width_px=style.width_px, presenter=style.presenter)


def rows(d: StatsData) -> dict[str, Table]:
    """One table: a row per head (``L1H2``), a column per statistic; NaN where undefined."""
    table = head_table(dict(d.stats))
    weights = np.array([[row[key] for key in STATISTICS] for row in table], dtype=np.float64).reshape(len(table), len(STATISTICS))
    return {"stats": Table(weights, tuple(f"L{row['layer']}H{row['head']}" for row in table), tuple(STATISTICS))}


def render(ctx: ViewContext) -> None:
    d = ctx.data()
    # The maps first: the table below them would push the first figure off a laptop's first screen.
    if not d.single:
        show_figure(ctx, figure(d, ctx.settings, ctx.style), "stats", on_click=open_clicked_head)
    titles = {key: _(title) for key, (title, _how) in STATISTICS.items()}
    st.dataframe(
        [{_("layer"): row["layer"], _("head"): row["head"], **{titles[key]: row[key] for key in STATISTICS}} for row in head_table(dict(d.stats))],
        hide_index=True,
        width="stretch",
        column_config={titles[key]: st.column_config.NumberColumn(titles[key], help=_(how), format="%.3f") for key, (_title, how) in STATISTICS.items()},
    )
    matrix_downloads(ctx, rows(d))
