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

Normalized AOPC (Edin, Motzfeldt, Christensen, Ruotsalo, Maaløe & Maistro 2024, "Normalized
AOPC: Fixing Misleading Faithfulness Metrics for Feature Attribution Explainability", ACL 2025;
their code github.com/JoakimEdin/naopc). Raw AOPC cannot be compared across models or texts: its
attainable range depends on both. They define AOPC on the whole deletion curve, deleting the n
ordinary units one at a time in the explanation's order π:

    AOPC(π) = 1/n · Σ_{k=1..n} [f(x) − f(x without π_1..π_k)],

comprehensiveness deleting the highest-ranked first (π) and sufficiency the lowest-ranked first
(π reversed), so both range over the same orderings; then

    NAOPC = (AOPC − AOPC_min) / (AOPC_max − AOPC_min),

with AOPC_max and AOPC_min the best and worst AOPC over all n! orderings. The last point of the
curve (every unit deleted) is the same for every ordering, so it cancels in NAOPC; it is left out
here (the mean runs over k = 1..n−1), which also spares models that cannot read an empty text.
Their NAOPC_beam finds the bounds by beam search (``aopc_bounds``): two beams of width
``BEAM_WIDTH`` (5, the width of their long-text runs), extended one unit at a time and ranked by
the running sum. So normalized comprehensiveness is 1 for the best ordering found, 0 for the
worst (higher is better); normalized sufficiency the same scale (lower is better).

One addition to their search: the bounds are the extremes of the orderings it found *and* of the
orderings of the explanations scored (``normalized_scores``), each of which is an ordering the
true bounds cover. The beam misses orderings whose drops come late: on minilm-agnews, "Red Sox
rally in ninth inning to stun the Yankees" (11 tokens) has a best AOPC of 0.680 (every one of the
2¹¹ deletion sets run, best ordering by dynamic programming), while the beam finds 0.487 at every
width from 5 to 50 (the best ordering's third step lowers the drop, so it leaves the beam) and
attention × gradient's own ordering scores 0.605: scaled by the beam alone it would get 1.23. So
every normalized figure lies in [0, 1]; ``Bounds`` keeps the beam's own bounds, and the data set
report counts the texts where an explanation beat the search.

Units are deleted by the removal rule above; Edin et al. put [MASK] in their place, which this
app's models (word-level ones among them) do not all have.

Every figure over a data set comes with a bootstrap 95% interval over texts
(``bootstrap_interval``): the percentile method (Efron & Tibshirani 1993, ch. 13), the 2.5th and
97.5th percentiles of the mean over ``RESAMPLES`` resamples of the texts drawn with replacement,
seeded, so a rerun gives the same interval. Percentile rather than scipy's default BCa because it
is the definition a reader can check by hand (tests/test_faithfulness.py does).

With a foil (``Attributions.foil``), every measure is of log p(target) − log p(foil), the quantity
the contrastive scores explain.

The measures are pure functions of a probability callback, so tests check them on hand-built
models where the right ranking is known; ``faithfulness_table`` runs them on a loaded model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.explain.attribution import METHODS, Attributions, attribute, explained_values, without_units
from models.explain.runner import runner_for

FRACTIONS = (0.1, 0.2, 0.5)
# The dataset report's reference row: tokens ranked at random.
RANDOM = "random"
ProbabilityFunction = Callable[[list[list[int]]], np.ndarray]
BEAM_WIDTH = 5
CONFIDENCE = 0.95
RESAMPLES = 9999
BOOTSTRAP_SEED = 0
MEASURES = ("comprehensiveness", "sufficiency", "normalized_comprehensiveness", "normalized_sufficiency")


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
    ids: Sequence[int],
    groups,
    scores: np.ndarray,
    special: Sequence[bool],
    target: int,
    probs: ProbabilityFunction,
    fractions: Sequence[float] = FRACTIONS,
    foil: int | None = None,
) -> float:
    """AOPC comprehensiveness: mean over k of f(x) − f(x without its top-k% units), f = p(target)
    or, with a foil, log p(target) − log p(foil)."""
    removed, _ = perturbed_rows(ids, groups, scores, special, fractions)
    return _aopc(ids, removed, target, probs, foil)


def sufficiency(
    ids: Sequence[int],
    groups,
    scores: np.ndarray,
    special: Sequence[bool],
    target: int,
    probs: ProbabilityFunction,
    fractions: Sequence[float] = FRACTIONS,
    foil: int | None = None,
) -> float:
    """AOPC sufficiency: mean over k of f(x) − f(only its top-k% units and the special tokens)."""
    _, kept = perturbed_rows(ids, groups, scores, special, fractions)
    return _aopc(ids, kept, target, probs, foil)


