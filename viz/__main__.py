"""Command line: ``python -m viz render``: the page's figures and data, without the page.

    python -m viz render --model minilm-agnews --text "Stocks rally" --view heatmap --layer 3 --head 4 -o fig.svg

Writes the figure (PNG, SVG, or a self-contained HTML page that works offline) or the matrix
shown (CSV with tokens as header row and first column, or JSON with tokens, weights and where
they came from), so that figures for slides and papers can be scripted over many sentences.
Layers, heads and token positions are 1-based, as on the page. Errors meant for the user (bad
view, layer, head, extension, a view that does not apply to the model) print one line on stderr
and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from models.base import AttentionModel, LensError
from models.contract import Prediction
from models.io import atomic_write, atomic_write_text

VIEWS = ("heatmap", "overview", "headview", "stats", "rollout", "flow", "norms")
FIGURE_FORMATS = ("png", "svg", "html")
DATA_FORMATS = ("json", "csv")
# What each view can write besides its figure: CSV holds one matrix, and the overview (every
# head) and the norms view (four matrices side by side) show several.
DATA_BY_VIEW = {view: DATA_FORMATS for view in VIEWS} | {"overview": ("json",), "norms": ("json",)}


class RenderError(LensError):
    """The command asks for something the view, the model or the format cannot give."""


@dataclass
class Rendered:
    """A view's figure and the matrix it shows (rows × columns, leading axes allowed for JSON)."""

    figure: go.Figure
    weights: np.ndarray
    rows: list[str]
    columns: list[str]
    meta: dict = field(default_factory=dict)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m viz", description="Attention Lens figures without the page")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="write one view of one text to a file")
    render.add_argument("--model", required=True)
    render.add_argument("--text", required=True)
    render.add_argument("--view", required=True, help=" | ".join(VIEWS))
    render.add_argument("--layer", type=int, help="1-based; for rollout and flow: through this layer (default the last)")
    render.add_argument("--head", type=int, help="1-based (headview: show only this head; default all)")
    render.add_argument("--rows", nargs="+", metavar="POSITION", help="rollout/flow: 1-based query positions, or all (default 1, the first token)")
    render.add_argument("--threshold", type=float, help="headview: hide lines below this weight (default: keep the strongest 60,000)")
    render.add_argument("--words", action="store_true", help="merge word pieces into words")
    render.add_argument("--hide-special", action="store_true", help="hide special tokens such as [CLS] and [SEP]")
    render.add_argument("--scheme", default="colour", help="colour | grayscale")
    render.add_argument("--stretch", action="store_true", help="heatmap/rollout: map the largest weight to the top colour")
    render.add_argument("-o", "--output", required=True, type=Path, help="out.png | .svg | .html | .json | .csv")
    return parser


def output_format(path: Path, view: str) -> str:
    """The format named by the output's extension, checked against what ``view`` can write."""
    if view not in VIEWS:
        raise RenderError(f"unknown view {view!r}; choose one of: {', '.join(VIEWS)}")
    fmt = path.suffix.lower().lstrip(".")
    allowed = FIGURE_FORMATS + DATA_BY_VIEW[view]
    if fmt not in FIGURE_FORMATS + DATA_FORMATS:
        raise RenderError(f"cannot write {path.name!r}: the extension must be one of {', '.join('.' + f for f in FIGURE_FORMATS + DATA_FORMATS)}")
    if fmt not in allowed:
        raise RenderError(f"the {view} view cannot be written as {fmt.upper()}: use one of {', '.join('.' + f for f in allowed)}")
    return fmt


def _one_based(value: int | None, count: int, what: str, default: int) -> int:
    """A 1-based layer or head checked against the model, as a 0-based index."""
    if value is None:
        return default
    if not 1 <= value <= count:
        raise RenderError(f"{what} {value} does not exist: this model has {what}s 1-{count}")
    return value - 1


