"""Pure functions from attention arrays and tokens to Plotly figures (no Streamlit in here).

Modules: ``heatmap`` (one matrix, or several side by side), ``overview`` (every head as one
image), ``headview`` (bertviz's two-column lines), ``stats`` (layer×head maps of head
statistics), ``strip`` (per-token strips), ``bars`` (class probabilities) and ``export`` (PNG,
SVG, CSV, JSON); ``colours``, ``labels``, ``pooling`` and ``words`` serve them. Heavier modules
are imported where they are used. viz imports numpy, plotly and Pillow, never the project's
``models`` or ``views`` (``tests/test_viz_pure.py``): the views turn predictions into arrays and
call it, and ``python -m views render`` writes its figures to files.
"""

from viz.bars import probability_bars
from viz.colours import COLOUR_SCHEMES
from viz.heatmap import Panel, alignment_heatmap, heatmap_panels

__all__ = ["COLOUR_SCHEMES", "Panel", "alignment_heatmap", "heatmap_panels", "probability_bars"]
