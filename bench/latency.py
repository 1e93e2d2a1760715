"""Median latency of ``predict()`` by input length, for the README (``make bench``).

Run ``python -m bench.latency`` (or ``python bench/latency.py``); it prints a table and writes
bench/results/latency.json. Texts are built to an exact token count, so lengths are comparable
across models; each length is warmed up first, so compilation is not counted.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.server import machine
from models import registry
from models.base import AttentionModel, LensError
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "latency.json"
# Common news words that every tokenizer here keeps as one token each.
WORDS = ("the", "market", "team", "said", "new", "on", "year", "company", "government", "game", "and", "first")
# One-token words that vary a text's first word: a new text at the same length in tokens (and so
# the same padded shape), where a label such as "run0" would add a word piece and a new shape.
LABELS = ("red", "blue", "green", "black", "white", "brown", "gold", "silver", "pink", "gray", "orange", "purple")
PLAN = {"minilm-agnews": (16, 64, 256, 512), "keras-transformer": (16, 64, 128)}


def text_of_length(model: AttentionModel, n_tokens: int) -> tuple[str, int]:
    """A text the model reads as ``n_tokens`` tokens (special tokens included), or as close as it gets."""
    words = n_tokens
    for _ in range(5):
        text = " ".join(WORDS[i % len(WORDS)] for i in range(max(1, words)))
        actual = len(model.predict(text).source_tokens)
        if actual == n_tokens:
            break
        words += n_tokens - actual
    return text, actual


def new_texts(model: AttentionModel, base: str, tokens: int, count: int) -> list[str]:
    """``count`` texts like ``base`` (``tokens`` tokens long), each with another first word and the same length in tokens."""
    if count > len(LABELS):
        raise ValueError(f"at most {len(LABELS)} texts, got {count}")
    texts = [f"{label} {base.split(' ', 1)[1]}" for label in LABELS[:count]]
    for text in texts:
        length = len(model.predict(text).source_tokens)
        if length != tokens:
            raise ValueError(f"{text[:20]!r}… is {length} tokens, not {tokens}")
    return texts


def median_predict_ms(model: AttentionModel, text: str, repeats: int = 20) -> float:
    """Median wall-clock milliseconds of ``model.predict(text)``, after one warm-up call (the first call at a new length compiles)."""
    model.predict(text)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(text)
        timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)


def median_latency_ms(model: AttentionModel, n_tokens: int, repeats: int = 20) -> dict:
    """Median wall-clock milliseconds of ``model.predict`` on an ``n_tokens``-token text."""
    text, actual = text_of_length(model, n_tokens)
    return {"requested_tokens": n_tokens, "tokens": actual, "median_ms": round(median_predict_ms(model, text, repeats), 2), "repeats": repeats}


def main(repeats: int = 20) -> dict:
    results: dict[str, list[dict] | str] = {}
    for model_id, lengths in PLAN.items():
        try:
            model = registry.load(model_id)
        except LensError as exc:
            results[model_id] = f"not measured: {exc}"
            print(f"{model_id}: not measured ({exc})", file=sys.stderr)
            continue
        results[model_id] = [median_latency_ms(model, n, repeats) for n in lengths]
    print(f"{'model':20s} {'tokens':>6s} {'median ms':>10s}")
    for model_id, rows in results.items():
        for row in rows if isinstance(rows, list) else []:
            print(f"{model_id:20s} {row['tokens']:6d} {row['median_ms']:10.1f}")
    report = {
        "results": results,
        "measured": dt.datetime.now().isoformat(timespec="seconds"),
        **machine(),
    }
    atomic_write_json(RESULTS, report)
    print(f"wrote {RESULTS}")
    return report


if __name__ == "__main__":
    main()