def _visible(attentions: np.ndarray, prediction: Prediction, hide_special: bool) -> tuple[np.ndarray, list[str], list[str]]:
    from models.maths.tokens import without_special

    if not hide_special:
        return attentions, list(prediction.source_tokens), list(prediction.target_tokens)
    kept, source_keep, target_keep = without_special(attentions, prediction.source_special, prediction.target_special)
    if not source_keep or not target_keep:
        raise RenderError("only special tokens are left: drop --hide-special")
    return kept, [prediction.source_tokens[i] for i in source_keep], [prediction.target_tokens[i] for i in target_keep]


def _self_attention_layers(prediction: Prediction, view: str) -> None:
    if prediction.is_seq2seq or prediction.source_tokens != prediction.target_tokens:
        raise RenderError(f"the {view} view composes self-attention across layers; {prediction.model}'s attention is not self-attention")
    if prediction.num_layers < 2:
        raise RenderError(f"the {view} view composes attention across layers; {prediction.model} has a single attention layer (use --view heatmap)")


def _query_rows(positions: Sequence[str] | None, tokens: Sequence[str]) -> list[int]:
    """0-based query rows from ``--rows`` (1-based positions, or "all"); the first token by default."""
    if not positions:
        return [0]
    if [p.lower() for p in positions] == ["all"]:
        return list(range(len(tokens)))
    bad = [p for p in positions if not p.isdigit() or not 1 <= int(p) <= len(tokens)]
    if bad:
        raise RenderError(f"--rows {bad[0]} is not a token position: this text has tokens 1-{len(tokens)} (or write --rows all)")
    return [int(p) - 1 for p in positions]


def _special_columns_hidden(matrix: np.ndarray, prediction: Prediction, hide_special: bool) -> tuple[np.ndarray, list[str]]:
    """Rollout and flow rows over the tokens they reach, without special columns if asked."""
    keep = [j for j, special in enumerate(prediction.source_special) if not (hide_special and special)]
    if not keep:
        raise RenderError("only special tokens are left: drop --hide-special")
    return matrix[:, keep], [prediction.source_tokens[j] for j in keep]


def _heatmap(args, model: AttentionModel, prediction: Prediction) -> Rendered:
    from viz.heatmap import alignment_heatmap

    layer = _one_based(args.layer, prediction.num_layers, "layer", 0)
    head = _one_based(args.head, prediction.num_heads, "head", 0)
    weights, source, target = _visible(prediction.attentions[layer, head], prediction, args.hide_special)
    single = prediction.num_layers * prediction.num_heads == 1
    title = "Alignment" if single else f"Layer {layer + 1}, head {head + 1}"
    axes = dict(source_title="input characters", target_title="output characters") if prediction.is_seq2seq else {}
    figure = alignment_heatmap(weights, source, target, scheme=args.scheme, title=title, stretch=args.stretch, **axes)
    return Rendered(figure, weights, target, source, dict(layer=layer + 1, head=head + 1))


def _overview(args, model: AttentionModel, prediction: Prediction) -> Rendered:
    from viz.overview import overview_image

    selected = None
    if args.layer is not None or args.head is not None:
        selected = (_one_based(args.layer, prediction.num_layers, "layer", 0), _one_based(args.head, prediction.num_heads, "head", 0))
    weights, source, target = _visible(prediction.attentions, prediction, args.hide_special)
    figure = overview_image(weights, scheme=args.scheme, selected=selected)
    return Rendered(figure, weights, target, source, dict(axes=["layer", "head", "row", "column"]))


def _headview(args, model: AttentionModel, prediction: Prediction) -> Rendered:
    from viz.headview import head_view, threshold_for

    layer = _one_based(args.layer, prediction.num_layers, "layer", 0)
    heads = list(range(prediction.num_heads)) if args.head is None else [_one_based(args.head, prediction.num_heads, "head", 0)]
    weights, source, target = _visible(prediction.attentions[layer], prediction, args.hide_special)
    threshold = threshold_for(weights, heads) if args.threshold is None else args.threshold
    figure, hidden = head_view(weights, source, target, heads=heads, threshold=threshold)
    if hidden:
        print(f"{hidden} lines below weight {threshold:.4g} hidden", file=sys.stderr)
    meta = dict(layer=layer + 1, heads=[h + 1 for h in heads], threshold=threshold, lines_hidden=hidden, weights_are="mean of the shown heads")
    # As on the page: the data behind the lines is the shown heads' mean attention.
    return Rendered(figure, weights[heads].mean(axis=0), target, source, meta)


