"""The one owner of the page's state: a typed schema, read from the URL once, written once per run.

Everything a user sees is reproducible from the link: each field below is a query parameter and
a ``st.session_state`` key of the same name (widgets use that key). Per-panel fields are
namespaced for the second model of the side-by-side mode (``b.layer``, ``b.head``, …). A value
that is unknown, malformed or out of range falls back to the field's default, so any old or
hand-edited link still opens a working page.

Flow of one script run: ``load()`` (first run of a session: the URL into session state; every
run: keep the values of widgets not drawn this run), widgets read and change session state,
``write_url()`` at the end puts the non-default values back into the URL.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from models import available
from models.registry import HF_PREFIX, REGISTRY, hf_models_allowed
from views.i18n import LANGUAGES
from viz.heatmap import SCALES

# Longer texts stay out of the URL so links remain shareable (and under browsers' URL limits);
# the page says so next to the share link.
URL_TEXT_LIMIT = 1500
SECOND_PANEL = "b"
SCHEMES = ("colour", "grayscale")
_LOADED = "_state_loaded"

CLASSIFIER_EXAMPLES = (
    "UN Security Council calls for ceasefire as fighting spreads in the region",
    "Prime minister wins confidence vote after week of protests in the capital",
    "Federer beats Nadal in straight sets to reach the Wimbledon final",
    "Red Sox rally in ninth inning to stun the Yankees",
    "Oil prices climb to record high as investors worry about supply",
    "Shares of the bank fell after quarterly profit missed forecasts",
    "NASA probe sends back first images from the surface of Mars",
    "Microsoft releases security patch for Windows software flaw",
)
DATE_EXAMPLES = (
    "Tuesday, 3rd of March 2015",
    "03/03/15",
    "3 Mar 2015",
    "March 3rd, 2015",
    "2015 March 3",
    "3. März 2015",
    "Freitag, 24. Dezember 1999",
    "the 1st of July 1969",
)
EXAMPLES = {"classifier": CLASSIFIER_EXAMPLES, "seq2seq": DATE_EXAMPLES}


def model_kind(model_id: str) -> str:
    """ "classifier" or "seq2seq"; hf: checkpoints are classifiers."""
    found = REGISTRY.get(model_id)
    return found.kind if found else "classifier"


def _model_id(value: str) -> str:
    if value in REGISTRY or (value.startswith(HF_PREFIX) and hf_models_allowed()):
        return value
    raise ValueError(value)


def _optional_model_id(value: str) -> str:
    return "" if value == "" else _model_id(value)


def positive_int(limit: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value)
        if not 1 <= number <= limit:
            raise ValueError(value)
        return number

    return parse


def number_in(options: tuple[int, ...]) -> Callable[[str], int]:
    """A whole number that must be one of ``options`` (a slider's stops, say)."""

    def parse(value: str) -> int:
        number = int(value)
        if number not in options:
            raise ValueError(value)
        return number

    return parse


def count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


def flag(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError(value)
    return value == "1"


def choice(options: tuple[str, ...] | Callable[[], tuple[str, ...]]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in (options() if callable(options) else options):
            raise ValueError(value)
        return value

    return parse


def url_text(value: str) -> str:
    return value[:URL_TEXT_LIMIT]


def fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(value)
    return number


def parse_heads(value: str) -> frozenset[tuple[int, int]]:
    """``"1:2,3:4"`` (1-based layer:head pairs) -> {(1, 2), (3, 4)}; raises ValueError if malformed."""
    heads = set()
    for part in filter(None, value.split(",")):
        layer, head = (int(n) for n in part.split(":"))
        if layer < 1 or head < 1:
            raise ValueError(value)
        heads.add((layer, head))
    return frozenset(heads)


def format_heads(heads: frozenset[tuple[int, int]]) -> str:
    return ",".join(f"{layer}:{head}" for layer, head in sorted(heads))


def parse_numbers(value: str) -> tuple[int, ...]:
    """``"1,3"`` -> (1, 3): positive, sorted, without repeats; raises ValueError if malformed."""
    numbers = sorted({int(n) for n in filter(None, value.split(","))})
    if numbers and numbers[0] < 1:
        raise ValueError(value)
    return tuple(numbers)


def format_numbers(numbers: tuple[int, ...]) -> str:
    return ",".join(str(n) for n in numbers)


def _view_keys() -> tuple[str, ...]:
    from views import VIEWS  # the views import this module: resolve the list when first needed

    return tuple(view.KEY for view in VIEWS)


@dataclass(frozen=True)
class Field:
    """One piece of page state: its URL name, how to read it, its default, how to write it.

    A view's own fields (its ``FIELDS``) are always per panel; ``fields()`` makes them so.
    """

    name: str
    parse: Callable[[str], Any]
    default: Any
    per_panel: bool = False
    write: Callable[[Any], str] = str

    def key(self, panel: str | None = None) -> str:
        """The URL name and session-state key; a per-panel field must be told its panel.

        The first panel's keys are the plain names (``layer``), the second model's carry its
        prefix (``b.layer``). A per-panel field asked for without a panel would make the two
        panels share one widget, so that raises, as does a panel for a whole-page field.
        """
        if self.per_panel and panel is None:
            raise TypeError(f"{self.name!r} is per panel: say which panel")
        if not self.per_panel and panel is not None:
            raise TypeError(f"{self.name!r} is one field for the whole page, not per panel")
        return f"{panel}.{self.name}" if panel else self.name


def write_flag(value: bool) -> str:
    return "1" if value else "0"


PAGE_FIELDS = (
    Field("model", _model_id, next(iter(REGISTRY))),
    Field("compare", _optional_model_id, ""),
    Field("text", url_text, CLASSIFIER_EXAMPLES[0]),
    Field("view", choice(_view_keys), "heatmap"),
    Field("layer", positive_int(64), 1, per_panel=True),
    Field("head", positive_int(64), 1, per_panel=True),
    Field("scheme", choice(SCHEMES), "colour"),
    # The heatmaps' colour scale (viz.heatmap.SCALES); links from before it read stretch=1.
    Field("scale", choice(SCALES), "auto"),
    Field("words", flag, False, write=write_flag),
    Field("hide_special", flag, False, write=write_flag),
    # Lesson mode, presenter mode, language.
    Field("step", positive_int(20), 1),
    Field("present", flag, False, write=write_flag),
    Field("lang", choice(tuple(LANGUAGES)), "en"),
)


@functools.cache
def fields() -> tuple[Field, ...]:
    """The page's fields, then every view's own (always per panel); one name, one field."""
    from views import VIEWS  # the views import this module: resolve the list when first needed

    found = {field.name: field for field in PAGE_FIELDS}
    for view in VIEWS:
        for field in view.FIELDS:
            field = dataclasses.replace(field, per_panel=True)
            if found.setdefault(field.name, field) != field:
                raise TypeError(f"field {field.name!r} of view {view.KEY!r} clashes with another field of that name")
    return tuple(found.values())


@functools.cache
def field_by_name() -> dict[str, Field]:
    return {field.name: field for field in fields()}


def _keys() -> list[tuple[Field, str]]:
    return [(field, field.key(panel)) for field in fields() for panel in (("", SECOND_PANEL) if field.per_panel else (None,))]


def parse_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Session-state values from URL parameters; bad or missing values become defaults.

    A link that names a model but no text gets that model's first example, so a link to the
    date model never opens on a headline. A link to the date model that names no colours gets the
    paper's: grayscale on the fixed 0..1 scale. A link from before the colour scale had three
    choices keeps its ``stretch=1``.
    """
    values = {}
    for field, key in _keys():
        try:
            values[key] = field.parse(query[key]) if key in query else field.default
        except (ValueError, TypeError):
            values[key] = field.default
    if "text" not in query:
        values["text"] = EXAMPLES[model_kind(values["model"])][0]
    if "scale" not in query and query.get("stretch") == "1":
        values["scale"] = "stretch"
    elif "scale" not in query and model_kind(values["model"]) == "seq2seq":
        values["scale"] = "fixed"  # the paper's figure
    if "scheme" not in query and model_kind(values["model"]) == "seq2seq":
        values["scheme"] = "grayscale"  # the paper's figure
    return values


def to_query(values: Mapping[str, Any]) -> dict[str, str]:
    """URL parameters for session-state ``values``: only what differs from the defaults."""
    query = {}
    for field, key in _keys():
        value = values.get(key, field.default)
        if value == field.default and key != "text":
            continue
        if field.parse is url_text and len(value) > URL_TEXT_LIMIT:
            continue
        query[key] = field.write(value)
    return query


def load() -> None:
    """Call first in every run: the URL into session state once, widget values kept every run."""
    state = st.session_state
    if _LOADED not in state:
        state.update(parse_query(st.query_params.to_dict()))
        state[_LOADED] = True
        return
    # Streamlit forgets a widget's value when a run does not draw it (switching views hides
    # the layer picker); writing the values back makes them plain state that survives.
    for _, key in _keys():
        if key in state:
            state[key] = state[key]


def get(name: str, panel: str | None = None) -> Any:
    field = field_by_name()[name]
    return st.session_state.get(field.key(panel), field.default)


def key(name: str, panel: str | None = None) -> str:
    """The session-state key (and widget key) of field ``name``; ``panel`` for per-panel fields."""
    return field_by_name()[name].key(panel)


def current_query() -> dict[str, str]:
    return to_query({k: st.session_state[k] for _, k in _keys() if k in st.session_state})


def write_url() -> None:
    """Call last in every run: the URL shows the whole visible state, so a link reproduces it."""
    query = current_query()
    if query != st.query_params.to_dict():
        st.query_params.from_dict(query)


def is_long_text() -> bool:
    return len(get("text")) > URL_TEXT_LIMIT


def model_ids() -> list[str]:
    return list(available())
