"""Colour scales shared by Plotly's own traces and the raster images drawn in numpy.

The overview paints thumbnails in numpy, so the scales are the stops plotly.js uses for its
named "Viridis" (``plotly.colors.PLOTLY_SCALES``) and are sampled by Plotly's own
``sample_colorscale``, linearly in RGB as plotly.js does: a thumbnail and a heatmap of the same
head show the same colours.
"""

from __future__ import annotations

import numpy as np
from plotly.colors import PLOTLY_SCALES, diverging, sample_colorscale

VIRIDIS = tuple((float(position), colour) for position, colour in PLOTLY_SCALES["Viridis"])
# The paper's figure is grayscale with 0 black and 1 white; colour is easier on a projector.
GRAYSCALE = ((0.0, "black"), (1.0, "white"))
# Signed values (differences, attributions): negative blue, zero pale, positive red (ColorBrewer RdBu).
RED_BLUE = tuple((stop / (len(diverging.RdBu_r) - 1), colour) for stop, colour in enumerate(diverging.RdBu_r))
# In grayscale a sign still needs two ends: black for the most negative, white for the most positive.
GRAY_SIGNED = ((0.0, "black"), (0.5, "#808080"), (1.0, "white"))

COLOUR_SCHEMES = {"colour": [list(stop) for stop in VIRIDIS], "grayscale": [list(stop) for stop in GRAYSCALE]}
SIGNED_SCHEMES = {"colour": [list(stop) for stop in RED_BLUE], "grayscale": [list(stop) for stop in GRAY_SIGNED]}
# plotly.js knows CSS colour names; Plotly's Python colour helpers read only rgb() and hex.
_NAMED = {"black": "#000000", "white": "#ffffff"}


def colourscale(scheme: str, *, signed: bool = False) -> list[list]:
    """The Plotly colour scale of ``scheme`` ("colour" or "grayscale"), diverging when ``signed``."""
    schemes = SIGNED_SCHEMES if signed else COLOUR_SCHEMES
    try:
        return schemes[scheme]
    except KeyError:
        raise ValueError(f"unknown colour scheme {scheme!r}; choose one of {sorted(schemes)}") from None


def lookup_table(scale: list[list], size: int = 256) -> np.ndarray:
    """(size, 3) uint8 colours of ``scale`` at ``size`` evenly spaced points of 0..1."""
    spelled = [[position, _NAMED.get(colour, colour)] for position, colour in scale]
    rgb = sample_colorscale(spelled, np.linspace(0.0, 1.0, size).tolist(), colortype="tuple")
    return np.rint(np.array(rgb) * 255).astype(np.uint8)


def paint(values: np.ndarray, scale: list[list], table_size: int = 256) -> np.ndarray:
    """Values on 0..1 (clipped) to RGB pixels (..., 3) uint8, as a Plotly trace on zmin=0, zmax=1 would colour them."""
    table = lookup_table(scale, table_size)
    index = np.rint(np.clip(values, 0.0, 1.0) * (table_size - 1)).astype(np.intp)
    return table[index]