def _stats(args, model: AttentionModel, prediction: Prediction) -> Rendered:
    from models.maths.head_stats import STATISTICS, head_statistics
    from viz.stats import stat_heatmaps

    selected = None
    if args.layer is not None or args.head is not None:
        selected = (_one_based(args.layer, prediction.num_layers, "layer", 0), _one_based(args.head, prediction.num_heads, "head", 0))
    self_attention = not prediction.is_seq2seq and prediction.source_tokens == prediction.target_tokens
    stats = head_statistics(prediction.attentions, prediction.source_special, prediction.target_special, self_attention=self_attention)
    titles = {key: STATISTICS[key][0] if key in STATISTICS else key for key in stats}
    figure = stat_heatmaps(stats, titles, selected=selected, scheme=args.scheme)
    layers, heads = prediction.num_layers, prediction.num_heads
    table = np.stack([np.asarray(values, dtype=float).reshape(layers * heads) for values in stats.values()], axis=1)
    rows = [f"L{layer + 1} H{head + 1}" for layer in range(layers) for head in range(heads)]
    return Rendered(figure, table, rows, list(stats), dict(how_to_read={key: STATISTICS[key][1] for key in stats if key in STATISTICS}))


def _rollout(args, model: AttentionModel, prediction: Prediction) -> Rendered:
    from models.maths.rollout import attention_rollout
    from viz.heatmap import alignment_heatmap

    _self_attention_layers(prediction, "rollout")
    layer = _one_based(args.layer, prediction.num_layers, "layer", prediction.num_layers - 1)
    rows = _query_rows(args.rows, prediction.target_tokens)
    weights, columns = _special_columns_hidden(attention_rollout(prediction.attentions)[layer][rows], prediction, args.hide_special)
    row_tokens = [prediction.target_tokens[r] for r in rows]
    title = f"Rollout through layers 1-{layer + 1}"
    figure = alignment_heatmap(weights, columns, row_tokens, scheme=args.scheme, title=title, stretch=args.stretch, target_title="query")
    return Rendered(figure, weights, row_tokens, columns, dict(layer=layer + 1, rows=[r + 1 for r in rows]))


