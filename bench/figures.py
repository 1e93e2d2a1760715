"""Figure budgets: build and serialise time, and bytes sent to the browser, per view and length.

Run ``python bench/figures.py`` (``--quick`` skips the real model and the 512-token flow); it
prints a table and writes bench/results/figures.json. Bytes are ``plotly.io.to_json(figure,
validate=False)``, exactly what ``st.plotly_chart`` sends; ``figure.to_json()`` is recorded too.
Each figure is built from MiniLM-shaped attention (6 layers × 12 heads, rows summing to 1) at
16 to 512 tokens, and, unless ``--quick``, from the real minilm-agnews on a text of that length.
The maths behind a view (rollout, statistics, flow, value-aware norms, the qkv view's steps, the
layers view's probes) is timed on its own line, since the page caches it across reruns while
figures are rebuilt on every one; the qkv view's data is timed for a new text (its forward pass)
and for the next head or query of the same text (the pass kept), which is what a widget change
costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from bench.server import app_state, machine
from models.io import atomic_write_json
from models.maths.flow import attention_flow
from models.maths.head_stats import STATISTICS, head_statistics
from models.maths.rollout import attention_rollout
from viz.headview import head_view, threshold_for
from viz.heatmap import Panel, alignment_heatmap, heatmap_panels
from viz.overview import overview_image
from viz.qkv import Step, computation_figure
from viz.stats import stat_heatmaps
from viz.strip import token_strips

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "figures.json"
LENGTHS = (16, 64, 128, 256, 512)
LAYERS, HEADS = 6, 12
MB = 1024 * 1024
# (view, tokens) -> (seconds to build and serialise, bytes); "*" applies at every length up to the one named.
BUDGETS = {
    ("heatmap", 512): (0.3, 1.5 * MB),
    ("overview", 512): (1.0, 5 * MB),
    ("every view", 512): (1.0, 5 * MB),
    ("flow maths", 128): (1.0, None),
    ("flow maths", 512): (30.0, None),
    ("flow", 512): (1.0, 1 * MB),
    # One widget change of the qkv view: its data for another head or query, then its figure.
    ("qkv maths", 512): (0.3, None),
    ("qkv", 512): (0.3, 1.5 * MB),
    # The layers view has no widget of its own: a change elsewhere (layer, head, scale) redraws its
    # figure from the cached probe outputs.
    ("layers", 512): (0.3, 1.5 * MB),
}
WORDS = ("the", "market", "##s", "said", "government", "announced", "investors", "record", "high", "oil", "prices", "climb")


def minilm_like(tokens: int, seed: int = 0) -> np.ndarray:
    """(6, 12, T, T) float32 attention with MiniLM-like peakiness: softmax of N(0, 2.5²) logits."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.5, size=(LAYERS, HEADS, tokens, tokens)).astype(np.float32)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def tokens_like(count: int) -> tuple[list[str], list[bool]]:
    tokens = ["[CLS]", *(WORDS[i % len(WORDS)] for i in range(count - 2)), "[SEP]"][:count]
    return tokens, [t in ("[CLS]", "[SEP]") for t in tokens]


def measure(build: Callable[[], go.Figure], repeats: int) -> dict:
    """Median build and serialise milliseconds over ``repeats`` runs, and the bytes sent."""
    build_ms, serialise_ms = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        figure = build()
        built = time.perf_counter()
        sent = pio.to_json(figure, validate=False)
        done = time.perf_counter()
        build_ms.append((built - start) * 1000)
        serialise_ms.append((done - built) * 1000)
    return {
        "build_ms": round(statistics.median(build_ms), 1),
        "serialise_ms": round(statistics.median(serialise_ms), 1),
        "total_ms": round(statistics.median(b + s for b, s in zip(build_ms, serialise_ms)), 1),
        "bytes": len(sent.encode()),
        "bytes_figure_to_json": len(figure.to_json().encode()),
    }


