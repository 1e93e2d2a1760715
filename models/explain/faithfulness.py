"""Does the model's behaviour follow an explanation? Comprehensiveness and sufficiency.

DeYoung, Jain, Rajani, Lehman, Xiong, Socher & Wallace (2020), "ERASER: A Benchmark to Evaluate
Rationalized NLP Models" (ACL), sec. 4.2. For a text x, the model's probability p of the
explained class, and the tokens r_k an explanation ranks in its top k%:

- comprehensiveness_k = p(x) − p(x without r_k): large if what the explanation points at is
  what the prediction needs;
- sufficiency_k = p(x) − p(r_k alone): small if what it points at is enough on its own.

Each is reported as AOPC, the mean over the bins k ∈ ``FRACTIONS`` (10, 20 and 50%), as in
ERASER's code (``_instances_aopc`` averages the per-threshold differences).

Removal rule, stated once: only ordinary units (tokens, or words in word mode) are ranked and
removed, by deleting them from the token sequence (the rest close up, keeping their order);
special tokens ([CLS], [SEP]) always stay. The top k% is ceil(k · n) of the n ordinary units,
so at least one unit is removed; ties are broken by position (earlier first).

The measures are pure functions of a probability callback, so tests check them on hand-built
models where the right ranking is known; ``faithfulness_table`` runs them on a loaded model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from models.explain.attribution import METHODS, Attributions, attribute, without_units
from models.explain.runner import runner_for

FRACTIONS = (0.1, 0.2, 0.5)
# The dataset report's reference row: tokens ranked at random.
RANDOM = "random"
ProbabilityFunction = Callable[[list[list[int]]], np.ndarray]


def top_units(scores: np.ndarray, special: Sequence[bool], fraction: float) -> list[int]:
    """The ceil(fraction · n) ordinary units with the highest scores (ties: earlier first)."""
    ordinary = [unit for unit, is_special in enumerate(special) if not is_special]
    count = min(len(ordinary), math.ceil(fraction * len(ordinary) - 1e-9))
    ranked = sorted(ordinary, key=lambda unit: (-float(scores[unit]), unit))
    return ranked[:count]


def perturbed_rows(ids: Sequence[int], groups, scores: np.ndarray, special: Sequence[bool], fractions: Sequence[float] = FRACTIONS) -> tuple[list, list]:
    """(rows without the top units, rows of the top units and special tokens alone), one per fraction."""
    removed, kept = [], []
    for fraction in fractions:
        top = set(top_units(scores, special, fraction))
        removed.append(without_units(ids, groups, sorted(top)))
        others = [unit for unit, is_special in enumerate(special) if not is_special and unit not in top]
        kept.append(without_units(ids, groups, others))
    return removed, kept


def comprehensiveness(
    ids: Sequence[int], groups, scores: np.ndarray, special: Sequence[bool], target: int, probs: ProbabilityFunction, fractions: Sequence[float] = FRACTIONS
) -> float:
    """AOPC comprehensiveness: mean over k of p(x) − p(x without its top-k% units)."""
    removed, _ = perturbed_rows(ids, groups, scores, special, fractions)
    return _aopc(ids, removed, target, probs)


def sufficiency(
    ids: Sequence[int], groups, scores: np.ndarray, special: Sequence[bool], target: int, probs: ProbabilityFunction, fractions: Sequence[float] = FRACTIONS
) -> float:
    """AOPC sufficiency: mean over k of p(x) − p(only its top-k% units and the special tokens)."""
    _, kept = perturbed_rows(ids, groups, scores, special, fractions)
    return _aopc(ids, kept, target, probs)


def _aopc(ids: Sequence[int], rows: list, target: int, probs: ProbabilityFunction) -> float:
    """Mean over the perturbed ``rows`` of p(target | ids) − p(target | row), in one ``probs`` call."""
    target_probs = np.asarray(probs([list(ids), *rows]), dtype=np.float64)[:, target]
    return float(np.mean(target_probs[0] - target_probs[1:]))


def faithfulness_scores(attributions: Attributions, probs: ProbabilityFunction, fractions: Sequence[float] = FRACTIONS) -> list[dict]:
    """Comprehensiveness and sufficiency of every method in ``attributions``, with one ``probs`` call.

    Rows shared by several methods (the same top units) are computed once. Returns one dict per
    method: ``method``, ``comprehensiveness``, ``sufficiency``.
    """
    a = attributions
    plans = {name: perturbed_rows(a.token_ids, a.groups, values, a.special, fractions) for name, values in a.scores.items()}
    unique: dict[tuple[int, ...], int] = {tuple(a.token_ids): 0}
    for removed, kept in plans.values():
        for row in (*removed, *kept):
            unique.setdefault(tuple(row), len(unique))
    target_probs = np.asarray(probs([list(row) for row in unique]), dtype=np.float64)[:, a.target]
    full = target_probs[0]
    table = []
    for name, (removed, kept) in plans.items():
        table.append(
            {
                "method": name,
                "comprehensiveness": float(np.mean([full - target_probs[unique[tuple(row)]] for row in removed])),
                "sufficiency": float(np.mean([full - target_probs[unique[tuple(row)]] for row in kept])),
            }
        )
    return table


def faithfulness_table(model, text: str, attributions: Attributions) -> list[dict]:
    """``faithfulness_scores`` of ``attributions`` (computed for ``text``) on ``model``, batched."""
    if attributions.model != model.model_id or tuple(model.explain_tokens(text).ids) != attributions.token_ids:
        raise ValueError("the attributions were computed for another model or text")
    return faithfulness_scores(attributions, runner_for(model).probs)


def most_faithful(table: list[dict]) -> str | None:
    """The method whose removal hurts most and whose top units alone suffice best.

    Ranks methods by comprehensiveness − sufficiency (ERASER reports both; high
    comprehensiveness and low sufficiency are both good, so their difference orders methods on
    one scale). None when the table is empty.
    """
    if not table:
        return None
    return max(table, key=lambda row: row["comprehensiveness"] - row["sufficiency"])["method"]


def dataset_faithfulness(model, texts: Sequence[str], *, steps: int, progress: Callable[[int], None] | None = None) -> tuple[dict, np.ndarray]:
    """Mean comprehensiveness and sufficiency of every method over ``texts`` (token level).

    Returns (report, gaps): ``report`` is ``{"model": id, "n": len(texts), <method>:
    {"comprehensiveness", "sufficiency", "seconds"}}`` with ``seconds`` the mean time per text the
    method's attributions took (the measures themselves not included), and the same for
    ``"random"``, a seeded random ranking per text, as the floor an explanation must beat;
    ``gaps`` holds each text's integrated-gradients completeness gap. ``progress(done)`` is
    called after each text.
    """
    totals: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    gaps = []
    probs = runner_for(model).probs
    for done, text in enumerate(texts, start=1):
        attributions = attribute(model, text, steps=steps)
        gaps.append(attributions.completeness_gap)
        # A random ranking (seeded by the text's position) is the reference any explanation must beat.
        noise = np.random.default_rng(done).random(len(attributions.tokens))
        a = attributions
        reference = {
            "method": RANDOM,
            "comprehensiveness": comprehensiveness(a.token_ids, a.groups, noise, a.special, a.target, probs),
            "sufficiency": sufficiency(a.token_ids, a.groups, noise, a.special, a.target, probs),
        }
        for row in [*faithfulness_scores(attributions, probs), reference]:
            name = row["method"]
            total = totals.setdefault(name, {"comprehensiveness": 0.0, "sufficiency": 0.0, "seconds": 0.0})
            total["comprehensiveness"] += row["comprehensiveness"]
            total["sufficiency"] += row["sufficiency"]
            total["seconds"] += attributions.seconds.get(name, 0.0)
            counts[name] = counts.get(name, 0) + 1
        if progress is not None:
            progress(done)
    report: dict = {"model": model.model_id, "n": len(texts)}
    for name in (*METHODS, RANDOM):
        if name in totals:
            report[name] = {key: round(value / counts[name], 6) for key, value in totals[name].items()}
    return report, np.asarray(gaps, dtype=np.float64)


def gap_summary(gaps: np.ndarray) -> dict:
    """Median and 90th percentile of completeness gaps, and the share above 5% (texts where f(x) = f(x') left out)."""
    defined = gaps[np.isfinite(gaps)]
    if defined.size == 0:
        return {"median": None, "p90": None, "above_5_percent": None, "texts": 0}
    return {
        "median": round(float(np.median(defined)), 6),
        "p90": round(float(np.percentile(defined, 90)), 6),
        "above_5_percent": round(float((defined > 0.05).mean()), 6),
        "texts": int(defined.size),
    }
