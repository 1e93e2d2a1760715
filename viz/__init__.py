"""Pure functions from attention arrays and tokens to Plotly figures (no Streamlit in here)."""

from viz.bars import probability_bars
from viz.heatmap import COLOUR_SCHEMES, alignment_heatmap, head_grid

__all__ = ["COLOUR_SCHEMES", "alignment_heatmap", "head_grid", "probability_bars"]