def timed(compute: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = compute()
    return result, round((time.perf_counter() - start) * 1000, 1)


def figures_of(attentions: np.ndarray, tokens: list[str], special: list[bool], *, flow_max_tokens: int) -> tuple[dict, dict]:
    """The page's figures over one text's attention: {view: build()} and {maths: milliseconds}."""
    rolled, rollout_ms = timed(lambda: attention_rollout(attentions))
    stats, stats_ms = timed(lambda: head_statistics(attentions, special, special, self_attention=True))
    maths = {"rollout maths": rollout_ms, "stats maths": stats_ms}
    if len(tokens) <= flow_max_tokens:
        flows, maths["flow maths"] = timed(lambda: attention_flow(attentions, [0]))
    else:
        flows = rolled[-1][:1]  # the figure's cost does not depend on the values
    titles = {key: STATISTICS[key][0] for key in stats}
    rng = np.random.default_rng(1)
    norms = rng.random((4, len(tokens), len(tokens)), dtype=np.float32)
    qkv_steps = qkv_like(attentions[2, 3, 1], rng)
    builds = {
        "heatmap": lambda: alignment_heatmap(attentions[2, 3], tokens, tokens, title="Layer 3, head 4"),
        "overview": lambda: overview_image(attentions, selected=(2, 3)),
        "headview": lambda: head_view(attentions[2], tokens, tokens, threshold=threshold_for(attentions[2]))[0],
        "stats": lambda: stat_heatmaps(stats, titles, selected=(2, 3)),
        "rollout": lambda: alignment_heatmap(rolled[-1], tokens, tokens, title="Rollout through layers 1-6"),
        "flow": lambda: heatmap_panels(
            [Panel("Rollout", rolled[-1][:1], tokens, tokens[:1], scale="stretch"), Panel("Flow", flows, tokens, tokens[:1], scale="stretch")], stacked=True
        ),
        "norms": lambda: heatmap_panels([Panel(name, matrix, tokens, tokens, scale="stretch") for name, matrix in zip("ABCD", norms)], title="Layer 3"),
        "compare": lambda: heatmap_panels(
            [
                Panel("First text", attentions[2, 3], tokens, tokens),
                Panel("Second text", attentions[2, 4], tokens, tokens),
                Panel("First minus second", attentions[2, 3] - attentions[2, 4], tokens, tokens, signed=True),
            ]
        ),
        "strips": lambda: token_strips({"attention": attentions[-1, :, 0].mean(axis=0), "rollout": rolled[-1][0]}, tokens, signed=False),
        "qkv": lambda: computation_figure(qkv_steps, tokens, title="Layer 3, head 4", highlight=1),
    }
    return builds, maths


def qkv_like(weights: np.ndarray, rng: np.random.Generator, size: int = 32) -> list[Step]:
    """The qkv view's five steps for one query over every token, MiniLM-sized (32 dimensions per head)."""
    tokens = len(weights)
    keys, values, query = rng.normal(size=(size, tokens)), rng.normal(size=(size, tokens)), rng.normal(size=size)
    return [
        Step("Keys", keys, "k", query, "q"),
        Step("q ∘ k", keys * query[:, None], "q ∘ k"),
        Step("Scores", (keys * query[:, None]).sum(axis=0) / np.sqrt(size), "score"),
        Step("Weights", weights, "weight", what_if=np.full(tokens, 1 / tokens), what_if_name="what if", labelled=True),
        Step("Values", values, "v", values @ weights, "out"),
    ]


def within(view: str, tokens: int, seconds: float, size: int | None) -> bool | None:
    """Whether a measure meets its budget (None when no budget applies)."""
    budget = BUDGETS.get((view, tokens)) or (BUDGETS.get(("every view", tokens)) if not view.endswith("maths") else None)
    if budget is None:
        return None
    max_seconds, max_bytes = budget
    return seconds <= max_seconds and (max_bytes is None or size is None or size <= max_bytes)


def synthetic(repeats: int, flow_max_tokens: int) -> list[dict]:
    rows = []
    for n in LENGTHS:
        tokens, special = tokens_like(n)
        builds, maths = figures_of(minilm_like(n), tokens, special, flow_max_tokens=flow_max_tokens)
        for view, build in builds.items():
            result = measure(build, repeats)
            rows.append(
                {"data": "synthetic", "tokens": n, "view": view, **result, "within_budget": within(view, n, result["total_ms"] / 1000, result["bytes"])}
            )
        for name, ms in maths.items():
            rows.append({"data": "synthetic", "tokens": n, "view": name, "total_ms": ms, "within_budget": within(name, n, ms / 1000, None)})
        print(f"synthetic {n} tokens measured", file=sys.stderr)
    return rows


def real_model(repeats: int, lengths: tuple[int, ...]) -> list[dict]:
    """The same figures from minilm-agnews's own attention, plus value-aware norms, which need the model."""
    from bench.latency import text_of_length
    from models import registry
    from models.value_aware import value_aware
    from views import layers, qkv
    from views.spec import Settings, Style, Subject

    model = registry.load("minilm-agnews")
    rows = []
    for n in lengths:
        text, actual = text_of_length(model, n)
        prediction = model.predict(text)
        tokens, special = list(prediction.source_tokens), list(prediction.source_special)
        builds, maths = figures_of(prediction.attentions, tokens, special, flow_max_tokens=128)
        found, maths["norms maths"] = timed(lambda text=text: value_aware(model, text))
        subject = Subject("minilm-agnews", model, text, prediction)
        settings = Settings.of({"query": 2, "temperature": 1.0}, layer=3, head=4)
        qkv_data, maths["qkv forward maths"] = timed(lambda subject=subject, settings=settings: qkv.data(subject, settings))
        _, maths["qkv maths"] = timed(lambda subject=subject, settings=settings: qkv.data(subject, dataclasses.replace(settings, head=5)))
        builds["qkv"] = lambda d=qkv_data, settings=settings: qkv.figure(d, settings, Style())
        layers_data, maths["layers forward maths"] = timed(lambda subject=subject, settings=settings: layers.data(subject, settings))
        builds["layers"] = lambda d=layers_data, settings=settings: layers.figure(d, settings, Style())
        builds["norms"] = lambda found=found, tokens=tokens, prediction=prediction: heatmap_panels(
            [
                Panel("Attention weights, head 4", prediction.attentions[2, 3], tokens, tokens),
                Panel("Attention norm, head 4", found.head_norms[2, 3], tokens, tokens, scale="stretch", value_title="norm"),
                Panel("Attention norm, all heads", found.layer_norms[2], tokens, tokens, scale="stretch", value_title="norm"),
                Panel("ALTI through layer 3", found.alti_rollout[2], tokens, tokens, scale="stretch", value_title="share"),
            ],
            title="Layer 3",
        )
        for view, build in builds.items():
            result = measure(build, repeats)
            rows.append(
                {
                    "data": "minilm-agnews",
                    "tokens": actual,
                    "view": view,
                    **result,
                    "within_budget": within(view, actual, result["total_ms"] / 1000, result["bytes"]),
                }
            )
        for name, ms in maths.items():
            rows.append({"data": "minilm-agnews", "tokens": actual, "view": name, "total_ms": ms, "within_budget": within(name, actual, ms / 1000, None)})
        print(f"minilm-agnews {actual} tokens measured", file=sys.stderr)
    return rows


def export_times(repeats: int) -> list[dict]:
    """PNG and SVG through kaleido and chromium, after the browser's one-off start."""
    from viz.export import figure_png, figure_svg

    tokens, _ = tokens_like(64)
    figure = alignment_heatmap(minilm_like(64)[0, 0], tokens, tokens)
    _, start_ms = timed(lambda: figure_png(figure))
    rows = [{"data": "synthetic", "tokens": 64, "view": "export: first PNG (starts chromium)", "total_ms": start_ms}]
    for name, export in (("PNG", figure_png), ("SVG", figure_svg)):
        timings = [timed(lambda export=export: export(figure))[1] for _ in range(repeats)]
        rows.append({"data": "synthetic", "tokens": 64, "view": f"export: heatmap {name}", "total_ms": statistics.median(timings)})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'data':14s} {'tokens':>6s} {'view':38s} {'build ms':>9s} {'total ms':>9s} {'MB':>7s}  budget")
    for row in rows:
        size = f"{row['bytes'] / MB:7.2f}" if "bytes" in row else " " * 7
        build = f"{row['build_ms']:9.1f}" if "build_ms" in row else " " * 9
        verdict = {True: "ok", False: "OVER", None: ""}[row.get("within_budget")]
        print(f"{row['data']:14s} {row['tokens']:6d} {row['view']:38s} {build} {row['total_ms']:9.1f} {size}  {verdict}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="synthetic attention only, flow maths up to 256 tokens, no export")
    args = parser.parse_args(argv)
    rows = synthetic(args.repeats, flow_max_tokens=256 if args.quick else 512)
    if not args.quick:
        rows += real_model(args.repeats, (64, 512))
        rows += export_times(args.repeats)
    print_table(rows)
    report = {
        "results": rows,
        "budgets": {f"{view} @ {tokens}": {"seconds": s, "bytes": b} for (view, tokens), (s, b) in BUDGETS.items()},
        "bytes_are": "len(plotly.io.to_json(figure, validate=False)), what st.plotly_chart sends; MB = 2**20 bytes",
        "timestamp": dt.datetime.now().isoformat(timespec="seconds"),
        "app": app_state("viz", "bench/figures.py"),
        **machine(),
    }
    atomic_write_json(RESULTS, report)
    print(f"wrote {RESULTS}")
    return report


if __name__ == "__main__":
    main()
