"""Colour scales shared by Plotly's own traces and the raster images drawn in numpy.

The overview paints thumbnails in numpy, so the scales are spelled out stop by stop (the same
stops plotly.js uses for its named "Viridis") and interpolated linearly in RGB, as plotly.js
does: a thumbnail and a heatmap of the same head show the same colours.
"""

from __future__ import annotations

import numpy as np
from plotly.colors import hex_to_rgb, unlabel_rgb

VIRIDIS = (
    (0.0, "#440154"),
    (0.06274509803921569, "#48186a"),
    (0.12549019607843137, "#472d7b"),
    (0.18823529411764706, "#424086"),
    (0.25098039215686274, "#3b528b"),
    (0.3137254901960784, "#33638d"),
    (0.3764705882352941, "#2c728e"),
    (0.4392156862745098, "#26828e"),
    (0.5019607843137255, "#21918c"),
    (0.5647058823529412, "#1fa088"),
    (0.6274509803921569, "#28ae80"),
    (0.6901960784313725, "#3fbc73"),
    (0.7529411764705882, "#5ec962"),
    (0.8156862745098039, "#84d44b"),
    (0.8784313725490196, "#addc30"),
    (0.9411764705882353, "#d8e219"),
    (1.0, "#fde725"),
)
# The paper's figure is grayscale with 0 black and 1 white; colour is easier on a projector.
GRAYSCALE = ((0.0, "black"), (1.0, "white"))
# Signed values (differences, attributions): negative blue, zero pale, positive red (ColorBrewer RdBu).
RED_BLUE = (
    (0.0, "#053061"),
    (0.1, "#2166ac"),
    (0.2, "#4393c3"),
    (0.3, "#92c5de"),
    (0.4, "#d1e5f0"),
    (0.5, "#f7f7f7"),
    (0.6, "#fddbc7"),
    (0.7, "#f4a582"),
    (0.8, "#d6604d"),
    (0.9, "#b2182b"),
    (1.0, "#67001f"),
)
# In grayscale a sign still needs two ends: black for the most negative, white for the most positive.
GRAY_SIGNED = ((0.0, "black"), (0.5, "#808080"), (1.0, "white"))

COLOUR_SCHEMES = {"colour": [list(stop) for stop in VIRIDIS], "grayscale": [list(stop) for stop in GRAYSCALE]}
SIGNED_SCHEMES = {"colour": [list(stop) for stop in RED_BLUE], "grayscale": [list(stop) for stop in GRAY_SIGNED]}
_NAMED = {"black": (0, 0, 0), "white": (255, 255, 255)}


def colourscale(scheme: str, *, signed: bool = False) -> list[list]:
    """The Plotly colour scale of ``scheme`` ("colour" or "grayscale"), diverging when ``signed``."""
    schemes = SIGNED_SCHEMES if signed else COLOUR_SCHEMES
    try:
        return schemes[scheme]
    except KeyError:
        raise ValueError(f"unknown colour scheme {scheme!r}; choose one of {sorted(schemes)}") from None


def _rgb(colour: str) -> tuple[int, int, int]:
    if colour in _NAMED:
        return _NAMED[colour]
    if colour.startswith("#"):
        return hex_to_rgb(colour)
    return tuple(int(float(c)) for c in unlabel_rgb(colour))


def lookup_table(scale: list[list], size: int = 256) -> np.ndarray:
    """(size, 3) uint8 colours of ``scale`` at ``size`` evenly spaced points of 0..1."""
    stops = np.array([float(position) for position, _ in scale])
    colours = np.array([_rgb(colour) for _, colour in scale], dtype=float)
    at = np.linspace(0.0, 1.0, size)
    return np.stack([np.interp(at, stops, colours[:, channel]) for channel in range(3)], axis=1).round().astype(np.uint8)


def paint(values: np.ndarray, scale: list[list], table_size: int = 256) -> np.ndarray:
    """Values on 0..1 (clipped) to RGB pixels (..., 3) uint8, as a Plotly trace on zmin=0, zmax=1 would colour them."""
    table = lookup_table(scale, table_size)
    index = np.rint(np.clip(values, 0.0, 1.0) * (table_size - 1)).astype(np.intp)
    return table[index]