def _aopc(ids: Sequence[int], rows: list, target: int, probs: ProbabilityFunction, foil: int | None) -> float:
    """Mean over the perturbed ``rows`` of f(ids) − f(row), in one ``probs`` call."""
    values = explained_values(np.asarray(probs([list(ids), *rows])), target, foil)
    return float(np.mean(values[0] - values[1:]))


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
    target_probs = a.explained(probs([list(row) for row in unique]))
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
    _check_same_text(model, text, attributions)
    return faithfulness_scores(attributions, runner_for(model).probs)


def _check_same_text(model, text: str, attributions: Attributions) -> None:
    if attributions.model != model.model_id or tuple(model.explain_tokens(text).ids) != attributions.token_ids:
        raise ValueError("the attributions were computed for another model or text")


class Deletions:
    """drop(S) = f(x) − f(x without the units S) for sets S of units, each row run once.

    f is what the attributions explain (``explained_values``); every set asked for in one call
    goes to ``probs`` as one batch, and values are kept for later calls (the beam search and the
    methods' own deletion curves share many sets).
    """

    def __init__(self, ids: Sequence[int], groups, target: int, probs: ProbabilityFunction, foil: int | None = None):
        self.ids, self.groups, self.target, self.foil, self.probs = list(ids), groups, target, foil, probs
        self.full = float(explained_values(np.asarray(probs([self.ids])), target, foil)[0])
        self._known: dict[frozenset[int], float] = {frozenset(): 0.0}

    @property
    def rows_run(self) -> int:
        """How many perturbed rows the model ran (the cost of the search)."""
        return len(self._known) - 1

    def __call__(self, sets: Sequence[frozenset[int]]) -> np.ndarray:
        new = [units for units in dict.fromkeys(sets) if units not in self._known]
        if new:
            values = explained_values(np.asarray(self.probs([without_units(self.ids, self.groups, sorted(units)) for units in new])), self.target, self.foil)
            self._known.update(zip(new, (self.full - values).tolist()))
        return np.array([self._known[units] for units in sets], dtype=np.float64)


def ranking(scores: np.ndarray, special: Sequence[bool]) -> list[int]:
    """Every ordinary unit, highest score first (ties: earlier first), as ``top_units`` ranks them."""
    return top_units(scores, special, 1.0)


def curve_aopc(order: Sequence[int], drop: Deletions) -> float:
    """Edin et al.'s AOPC of deleting the n units in ``order`` one at a time: the mean over
    k = 1..n−1 of drop(first k units) (the point k = n, equal for every ordering, left out; nan
    for fewer than two units)."""
    if len(order) < 2:
        return float("nan")
    return float(drop([frozenset(order[:k]) for k in range(1, len(order))]).mean())


@dataclass(frozen=True)
class Bounds:
    """The worst and best AOPC (``curve_aopc``) found over orderings of a text's units, and those orderings.

    ``beam_lower``/``beam_upper``: what the beam search alone found (``aopc_bounds``); ``lower``/
    ``upper`` may be wider when an explanation's ordering did better (``normalized_scores``).
    """

    lower: float
    upper: float
    lower_order: tuple[int, ...]
    upper_order: tuple[int, ...]
    beam: int
    beam_lower: float = float("nan")
    beam_upper: float = float("nan")

    @property
    def beaten(self) -> bool:
        """Whether an ordering other than the search's set a bound."""
        return self.lower < self.beam_lower or self.upper > self.beam_upper

    def widened(self, order: tuple[int, ...], value: float) -> Bounds:
        """These bounds, widened if ``order`` (scoring ``value``) is better or worse than both."""
        if value > self.upper:
            return replace(self, upper=value, upper_order=order)
        if value < self.lower:
            return replace(self, lower=value, lower_order=order)
        return self


def aopc_bounds(units: Sequence[int], drop: Deletions, beam: int = BEAM_WIDTH) -> Bounds:
    """Edin et al.'s NAOPC_beam: the lowest and highest ``curve_aopc`` over orderings of ``units``.

    As in their ``bound_approximation_methods.py``: one beam ascending (the lowest running sum
    of drops), one descending (the highest); each step extends every ordering of a beam by every
    unit it lacks, scores it by its running sum Σ_k drop(first k units), and keeps the ``beam``
    best (stable sort: ties keep the order they were proposed in). After n − 1 steps (the last unit
    is then forced) each beam's first ordering is its bound. The orderings of both beams at one
    step are scored in one model call; a step proposes at most 2·beam·n orderings, so a text costs
    at most beam·n² rows. Fewer than two units: nan bounds (one ordering, nothing to scale).
    """
    units = list(units)
    if beam < 1:
        raise ValueError(f"the beam width must be at least 1, got {beam}")
    if len(units) < 2:
        return Bounds(float("nan"), float("nan"), tuple(units), tuple(units), beam)
    beams: dict[bool, list[tuple[tuple[int, ...], float]]] = {False: [((), 0.0)], True: [((), 0.0)]}  # descending?
    for _ in units[1:]:
        proposals = {
            descending: [((*order, unit), total) for order, total in entries for unit in units if unit not in order] for descending, entries in beams.items()
        }
        drops = drop([frozenset(order) for descending in (False, True) for order, _ in proposals[descending]])
        split = len(proposals[False])
        for descending, values in ((False, drops[:split]), (True, drops[split:])):
            scored = [(order, total + value) for (order, total), value in zip(proposals[descending], values.tolist())]
            beams[descending] = sorted(scored, key=lambda entry: entry[1], reverse=descending)[:beam]
    (low_order, low), (high_order, high) = beams[False][0], beams[True][0]
    steps = len(units) - 1

    def complete(order: tuple[int, ...]) -> tuple[int, ...]:
        return (*order, *(unit for unit in units if unit not in order))

    return Bounds(low / steps, high / steps, complete(low_order), complete(high_order), beam, low / steps, high / steps)


