"""What a view's ``render`` is handed: one panel's subject, its page state, and the view's data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from models.base import AttentionModel
from models.contract import Prediction
from views import compute, state
from views.spec import Settings, Style, Subject


@dataclass(frozen=True)
class ViewContext:
    """One panel of the page: the left (``panel=""``) or the second model's (``panel="b"``).

    ``subject`` holds what the model returned (word pieces, special tokens); ``shown`` is the
    prediction as drawn (whole words when the word switch is on), for pickers that list tokens.
    State is read through ``get`` and widgets are keyed through ``key``: both namespace the
    view's own fields and the layer and head for this panel, so no view can forget the panel.
    """

    subject: Subject
    shown: Prediction
    view: ModuleType
    panel: str = ""
    # The column's width the page lays this panel out for (``views.presenter.column_px``).
    width_px: int = Style.width_px

    @property
    def model_id(self) -> str:
        return self.subject.model_id

    @property
    def model(self) -> AttentionModel:
        return self.subject.model

    @property
    def text(self) -> str:
        return self.subject.text

    @property
    def prediction(self) -> Prediction:
        return self.subject.prediction

    def _panel(self, name: str) -> str | None:
        return self.panel if state.field_by_name()[name].per_panel else None

    def get(self, name: str) -> Any:
        return state.get(name, self._panel(name))

    def key(self, name: str) -> str:
        """Session-state / widget key of a state field, namespaced for this panel if per panel."""
        return state.key(name, self._panel(name))

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
    def settings(self) -> Settings:
        return Settings.of(
            {field.name: self.get(field.name) for field in self.view.FIELDS},
            layer=self.layer,
            head=self.head,
            words=bool(self.get("words")),
            hide_special=bool(self.get("hide_special")),
        )

    @property
    def style(self) -> Style:
        return Style(scheme=self.get("scheme"), scale=self.get("scale"), presenter=bool(self.get("present")), width_px=self.width_px)

    def data(self, settings: Settings | None = None, progress: Callable[[int, int], None] | None = None) -> Any:
        """The view's data for this panel (cached for every session): ``view.data(subject, settings)``."""
        return compute.view_data(self.view, self.subject, self.settings if settings is None else settings, progress)
