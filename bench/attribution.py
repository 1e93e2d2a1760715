"""Where the attribution view's time goes: each stage for a new text, beside the cost of one forward pass.

    python bench/attribution.py                       # minilm-agnews, 64 and 512 tokens
    python bench/attribution.py --tokens 64 --runs 5

The view (views/attribution.py) computes three stages (``STAGES``: the one-pass methods, then
integrated gradients, then leave-one-out occlusion) and then the per-text faithfulness table.
Each is timed here as the page calls it, on texts the model has not seen, after a first text of
the same length has traced the model's shapes. Beside them: one forward pass of the text
(``model.predict``), and the rows each stage runs through the model, so a stage's time per row
can be set against a forward pass. Writes bench/results/attribution.json (the README's sentence
on the view's budgets, issue 20: <= 1 s at 64 tokens and <= 3 s at 512).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import median_predict_ms, new_texts, text_of_length
from bench.server import app_state, load_average, machine
from models import registry
from models.explain.attribution import DEFAULT_STEPS, SCAN_CELLS, merge
from models.explain.faithfulness import faithfulness_table
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "attribution.json"
# Issue 20's budgets for the whole view on a new text, MiniLM, warm.
BUDGETS_S = {64: 1.0, 512: 3.0}


def time_text(model, text: str) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of each stage (and the faithfulness table) for ``text``, as the view computes them, and each method's own seconds.

    A method's seconds include any pass it shares with another method of its stage (``Attributions.seconds``).
    """
    from views.attribution import STAGES, stage
    from views.spec import Subject

    subject = Subject(model.model_id, model, text, model.predict(text))
    seconds: dict[str, float] = {}
    parts = []
    for methods in STAGES:
        start = time.perf_counter()
        parts.append(stage(subject, 0, DEFAULT_STEPS, False, methods))
        seconds["+".join(methods)] = time.perf_counter() - start
    merged = merge(parts)
    start = time.perf_counter()
    faithfulness_table(model, text, merged)
    seconds["faithfulness"] = time.perf_counter() - start
    return seconds, dict(merged.seconds)


def measure(model, n_tokens: int, runs: int) -> dict:
    base, tokens = text_of_length(model, n_tokens)
    first, *texts = new_texts(model, base, tokens, runs + 1)
    load_before = load_average()
    time_text(model, first)  # traces this length's shapes
    timed = [time_text(model, text) for text in texts]
    runs_seconds = [stages for stages, _ in timed]
    stages = {name: round(statistics.median(run[name] for run in runs_seconds), 3) for name in runs_seconds[0]}
    methods = {name: round(statistics.median(run[name] for _, run in timed), 3) for name in timed[0][1]}
    total = statistics.median(sum(run.values()) for run in runs_seconds)
    # Rows through the model: integrated gradients scans its path at SCAN_CELLS + 1 points, then
    # takes the gradient at DEFAULT_STEPS points; leave-one-out runs the text once per token.
    rows = {"integrated_gradients": {"forward": SCAN_CELLS + 1, "gradient": DEFAULT_STEPS}, "occlusion": {"forward": tokens}}
    budget = BUDGETS_S.get(n_tokens)
    return {
        "requested_tokens": n_tokens,
        "tokens": tokens,
        "runs": runs,
        "total_s": round(total, 3),
        "stages_s": stages,
        "methods_s": methods,
        "forward_ms": round(median_predict_ms(model, base, repeats=5), 2),
        "rows": rows,
        "budget_s": budget,
        "within_budget": None if budget is None else total <= budget,
        "load_average_1min": {"before": load_before, "after": load_average()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-agnews")
    parser.add_argument("--tokens", type=int, nargs="+", default=sorted(BUDGETS_S))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    model = registry.load(args.model)
    lengths = []
    for n_tokens in args.tokens:
        lengths.append(measure(model, n_tokens, args.runs))
        row = lengths[-1]
        verdict = "" if row["budget_s"] is None else f"  budget {row['budget_s']} s: {'ok' if row['within_budget'] else 'MISSED'}"
        print(f"{row['tokens']:4d} tokens: {row['total_s']:.2f} s {json.dumps(row['stages_s'])}  forward {row['forward_ms']:.1f} ms{verdict}", flush=True)
    report = {
        "model": args.model,
        "steps": DEFAULT_STEPS,
        "lengths": lengths,
        "timestamp": dt.datetime.now().isoformat(timespec="seconds"),
        "app": app_state("models", "views", "bench/attribution.py"),
        **machine(),
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
