"""What a view module is made of, and the plain data its functions pass along.

One module per view owns everything about that view (``views/__init__.py`` lists them):

- ``KEY``, ``TITLE``, ``CAPTION``: its id in the URL (``view=<KEY>``), menu label, how to read it;
- ``FIELDS``: its own page state (``views.state.Field``), namespaced per panel by the state
  module, so no call can forget the panel;
- ``applies(prediction, model) -> (bool, reason)``: the only place a view says it does not apply;
- ``DEPENDS_ON``: which of the page's ``layer`` and ``head`` its data depends on (default both);
  the others are 0 in the settings ``data`` gets, so changing them reuses the cached data;
- ``data(subject, settings) -> D``: a pure function from one model's prediction and the settings
  to the arrays the view shows (no Streamlit; the page caches it, ``views.compute``); a long
  computation also takes ``progress=`` (a callable ``(done, total)``) and reports to it;
- ``figure(d, settings, style) -> go.Figure``: drawn by ``viz/``; ``settings`` are the full ones
  (the chosen head is highlighted even where the data covers every head);
- ``rows(d) -> dict[str, Table]``: what CSV and JSON export write (CSV: one table each);
- optionally ``record(d) -> dict``: named values the JSON export also writes at its top level
  (the fields a user scripts against, such as the layers view's ``layers``);
- ``render(ctx)``: the view's widgets on the page, and nothing the other three do not do;
- ``WHOLE_PAGE``: True for a view that takes the page over (the lesson: it sets model, text and
  view itself and draws other views' figures), which is then shown for the first model only, has
  no ``data``, ``figure`` or ``rows`` of its own and is not offered by the render command.

The page (``app.py``), the render command (``python -m views render``) and the lesson's handout
call ``data``, ``figure`` and ``rows`` the same way, so a view's logic is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.tokens import Groups, merge_subwords, merge_tokens, word_groups


@dataclass(frozen=True)
class Subject:
    """One model's prediction of one text: what every view's data is computed from."""

    model_id: str
    model: AttentionModel
    text: str
    prediction: Prediction
    # How another text is predicted by the same model (the two-sentence view): the page hands
    # in its shared cache, so changing the head never runs the model on the second text again.
    predictor: Callable[[str], Prediction] | None = field(default=None, compare=False, hash=False, repr=False)

    def predict(self, text: str) -> Prediction:
        return (self.predictor or self.model.predict)(text)


@dataclass(frozen=True)
class Settings:
    """What a view's data depends on besides the subject; hashable, so it can key a cache.

    ``layer`` and ``head`` are 1-based and already clamped to the model; ``fields`` holds the
    view's own fields (``FIELDS``) for this panel, as (name, value) pairs.
    """

    layer: int = 1
    head: int = 1
    words: bool = False
    hide_special: bool = False
    fields: tuple[tuple[str, Hashable], ...] = ()

    def __getitem__(self, name: str) -> Any:
        return dict(self.fields)[name]

    @classmethod
    def of(cls, fields: Mapping[str, Hashable] | None = None, **page: Any) -> Settings:
        return cls(fields=tuple(sorted((fields or {}).items())), **page)


def for_data(view: Any, settings: Settings) -> Settings:
    """``settings`` as ``view.data`` sees them: the layer and head it does not depend on are 0."""
    depends_on = getattr(view, "DEPENDS_ON", ("layer", "head"))
    return replace(settings, layer=settings.layer if "layer" in depends_on else 0, head=settings.head if "head" in depends_on else 0)


@dataclass(frozen=True)
class Style:
    """How figures are drawn: colours, scale, type size and the width they must fit; changes no data.

    ``width_px`` is the width of the column the figure is drawn in on the smallest screen the
    page is made for (a 1366-px laptop): the server never learns the browser's real width, so
    labels are thinned for this one and the figure itself stretches to whatever it gets.

    ``scale`` is the heatmaps' colour scale, one of ``viz.heatmap.SCALES``: "auto" stretches a
    matrix whose largest weight is under 0.3, "fixed" is the paper's 0..1, "stretch" is 0..max.
    """

    scheme: str = "colour"
    scale: str = "auto"
    presenter: bool = False
    width_px: int = 900


@dataclass(frozen=True)
class Table:
    """One matrix a view exports: rows × columns with their labels, and where it came from."""

    weights: np.ndarray
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shown:
    """A matrix as drawn: merged into words if asked, special tokens hidden if asked."""

    weights: np.ndarray
    source: tuple[str, ...]
    target: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Nothing but special tokens was left to show."""
        return not self.source or not self.target