def normalized(value: float, bounds: Bounds) -> float:
    """(value − lower) / (upper − lower); nan when the bounds coincide (a text of one unit has one ordering)."""
    span = bounds.upper - bounds.lower
    return (value - bounds.lower) / span if span > 1e-12 else float("nan")


def normalized_scores(
    attributions: Attributions, probs: ProbabilityFunction, beam: int = BEAM_WIDTH, extra: Mapping[str, np.ndarray] | None = None
) -> tuple[Bounds, list[dict]]:
    """Normalized comprehensiveness and sufficiency (Edin et al.) of every method, and the bounds.

    The bounds are the beam search's (``aopc_bounds``), widened by every method's orderings (its
    ranking for comprehensiveness, reversed for sufficiency) that score beyond them. ``extra`` adds
    rankings by name (the data set's random reference). Returns (bounds, one dict per method:
    ``method``, ``normalized_comprehensiveness``, ``normalized_sufficiency``).
    """
    a = attributions
    drop = Deletions(a.token_ids, a.groups, a.target, probs, a.foil)
    ordinary = [unit for unit, is_special in enumerate(a.special) if not is_special]
    bounds = aopc_bounds(ordinary, drop, beam)
    curves = {}
    for name, values in {**a.scores, **(extra or {})}.items():
        order = tuple(ranking(values, a.special))
        curves[name] = (curve_aopc(order, drop), curve_aopc(order[::-1], drop))
        if len(order) > 1:
            bounds = bounds.widened(order, curves[name][0]).widened(order[::-1], curves[name][1])
    table = [
        {"method": name, "normalized_comprehensiveness": normalized(comp, bounds), "normalized_sufficiency": normalized(suff, bounds)}
        for name, (comp, suff) in curves.items()
    ]
    return bounds, table


def normalized_table(model, text: str, attributions: Attributions, beam: int = BEAM_WIDTH) -> tuple[Bounds, list[dict]]:
    """``normalized_scores`` of ``attributions`` (computed for ``text``) on ``model``, batched per search step."""
    _check_same_text(model, text, attributions)
    return normalized_scores(attributions, runner_for(model).probs, beam)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> list[float] | None:
    """Percentile bootstrap interval of the mean of the finite ``values`` (None for fewer than two).

    ``scipy.stats.bootstrap`` with ``method="percentile"``: the (1 − confidence)/2 and
    (1 + confidence)/2 quantiles of the means of ``resamples`` resamples drawn with replacement
    by ``numpy.random.default_rng(seed)``.
    """
    from scipy.stats import bootstrap

    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return None
    result = bootstrap((finite,), np.mean, confidence_level=confidence, n_resamples=resamples, method="percentile", rng=np.random.default_rng(seed))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def most_faithful(table: list[dict]) -> str | None:
    """The method whose removal hurts most and whose top units alone suffice best.

    Ranks methods by comprehensiveness − sufficiency (ERASER reports both; high
    comprehensiveness and low sufficiency are both good, so their difference orders methods on
    one scale). None when the table is empty.
    """
    if not table:
        return None
    return max(table, key=lambda row: row["comprehensiveness"] - row["sufficiency"])["method"]


