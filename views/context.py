"""What a view is handed: the model, the text, its prediction and the page state for one panel."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.tokens import merge_subwords, without_special, word_groups
from views import compute, state


@dataclass(frozen=True)
class ViewContext:
    """One panel of the page: the left (``panel=""``) or the second model's (``panel="b"``).

    ``prediction`` is what the model returned (word pieces, special tokens); ``shown`` is what
    the views draw: whole words when the word switch is on. ``visible`` applies the
    hide-special switch to any array over ``shown``'s tokens.
    """

    model_id: str
    model: AttentionModel
    text: str
    prediction: Prediction
    shown: Prediction
    panel: str = ""

    def get(self, name: str) -> Any:
        return state.get(name, self.panel)

    def key(self, name: str) -> str:
        """Session-state / widget key of a state field, namespaced for this panel."""
        return state.key(name, self.panel)

    def widget_key(self, name: str) -> str:
        """A key for a widget that is not page state (a chart's selection, a button)."""
        return f"{self.panel}.{name}" if self.panel else name

    @property
    def layer(self) -> int:
        """The chosen layer (1-based), clamped to this model: a link may ask for layer 6 of 1."""
        return min(max(1, self.get("layer")), self.shown.num_layers)

    @property
    def head(self) -> int:
        return min(max(1, self.get("head")), self.shown.num_heads)

    @property
    def words(self) -> bool:
        return bool(state.get("words"))

    @property
    def hide_special(self) -> bool:
        return bool(state.get("hide_special"))

    @property
    def scheme(self) -> str:
        return state.get("scheme")

    @property
    def stretch(self) -> bool:
        return bool(state.get("stretch"))

    @property
    def is_self_attention(self) -> bool:
        return self.shown.source_tokens == self.shown.target_tokens and not self.shown.is_seq2seq

    def visible(self, attentions: np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
        """``attentions`` (..., T, S) over ``shown``'s tokens, with special tokens hidden if chosen."""
        shown = self.shown
        if not self.hide_special:
            return attentions, list(shown.source_tokens), list(shown.target_tokens)
        kept, source_keep, target_keep = without_special(attentions, shown.source_special, shown.target_special)
        return kept, [shown.source_tokens[i] for i in source_keep], [shown.target_tokens[i] for i in target_keep]

    def visible_row(self, values: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Values (..., S) over ``shown``'s source tokens, without special tokens if so chosen."""
        keep = [i for i, special in enumerate(self.shown.source_special) if not (self.hide_special and special)]
        return np.asarray(values)[..., keep], [self.shown.source_tokens[i] for i in keep]

    def as_shown(self, attentions: np.ndarray) -> np.ndarray:
        """An array (..., T, S) over the model's own tokens, merged into words if ``shown`` is."""
        if not self.words:
            return attentions
        raw, scheme = self.prediction, self.model.subword_scheme
        rows = word_groups(raw.target_tokens, raw.target_special, scheme)
        columns = word_groups(raw.source_tokens, raw.source_special, scheme)
        return merge_subwords(attentions, rows, columns)

    def cached(self, name: str, compute_: Callable[[], Any], *key: Hashable) -> Any:
        """A derived result of this panel's text, shared across reruns and sessions.

        The key always includes model, text and the word switch; pass whatever else it depends on.
        """
        return compute.cached(name, compute_, self.model_id, self.text, self.words, *key)
