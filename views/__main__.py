"""Command line: ``python -m views render``: any view's figure and data, without the page.

    python -m views render --model minilm-agnews --text "Stocks rally" --view heatmap --layer 3 --head 4 -o fig.svg
    python -m views render --model minilm-agnews --text "Stocks rally" --view flow --words --query 2 -o flow.json

Writes the figure (PNG, SVG, or a self-contained HTML page that works offline) or the data
behind it (JSON with every table the view exports: tokens, weights and where they came from;
CSV when the view exports a single matrix), so that figures for slides and papers can be
scripted over many sentences.

Each view is drawn by its own ``data``, ``figure`` and ``rows`` (``views/spec.py``), called as
the page calls them, so a file holds what the page shows for the same settings. Nothing here
knows any view: the views come from ``views.VIEWS``, and each view's own fields (``FIELDS``) are
options of the same name (``--query 2``), read as the page reads them from a link. Settings left
out take the page's defaults (a link that does not name them); layers, heads and token positions
are 1-based, as on the page. The lesson has no figure of its own (each step is drawn by another
view; the lesson's file for the class is its handout), so it is not offered here.

Errors meant for the user (bad view, option, value, layer, head or extension, a view that does
not apply to the model, a model that cannot be loaded) print one line on stderr and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import numpy as np
import plotly.graph_objects as go

import models
from models.base import LensError
from models.io import atomic_write, atomic_write_text
from models.maths.tokens import merge_prediction
from views import BY_KEY, VIEWS, state
from views.spec import Settings, Style, Subject, Table, for_data
from viz.export import ExportError
from viz.heatmap import SCALES

FIGURE_FORMATS = ("png", "svg", "html")
DATA_FORMATS = ("json", "csv")
# Importing Streamlit makes its own theme Plotly's default, and that theme leaves no margin for
# tick labels outside the page; files get Plotly's plain white one, as the lesson's handout does.
STANDALONE_TEMPLATE = "plotly_white"


class RenderError(LensError):
    """The command asks for something the view, the model or the format cannot give."""


def renderable(view: ModuleType) -> bool:
    """Every view but one that takes the whole page (the lesson: ``views/spec.py``)."""
    return not getattr(view, "WHOLE_PAGE", False)


def _renderable_keys() -> list[str]:
    return [view.KEY for view in VIEWS if renderable(view)]


def _view_fields() -> dict[str, state.Field]:
    """Every view's own field once: ``views.state`` makes sure one name is one field."""
    return {field.name: field for view in VIEWS for field in view.FIELDS}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _default(field: state.Field) -> str:
    return field.write(field.default) or "none"


def _field_dest(name: str) -> str:
    return f"field.{name}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the whole usage before the error: one line is what the user needs.
        raise RenderError(f"{message} (see python -m views render --help)")


def parser() -> argparse.ArgumentParser:
    command = _Parser(prog="python -m views", description="Attention Lens figures and data without the page")
    commands = command.add_subparsers(dest="command", required=True, parser_class=_Parser)
    render = commands.add_parser("render", help="write one view of one text to a file")
    render.add_argument("--model", required=True, help="a model id (python -m models list)")
    render.add_argument("--text", required=True)
    render.add_argument("--view", required=True, help=" | ".join(_renderable_keys()))
    for name in ("layer", "head"):
        render.add_argument(f"--{name}", type=int, help=f"1-based (default: the page's, {state.field_by_name()[name].default})")
    render.add_argument("--words", action="store_true", help="merge word pieces into words")
    render.add_argument("--hide-special", action="store_true", help="hide special tokens such as [CLS] and [SEP]")
    render.add_argument("--scheme", choices=state.SCHEMES, help="default: the page's (grayscale for the date model, as in the paper)")
    render.add_argument(
        "--scale",
        choices=SCALES,
        help="heatmap colours: auto stretches a matrix whose largest weight is under 0.3, fixed is 0..1, stretch is 0..max "
        "(default: the page's, auto; fixed for the date model, as in the paper)",
    )
    render.add_argument("--stretch", action="store_const", const="stretch", dest="scale", help="the same as --scale stretch")
    own = render.add_argument_group("the views' own options (as in a link to the page)")
    for name, field in _view_fields().items():
        users = ", ".join(view.KEY for view in VIEWS if field in view.FIELDS)
        own.add_argument(_option(name), dest=_field_dest(name), metavar="VALUE", help=f"{users} (default: {_default(field)})")
    render.add_argument("-o", "--output", required=True, type=Path, help="out.png | .svg | .html | .json | .csv")
    return command


def chosen_view(key: str) -> ModuleType:
    found = BY_KEY.get(key)
    if found is None:
        raise RenderError(f"unknown view {key!r}; choose one of: {', '.join(_renderable_keys())}")
    if not renderable(found):
        raise RenderError(f"the {key} view has no figure of its own to write; choose one of: {', '.join(_renderable_keys())}")
    return found


def output_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS + DATA_FORMATS:
        raise RenderError(f"cannot write {path.name!r}: the extension must be one of {', '.join('.' + f for f in FIGURE_FORMATS + DATA_FORMATS)}")
    return fmt


