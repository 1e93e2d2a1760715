"""Pure functions from attention arrays and tokens to Plotly figures (no Streamlit in here).

Modules: ``heatmap`` (one matrix, or several side by side), ``overview`` (every head as one
image), ``headview`` (bertviz's two-column lines), ``stats`` (layer×head maps of head
statistics), ``strip`` (per-token strips), ``bars`` (class probabilities), ``export`` (PNG, SVG,
CSV, JSON) and ``python -m viz render``; ``colours``, ``labels`` and ``pooling`` serve them.
Heavier modules are imported where they are used.
"""

from viz.bars import probability_bars
from viz.colours import COLOUR_SCHEMES
from viz.heatmap import Panel, alignment_heatmap, heatmap_panels

__all__ = ["COLOUR_SCHEMES", "Panel", "alignment_heatmap", "heatmap_panels", "probability_bars"]
