"""Head statistics: one row per (layer, head) for the current text, and a map of each column."""

from __future__ import annotations

import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.head_stats import STATISTICS, head_statistics, head_table
from views import state
from views.context import ViewContext
from views.i18n import N_, _
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


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def render(ctx: ViewContext) -> None:
    shown = ctx.shown

    def compute():
        return head_statistics(shown.attentions, shown.source_special, shown.target_special, self_attention=ctx.is_self_attention)

    stats = ctx.cached("stats", compute)
    titles = {key: _(title) for key, (title, _how) in STATISTICS.items()}
    rows = head_table(stats)
    st.dataframe(
        [{_("layer"): row["layer"], _("head"): row["head"], **{titles[key]: row[key] for key in STATISTICS}} for row in rows],
        hide_index=True,
        width="stretch",
        column_config={titles[key]: st.column_config.NumberColumn(titles[key], help=_(how), format="%.3f") for key, (_title, how) in STATISTICS.items()},
    )
    if shown.num_layers * shown.num_heads > 1:
        figure = stat_heatmaps(stats, titles, selected=(ctx.layer - 1, ctx.head - 1), scheme=ctx.scheme)
        show_figure(ctx, figure, "stats", on_click=open_clicked_head)
    table = [[row[key] for key in STATISTICS] for row in rows]
    matrix_downloads(ctx, table, [f"L{row['layer']}H{row['head']}" for row in rows], list(STATISTICS), "stats")