def field_values(view: ModuleType, given: Mapping[str, str | None]) -> dict[str, Any]:
    """The view's own fields: the values given on the command line read as a link's, else the defaults."""
    mine = {field.name for field in view.FIELDS}
    stray = [name for name, value in given.items() if value is not None and name not in mine]
    if stray:
        offered = ", ".join(_option(field.name) for field in view.FIELDS) or "none"
        raise RenderError(f"the {view.KEY} view has no {_option(stray[0])} option (its own options: {offered})")
    values = {}
    for field in view.FIELDS:
        text = given.get(field.name)
        try:
            values[field.name] = field.default if text is None else field.parse(text)
        except (ValueError, TypeError):
            raise RenderError(f"{_option(field.name)} {text!r} is not a value the {view.KEY} view takes (its default: {_default(field)})") from None
    return values


def one_based(value: int | None, count: int, what: str) -> int:
    """A 1-based layer or head checked against the model; left out, the page's default."""
    if value is None:
        return min(state.field_by_name()[what].default, count)
    if not 1 <= value <= count:
        raise RenderError(f"{what} {value} does not exist: this model has {what}s 1-{count}")
    return value


def print_progress(view: ModuleType) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if total >= 10 and (done == total or done % max(1, total // 10) == 0):
            print(f"{view.KEY}: {done}/{total}", file=sys.stderr)

    return report


def view_data(view: ModuleType, subject: Subject, settings: Settings) -> Any:
    """``view.data`` with the settings it depends on, as the page calls it; long ones report progress."""
    extra = {"progress": print_progress(view)} if "progress" in inspect.signature(view.data).parameters else {}
    return view.data(subject, for_data(view, settings), **extra)


def plain(value: Any) -> Any:
    """``value`` as JSON holds it: numpy numbers and arrays as Python ones, sets as sorted lists, NaN as null."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [plain(v) for v in sorted(value)]
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return plain(value.tolist())
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def data_json(tables: Mapping[str, Table], **meta: Any) -> str:
    from viz.export import matrix_record

    record = {**meta, "tables": {name: matrix_record(t.weights, t.rows, t.columns, **t.meta) for name, t in tables.items()}}
    return json.dumps(plain(record), ensure_ascii=False)


def write(path: Path, fmt: str, figure: go.Figure | None, tables: Mapping[str, Table], meta: Mapping[str, Any]) -> None:
    from viz.export import figure_png, figure_svg, matrix_csv

    if fmt in ("png", "svg"):
        image = (figure_png if fmt == "png" else figure_svg)(figure)
        atomic_write(path, lambda tmp: tmp.write_bytes(image))
    elif fmt == "html":
        atomic_write_text(path, figure.to_html(include_plotlyjs=True, full_html=True))
    elif fmt == "json":
        atomic_write_text(path, data_json(tables, **meta))
    else:
        (table,) = tables.values()
        atomic_write_text(path, matrix_csv(table.weights, table.rows, table.columns))


def check_csv(view: ModuleType, tables: Mapping[str, Table]) -> None:
    if len(tables) != 1:
        raise RenderError(f"the {view.KEY} view exports {len(tables)} tables ({', '.join(tables)}) and CSV holds one: write .json")
    (table,) = tables.values()
    if np.ndim(table.weights) != 2:
        raise RenderError(f"the {view.KEY} view exports a table with {np.ndim(table.weights)} axes and CSV holds one matrix: write .json")


def check_not_empty(view: ModuleType, tables: Mapping[str, Table], hide_special: bool) -> None:
    if any(np.size(table.weights) == 0 for table in tables.values()):
        hint = ": only special tokens are left, drop --hide-special" if hide_special else ""
        raise RenderError(f"the {view.KEY} view has nothing to show for this text{hint}")


def render(args: argparse.Namespace) -> Path:
    view = chosen_view(args.view)
    fmt = output_format(args.output)
    fields = field_values(view, {name: getattr(args, _field_dest(name)) for name in _view_fields()})
    model = models.load(args.model)
    prediction = model.predict(args.text)
    shown = merge_prediction(prediction, model.subword_scheme) if args.words else prediction
    applies, reason = view.applies(shown, model)
    if not applies:
        raise RenderError(f"the {view.KEY} view does not apply to {args.model}: {reason}")
    settings = Settings.of(
        fields,
        layer=one_based(args.layer, shown.num_layers, "layer"),
        head=one_based(args.head, shown.num_heads, "head"),
        words=args.words,
        hide_special=args.hide_special,
    )
    d = view_data(view, Subject(args.model, model, args.text, prediction), settings)
    tables = view.rows(d)
    check_not_empty(view, tables, args.hide_special)
    if fmt == "csv":
        check_csv(view, tables)
    figure = None
    if fmt in FIGURE_FORMATS:
        page = state.parse_query({"model": args.model})
        figure = view.figure(d, settings, Style(scheme=args.scheme or page["scheme"], scale=args.scale or page["scale"]))
        figure.update_layout(template=STANDALONE_TEMPLATE)
    meta = dict(
        model=args.model,
        text=args.text,
        view=view.KEY,
        settings=dict(layer=settings.layer, head=settings.head, words=settings.words, hide_special=settings.hide_special, **fields),
    )
    record = getattr(view, "record", None)
    if record is not None:
        meta |= record(d)
    write(args.output, fmt, figure, tables, meta)
    return args.output


def main(argv: list[str] | None = None) -> int:
    try:
        written = render(parser().parse_args(argv))
    except (LensError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