def text_faithfulness(model, item: tuple) -> tuple[dict[str, dict], float, dict[str, float], dict[str, int]]:
    """One text's part of ``dataset_faithfulness``: ``item`` is (position from 1, text, steps, beam, search its normalized AOPC, max units).

    Returns each method's measures (and the random ranking's), the integrated-gradients
    completeness gap, each method's seconds, and whether its normalized AOPC was searched, was
    undefined, or had a bound set by an explanation (0 or 1 each). Pure in the model and the
    item, so that any process that loaded the same model gives the same answer.
    """
    done, text, steps, beam, search, max_units = item
    probs = runner_for(model).probs
    a = attribute(model, text, steps=steps)
    # A random ranking (seeded by the text's position) is the reference any explanation must beat.
    noise = np.random.default_rng(done).random(len(a.tokens))
    reference = {
        "method": RANDOM,
        "comprehensiveness": comprehensiveness(a.token_ids, a.groups, noise, a.special, a.target, probs),
        "sufficiency": sufficiency(a.token_ids, a.groups, noise, a.special, a.target, probs),
    }
    rows = {row["method"]: dict(row) for row in [*faithfulness_scores(a, probs), reference]}
    units = sum(not special for special in a.special)
    found = {"searched": 0, "undefined": 0, "beaten": 0}
    if search and (max_units is None or units <= max_units):
        bounds, table = normalized_scores(a, probs, beam, {RANDOM: noise})
        found = {"searched": 1, "undefined": int(not bounds.upper - bounds.lower > 1e-12), "beaten": int(bounds.beaten)}
        for row in table:
            rows[row["method"]].update(row)
    return rows, a.completeness_gap, dict(a.seconds), found


def dataset_faithfulness(
    model,
    texts: Sequence[str],
    *,
    steps: int,
    progress: Callable[[int], None] | None = None,
    beam: int = BEAM_WIDTH,
    normalized_texts: int | None = None,
    normalized_max_units: int | None = None,
    mapper: Callable[[Callable, list], Iterable] | None = None,
) -> tuple[dict, np.ndarray]:
    """Mean comprehensiveness and sufficiency of every method over ``texts`` (token level), normalized
    AOPC over the first ``normalized_texts`` of them (default: all) that have at most
    ``normalized_max_units`` ordinary tokens (default: any; the search costs up to beam · n² rows
    per text), each with its bootstrap interval.

    Returns (report, gaps): ``report`` is ``{"model": id, "n": len(texts), "normalized": {"beam",
    "first_texts", "max_units", "texts", "undefined", "bounds_set_by_an_explanation"},
    "bootstrap": {...}, <method>: {<measure>, <measure>_ci, ..., "seconds"}}``
    for every measure in ``MEASURES`` (``_ci``: [low, high], ``bootstrap_interval``), with
    ``seconds`` the mean time per text the method's attributions took (the measures themselves not
    included), and the same for ``"random"``, a seeded random ranking per text, as the floor an
    explanation must beat; ``gaps`` holds each text's integrated-gradients completeness gap.
    "texts" counts the texts searched, "undefined" those whose bounds coincide (one unit), left out
    of the normalized means;
    "bounds_set_by_an_explanation" those where an explanation's ordering beat the beam search.
    ``progress(done)`` is called after each text. ``mapper(text_faithfulness, items)`` runs the
    per-text work elsewhere, in order (``models.ray_engine.mapper``); default: here, one by one.
    """
    limit = len(texts) if normalized_texts is None else min(normalized_texts, len(texts))
    per_text: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {}
    gaps, searched, undefined, beaten = [], 0, 0, 0
    items = [(done, text, steps, beam, done <= limit, normalized_max_units) for done, text in enumerate(texts, start=1)]
    run = mapper or (lambda function, given: (function(model, item) for item in given))
    for done, (rows, gap, took, search) in enumerate(run(text_faithfulness, items), start=1):
        gaps.append(gap)
        searched += search["searched"]
        undefined += search["undefined"]
        beaten += search["beaten"]
        for name, row in rows.items():
            values = per_text.setdefault(name, {measure: [] for measure in MEASURES})
            for measure in MEASURES:
                if measure in row:
                    values[measure].append(row[measure])
            seconds.setdefault(name, []).append(took.get(name, 0.0))
        if progress is not None:
            progress(done)
    report: dict = {
        "model": model.model_id,
        "n": len(texts),
        "normalized": {
            "beam": beam,
            "first_texts": limit,
            "max_units": normalized_max_units,
            "texts": searched,
            "undefined": undefined,
            "bounds_set_by_an_explanation": beaten,
        },
        "bootstrap": {"method": "percentile", "confidence": CONFIDENCE, "resamples": RESAMPLES, "seed": BOOTSTRAP_SEED},
    }
    for name in (*METHODS, RANDOM):
        if name in per_text:
            report[name] = {**_summary(per_text[name]), "seconds": round(float(np.mean(seconds[name])), 6)}
    return report, np.asarray(gaps, dtype=np.float64)


def _summary(values: Mapping[str, list[float]]) -> dict:
    """Each measure's mean over the texts where it is defined, and its bootstrap interval (6 decimals)."""
    summary: dict = {}
    for measure, found in values.items():
        finite = np.asarray(found, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            continue
        interval = bootstrap_interval(finite)
        summary[measure] = round(float(finite.mean()), 6)
        summary[f"{measure}_ci"] = None if interval is None else [round(bound, 6) for bound in interval]
    return summary


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
