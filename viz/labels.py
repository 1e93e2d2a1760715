"""Token labels that Plotly shows literally and that stay readable at the figure's width.

A heatmap of a long text has more columns than its width can label: past the point where
neighbouring tick labels would overlap, only every k-th token is labelled, and the axis title
says so ("source (keys), every 3rd token labelled"). Hover still names every cell's token.

The server never learns the browser's width, so the caller says how wide the figure will be
drawn (``views.spec.Style.width_px``); the label sizes below are those of the page's figure font
(Streamlit draws Plotly's tick labels at 12 px).
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from viz.pooling import block_edges
from viz.words import _

MAX_LABEL_CHARS = 18
# The width a figure is drawn for when its caller names none: a one-panel page on a laptop.
DEFAULT_WIDTH_PX = 900
TICK_FONT_PX = 12.0
# Advance of a character of the figure font (Source Sans Pro), in font sizes, a little above
# the font's own so that an estimate errs towards room: narrow letters and punctuation, wide
# ones, capitals and digits, and every other character.
NARROW_EM, NARROW = 0.3, frozenset("fijlrtI.,:;'!|()[]{} ")
WIDE_EM, WIDE = 0.85, frozenset("mwMW@%&")
CAPITAL_EM = 0.62
OTHER_EM = 0.55
# Space between two upright labels.
UPRIGHT_GAP_PX = 4.0
# Slanted labels stand side by side whatever their length: two neighbours at -60° are
# pitch·sin 60° apart, which must hold a line of text (1.15 font sizes) and a sliver of space.
SLANTED_EM = 1.45
SLANTED_ANGLE = -60
# Labels stacked down an axis (rows) need a line each.
STACKED_EM = 1.15


def literal(token: str) -> str:
    """Escape a token for Plotly text, making blank tokens visible.

    Plotly renders a subset of HTML in tick labels and hover text; tokens such as "<b>" or "&"
    typed by a user must appear as typed, never as markup.
    """
    if token == "":
        return "∅"
    if token.isspace():
        return token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
    return html.escape(token, quote=False)


def short(token: str) -> str:
    """Cut an overlong token (a pasted URL, say) so one label cannot swallow the axis."""
    return token if len(token) <= MAX_LABEL_CHARS else token[: MAX_LABEL_CHARS - 1] + "…"


def position_labels(tokens: Sequence[str]) -> list[str]:
    """One unique, escaped category name per token: "4 · the" (1-based position, then the token).

    Plotly merges equal category names into one column, so the position keeps repeated tokens
    apart; on hover the name tells both where and what the token is, with no string per cell.
    """
    return [f"{position} · {literal(short(token))}" for position, token in enumerate(tokens, start=1)]


def longest_label(tokens: Sequence[str]) -> int:
    """Characters in the longest tick label ``tokens`` can show (after shortening)."""
    return max((len(short(token)) for token in tokens), default=1)


def char_em(char: str) -> float:
    if char in NARROW:
        return NARROW_EM
    if char in WIDE:
        return WIDE_EM
    return CAPITAL_EM if char.isupper() or char.isdigit() else OTHER_EM


def text_px(text: str, font_px: float = TICK_FONT_PX) -> float:
    """About how wide ``text`` is drawn at ``font_px`` (never less than the font's true width for ordinary text)."""
    return sum(char_em(char) for char in text) * font_px


def wrap(text: str, width_px: float, font_px: float = TICK_FONT_PX) -> list[str]:
    """``text`` broken at spaces into lines each at most ``width_px`` wide at ``font_px`` (a word wider than that keeps a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_px(f"{lines[-1]} {word}", font_px) <= width_px:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [text]


def widest_px(tokens: Sequence[str], font_px: float = TICK_FONT_PX) -> float:
    """The width of the widest tick label ``tokens`` can show (after shortening)."""
    return max((text_px(short(token), font_px) for token in tokens), default=font_px)


def ordinal(k: int) -> str:
    """The ordinal of ``k``: "2nd", "3rd", "11th", "21st" (a catalog may use one form for all: German "3.")."""
    if k % 100 in (11, 12, 13) or k % 10 not in (1, 2, 3):
        return _("{k}th").format(k=k)
    return {1: _("{k}st"), 2: _("{k}nd"), 3: _("{k}rd")}[k % 10].format(k=k)


@dataclass(frozen=True)
class Ticks:
    """The labels one axis shows: category names (``values``), their texts, the thinning step, the angle."""

    values: list[str]
    texts: list[str]
    step: int
    angle: int

    def title(self, title: str, unit: str = "token") -> str:
        """``title`` with the thinning said ("…, every 3rd token labelled"); unchanged when every label shows."""
        if self.step == 1 or not title:
            return title
        template = _("{title}, every {nth} token labelled") if unit == "token" else _("{title}, every {nth} block labelled")
        return template.format(title=title, nth=ordinal(self.step))


def spread(count: int, length_px: float, *, label_px: float, font_px: float = TICK_FONT_PX, stacked: bool = False) -> tuple[int, int]:
    """Labels ``count`` cells over ``length_px``, the widest ``label_px`` wide: (every how many cells one label, angle).

    Along a horizontal axis labels stand upright when each fits its cell (a character, a short
    word in a wide figure) and slant otherwise; ``stacked`` labels (rows down a vertical axis)
    need one line of text each. Past that, every k-th cell gets a label, the smallest k that
    keeps neighbours apart.
    """
    if count <= 1:
        return 1, 0
    pitch = max(length_px, 1.0) / count
    if stacked:
        return max(1, math.ceil(STACKED_EM * font_px / pitch)), 0
    upright = max(1, math.ceil((label_px + UPRIGHT_GAP_PX) / pitch))
    slanted = max(1, math.ceil(SLANTED_EM * font_px / pitch))
    # Characters and very short labels read better upright even when that thins them a little more.
    if upright <= slanted or (label_px <= 1.25 * font_px and upright <= slanted + 1):
        return upright, 0
    return slanted, SLANTED_ANGLE


@dataclass(frozen=True)
class TokenAxis:
    """One axis of a heatmap: a unique category name per cell, and the token its tick shows."""

    names: list[str]
    tokens: list[str]
    blocked: bool = False

    @classmethod
    def of(cls, tokens: Sequence[str], blocks: int | None = None) -> TokenAxis:
        """One cell per token ("4 · the"), or per block of neighbouring tokens ("9–12 · the…cat")."""
        if blocks is None or blocks >= len(tokens):
            return cls(position_labels(tokens), list(tokens))
        edges = [*block_edges(len(tokens), blocks).tolist(), len(tokens)]
        spans = list(itertools.pairwise(edges))
        names = [
            f"{start + 1}–{end} · {literal(short(tokens[start]))}…{literal(short(tokens[end - 1]))}"
            if end - start > 1
            else f"{start + 1} · {literal(short(tokens[start]))}"
            for start, end in spans
        ]
        return cls(names, [tokens[start] for start, _ in spans], blocked=True)

    def ticks(self, length_px: float, *, font_px: float = TICK_FONT_PX, stacked: bool = False) -> Ticks:
        """The labels that fit ``length_px`` (the axis' length on screen): every one when they all fit."""
        step, angle = spread(len(self.tokens), length_px, label_px=widest_px(self.tokens, font_px), font_px=font_px, stacked=stacked)
        positions = range(0, len(self.tokens), step)
        return Ticks([self.names[i] for i in positions], [literal(short(self.tokens[i])) for i in positions], step, angle)

    def title(self, title: str, ticks: Ticks) -> str:
        return ticks.title(title, "block" if self.blocked else "token")
