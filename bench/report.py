"""Markdown tables for the README from bench/results/*.json.

    python bench/report.py            # prints the tables
    python bench/report.py --results some/other/folder

Every row says when it was measured and which commit was served, so a table pasted into the
README cannot pass an old figure off as a new one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_ORDER = ("keras-transformer", "bahdanau-rnn", "bahdanau-dates", "minilm-agnews", "all")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def megabytes(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MB"


def provenance(result: dict) -> str:
    """``2026-11-28, 024c667`` (with a + when the working tree had uncommitted changes)."""
    app = result.get("app", {})
    commit = app.get("commit", "")[:7] + ("+" if app.get("uncommitted_changes") else "")
    return ", ".join(part for part in (result.get("timestamp", "")[:10], commit) if part)


def model_key(result: dict) -> int:
    model = result.get("model", "")
    return MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)


def load_table(results: list[dict]) -> str:
    rows = [
        [
            f"`{result['model']}`" + (" cold" if result.get("cold") else ""),
            f"{result['sessions']} × {result['texts']}",
            f"{result['runs_per_second']:.2f}",
            seconds(result.get("p50_s")),
            seconds(result.get("p95_s")),
            seconds(result.get("max_s")),
            str(result["tracebacks"]),
            str(result["leaks"]),
            str(result["timeouts"]),
            megabytes(result.get("peak_rss_mb")),
            seconds(result.get("server_cpu_seconds_per_run")),
            f"{result['load_average_1min']['before']:.1f}" if "load_average_1min" in result else "—",
            provenance(result),
        ]
        for result in sorted(results, key=model_key)
    ]
    header = [
        "model",
        "sessions × texts",
        "page runs/s",
        "p50",
        "p95",
        "max",
        "tracebacks",
        "leaks",
        "timeouts",
        "peak server RSS",
        "server CPU per run",
        "load before",
        "measured",
    ]
    note = (
        "Protocol-level load test (`bench/load_test.py`): every session opens the page and then submits its texts back "
        "to back; latency is request → `script_finished`, over all page runs. Leaks: sessions whose page showed another session's text. "
        "*cold*: no warm-up, the first requests load the model. Server CPU per run hardly depends on other work on the machine; "
        "the latencies do, so the 1-minute load average before the run is given."
    )
    return f"{note}\n\n{table(header, rows)}"


def soak_table(results: list[dict]) -> str:
    rows = []
    for result in sorted(results, key=lambda result: (model_key(result), result.get("long", False))):
        memory = result.get("rss_mb", {})
        rows.append(
            [
                f"`{result['model']}`" + (", 600-word texts" if result.get("long") else ""),
                f"{result['sessions']} × {result['texts']}",
                f"{result['runs_per_second']:.2f}",
                seconds(result.get("p95_s")),
                " / ".join(megabytes(memory.get(point)) for point in ("start", "middle", "end", "after_close")),
                megabytes(result.get("peak_rss_mb")),
                str(result["tracebacks"]),
                str(result["leaks"]),
                provenance(result),
            ]
        )
    header = ["model", "sessions × texts", "page runs/s", "p95", "server RSS start / middle / end / after close", "peak", "tracebacks", "leaks", "measured"]
    return table(header, rows)


def browser_tables(result: dict) -> str:
    submit = result.get("submit_to_chart", {})
    rows = [
        [
            f"`{model}`",
            milliseconds(figures.get("p50_ms")),
            milliseconds(figures.get("p95_ms")),
            str(figures.get("n", 0)),
            str(len(figures.get("failures", []))),
            str(len(figures.get("tracebacks", []))),
        ]
        for model, figures in sorted(submit.items(), key=lambda item: MODEL_ORDER.index(item[0]) if item[0] in MODEL_ORDER else len(MODEL_ORDER))
    ]
    load = result.get("load_average_1min", {}).get("before")
    load_note = f" (1-minute load average {load:.1f} before)" if load is not None else ""
    parts = [
        f"Headless Chromium {result.get('chromium', '')} (`bench/browser.py`), measured {provenance(result)}{load_note}: Ctrl+Enter in the "
        "text area → the heatmap shows the new text's token (the date model: its output changed) and the run is over.",
        table(["model", "submit → chart p50", "p95", "runs", "failed", "tracebacks"], rows),
    ]
    cold = result.get("cold_start", {})
    if cold:
        cold_rows = [[f"`{model}`", seconds(figures["first_chart_s"]), seconds(figures["server_healthy_s"])] for model, figures in cold.items()]
        parts.append(table(["model", "cold start → first chart", "of which server start"], cold_rows))
    memory = result.get("peak_rss_mb_models_loaded")
    if memory:
        parts.append(f"Peak server memory with {', '.join(memory['models'])} loaded: {megabytes(memory['mb'])}.")
    return "\n\n".join(parts)


def latency_table(result: dict) -> str:
    rows = [
        [f"`{model}`", str(row["tokens"]), f"{row['median_ms']:.1f} ms"]
        for model, model_rows in result.get("results", {}).items()
        if isinstance(model_rows, list)
        for row in model_rows
    ]
    return f"Median `predict()` latency, in process (`bench/latency.py`), measured {result.get('measured', '')[:10]}:\n\n" + table(
        ["model", "tokens", "median"], rows
    )


def views_table(result: dict) -> str:
    rows = [
        [f"`{row['view']}`", seconds(row["median_s"]), seconds(row["max_s"]), "—" if row["budget_s"] is None else f"≤ {row['budget_s']:.0f} s"]
        for row in result.get("results", [])
    ]
    load = result.get("load_average_1min")
    note = (
        f"A whole page run for a text the page has not seen (`bench/views.py`, Streamlit's AppTest: the page script without the browser), "
        f"`{result.get('model')}` at {result.get('tokens')} tokens, measured {result.get('timestamp', '')[:10]}, load average {load} at the end; "
        "max is usually the first texts, which trace new input shapes."
    )
    return f"{note}\n\n" + table(["view", "median", "max", "budget"], rows)


def report(folder: Path = RESULTS) -> str:
    found = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}
    sections = []
    loads = [result for name, result in found.items() if name.startswith("load_")]
    if loads:
        sections.append("### Load test\n\n" + load_table(loads))
    soaks = [result for name, result in found.items() if name.startswith("soak_")]
    if soaks:
        sections.append("### Soak\n\n" + soak_table(soaks))
    if "browser.json" in found:
        sections.append("### In the browser\n\n" + browser_tables(found["browser.json"]))
    if "views.json" in found:
        sections.append("### Views\n\n" + views_table(found["views.json"]))
    if "latency.json" in found:
        sections.append("### Model latency\n\n" + latency_table(found["latency.json"]))
    if not sections:
        return f"No results in {folder}: run bench/load_test.py and bench/browser.py first."
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    print(report(args.results))


if __name__ == "__main__":
    main()
