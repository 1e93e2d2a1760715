"""Token labels that Plotly shows literally and that stay readable when there are many."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

# Plotly renders a subset of HTML in tick labels and hover text; tokens such as "<b>" or "&"
# typed by a user must appear as typed, never as markup.
MAX_LABEL_CHARS = 18
MAX_LABELS_PER_AXIS = 60


def literal(token: str) -> str:
    """Escape a token for Plotly text, making blank tokens visible."""
    if token == "":
        return "∅"
    if token.isspace():
        return token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
    return html.escape(token, quote=False)


def short(token: str) -> str:
    """Cut an overlong token (a pasted URL, say) so one label cannot swallow the axis."""
    return token if len(token) <= MAX_LABEL_CHARS else token[: MAX_LABEL_CHARS - 1] + "…"


def tick_labels(tokens: Sequence[str], limit: int = MAX_LABELS_PER_AXIS) -> tuple[list[int], list[str]]:
    """Positions and escaped labels for an axis, keeping every k-th one past ``limit`` tokens."""
    step = max(1, math.ceil(len(tokens) / limit))
    positions = list(range(0, len(tokens), step))
    return positions, [literal(short(tokens[i])) for i in positions]


def position_labels(tokens: Sequence[str]) -> list[str]:
    """One unique, escaped category name per token: "4 · the" (1-based position, then the token).

    Plotly merges equal category names into one column, so the position keeps repeated tokens
    apart; on hover the name tells both where and what the token is, with no string per cell.
    """
    return [f"{position} · {literal(short(token))}" for position, token in enumerate(tokens, start=1)]


def longest_label(tokens: Sequence[str]) -> int:
    """Characters in the longest tick label shown for ``tokens`` (after thinning and shortening)."""
    return max((len(text) for text in tick_labels(tokens)[1]), default=1)


def tick_angle(tokens: Sequence[str]) -> int:
    """Characters and short inputs read best upright; longer labels would collide, so they slant."""
    longest = longest_label(tokens)
    return 0 if longest <= 2 or (len(tokens) <= 8 and longest <= 8) else -60