def _groups(tokens: tuple[str, ...], special: tuple[bool, ...], model: AttentionModel, words: bool) -> Groups:
    if not words:
        return tuple((i,) for i in range(len(tokens)))
    return word_groups(tokens, special, model.subword_scheme)


def _axis(tokens: tuple[str, ...], special: tuple[bool, ...], model: AttentionModel, settings: Settings) -> tuple[Groups, tuple[str, ...], list[int]]:
    """One axis for display: its word groups, their labels, and which of them stay visible."""
    groups = _groups(tokens, special, model, settings.words)
    labels, flags = merge_tokens(tokens, special, groups, model.subword_scheme) if settings.words else (tokens, special)
    keep = [i for i, flag in enumerate(flags) if not (settings.hide_special and flag)]
    return groups, tuple(labels[i] for i in keep), keep


def at_least_float32(values: np.ndarray) -> np.ndarray:
    """``values`` upcast from the cache's float16 attention (``views.compute.compact``) for drawing
    and export; float32 and float64 pass unchanged."""
    values = np.asarray(values)
    return values.astype(np.float32) if values.dtype == np.float16 else values


def display(subject: Subject, settings: Settings, matrix: np.ndarray) -> Shown:
    """``matrix`` (..., target, source) over the model's own tokens, as the page draws it.

    Word pieces are merged after any composition across layers (``models.maths.compose``):
    attention *to* a word is the sum over its pieces, *from* a word the mean (Clark et al. 2019).
    Special tokens are then hidden without renormalising, so a row shows what went to ordinary
    tokens.
    """
    prediction, model = subject.prediction, subject.model
    row_groups, target, row_keep = _axis(prediction.target_tokens, prediction.target_special, model, settings)
    column_groups, source, column_keep = _axis(prediction.source_tokens, prediction.source_special, model, settings)
    weights = at_least_float32(matrix)
    if settings.words:
        weights = merge_subwords(weights, row_groups, column_groups)
    weights = weights[..., row_keep, :][..., column_keep]
    return Shown(weights, source, target)


def display_row(subject: Subject, settings: Settings, values: np.ndarray, query: str = "") -> Shown:
    """Values (..., source) over the model's own source tokens (one row per leading index), as drawn.

    ``query`` names the row(s) on the target axis. Columns are merged by summing pieces.
    """
    prediction, model = subject.prediction, subject.model
    column_groups, source, column_keep = _axis(prediction.source_tokens, prediction.source_special, model, settings)
    weights = np.atleast_2d(at_least_float32(values))
    if settings.words:
        weights = merge_subwords(weights[..., None, :], ((0,),), column_groups)[..., 0, :]
    return Shown(weights[..., column_keep], source, (query,) * weights.shape[-2])


def query_pieces(subject: Subject, settings: Settings, position: int) -> tuple[int, ...]:
    """The model tokens (0-based) that make up shown token ``position`` (0-based, clamped).

    Views that pick one query token (flow) offer the shown tokens but compute on the model's own
    tokens; a word's row is the mean of its pieces' rows, as ``display`` merges rows.
    """
    prediction = subject.prediction
    groups = _groups(prediction.target_tokens, prediction.target_special, subject.model, settings.words)
    return groups[min(max(0, position), len(groups) - 1)]