def _print_progress(done: int, total: int) -> None:
    if total >= 200 and (done == total or done % max(1, total // 10) == 0):
        print(f"flow: {done}/{total} maximum flows", file=sys.stderr)


def _flow(args, model: AttentionModel, prediction: Prediction) -> Rendered:
    from scipy.stats import spearmanr

    from models.maths.flow import attention_flow
    from models.maths.rollout import attention_rollout
    from viz.heatmap import Panel, heatmap_panels

    _self_attention_layers(prediction, "flow")
    layer = _one_based(args.layer, prediction.num_layers, "layer", prediction.num_layers - 1)
    rows = _query_rows(args.rows, prediction.target_tokens)
    flows = attention_flow(prediction.attentions, rows, layer + 1, progress=_print_progress)
    flows, columns = _special_columns_hidden(np.asarray(flows), prediction, args.hide_special)
    rolled, _ = _special_columns_hidden(attention_rollout(prediction.attentions)[layer][rows], prediction, args.hide_special)
    row_tokens = [prediction.target_tokens[r] for r in rows]
    rho = float(spearmanr(rolled.ravel(), flows.ravel()).statistic) if flows.size > 1 else float("nan")
    panels = [
        Panel("rollout", rolled, columns, row_tokens, stretch=True),
        Panel("attention flow", flows, columns, row_tokens, stretch=True, value_title="flow"),
    ]
    title = f"Rollout and flow through layer {layer + 1} (Spearman ρ = {rho:.2f})"
    figure = heatmap_panels(panels, scheme=args.scheme, stacked=True, title=title, target_title="query")
    meta = dict(layer=layer + 1, rows=[r + 1 for r in rows], spearman=None if np.isnan(rho) else rho, rollout=rolled.round(7).tolist())
    return Rendered(figure, flows, row_tokens, columns, meta)


def _norms(args, model: AttentionModel, prediction: Prediction) -> Rendered:
    from models.maths.tokens import merge_subwords, word_groups
    from models.value_aware import supports_value_aware, value_aware
    from viz.heatmap import Panel, heatmap_panels

    reason = supports_value_aware(model)
    if reason is not None:
        raise RenderError(f"the norms view does not apply to {prediction.model}: {reason}")
    layer = _one_based(args.layer, prediction.num_layers, "layer", 0)
    head = _one_based(args.head, prediction.num_heads, "head", 0)
    found = value_aware(model, args.text)
    raw = model.predict(args.text)  # the word-piece prediction, whose axes the rebuilt norms share
    matrices = {
        "weights": raw.attentions[layer, head],
        "head_norm": found.head_norms[layer, head],
        "layer_norm": found.layer_norms[layer],
        "alti": found.alti_rollout[layer],
    }
    if args.words:
        rows = word_groups(raw.target_tokens, raw.target_special, model.subword_scheme)
        columns = word_groups(raw.source_tokens, raw.source_special, model.subword_scheme)
        matrices = {name: merge_subwords(matrix, rows, columns) for name, matrix in matrices.items()}
    shown = {}
    for name, matrix in matrices.items():
        shown[name], source, target = _visible(np.asarray(matrix), prediction, args.hide_special)
    panels = [
        Panel(f"Attention weights, head {head + 1}", shown["weights"], source, target, stretch=args.stretch),
        Panel(f"Attention norm, head {head + 1}", shown["head_norm"], source, target, stretch=True, value_title="norm"),
        Panel("Attention norm, all heads", shown["layer_norm"], source, target, stretch=True, value_title="norm"),
        Panel(f"ALTI through layer {layer + 1}", shown["alti"], source, target, stretch=True, value_title="share"),
    ]
    figure = heatmap_panels(panels, scheme=args.scheme, title=f"Layer {layer + 1}")
    meta = dict(layer=layer + 1, head=head + 1, matrices=list(shown), reconstruction_error=float(found.reconstruction_error))
    return Rendered(figure, np.stack(list(shown.values())), target, source, meta)


RENDERERS: dict[str, Callable[..., Rendered]] = {
    "heatmap": _heatmap,
    "overview": _overview,
    "headview": _headview,
    "stats": _stats,
    "rollout": _rollout,
    "flow": _flow,
    "norms": _norms,
}


def _write(rendered: Rendered, fmt: str, path: Path, meta: dict) -> None:
    from viz.export import figure_png, figure_svg, matrix_csv, matrix_json

    if fmt == "png":
        image = figure_png(rendered.figure)
        atomic_write(path, lambda tmp: tmp.write_bytes(image))
    elif fmt == "svg":
        image = figure_svg(rendered.figure)
        atomic_write(path, lambda tmp: tmp.write_bytes(image))
    elif fmt == "html":
        atomic_write_text(path, rendered.figure.to_html(include_plotlyjs=True, full_html=True))
    elif fmt == "csv":
        atomic_write_text(path, matrix_csv(rendered.weights, rendered.rows, rendered.columns))
    else:
        atomic_write_text(path, matrix_json(rendered.weights, rendered.rows, rendered.columns, **meta, **rendered.meta))


def render(args: argparse.Namespace) -> Path:
    from models import registry
    from models.maths.tokens import merge_prediction

    fmt = output_format(args.output, args.view)
    if args.scheme not in ("colour", "grayscale"):
        raise RenderError(f"unknown colour scheme {args.scheme!r}; choose colour or grayscale")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise RenderError(f"--threshold {args.threshold} is not a weight: choose one from 0 to 1")
    model = registry.load(args.model)
    prediction = model.predict(args.text)
    if args.words:
        prediction = merge_prediction(prediction, model.subword_scheme)
    rendered = RENDERERS[args.view](args, model, prediction)
    _write(rendered, fmt, args.output, dict(model=args.model, view=args.view, text=args.text, words=args.words, hide_special=args.hide_special))
    return args.output


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        written = render(args)
    except LensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
