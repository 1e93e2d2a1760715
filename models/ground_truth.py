"""Ground truth for explanations: how often each method points at a planted shortcut's trigger.

A shortcut model (``models.shortcut``) was trained so that one trigger word forces one class.
On test rows of the other classes with the trigger inserted at a random word boundary, and
whose prediction the trigger flipped to that class, the trigger is the reason for the
prediction: a method that explains the prediction should rank it first (Zhou et al. 2022, "Do
Feature Attribution Methods Correctly Attribute Features?", AAAI, whose measure of "attribution
correctness" this follows). For every method this module reports:

- ``hit_rate``: the share of texts whose trigger the method ranks first;
- ``mean_rank`` / ``median_rank``: the trigger's rank among the text's words (1 = first);
- ``mass_share``: the mean share of the method's total absolute attribution over the text's
  words that falls on the trigger.

Methods: the seven of ``models.explain.attribution`` (raw attention as the row the classifier
reads, rollout, flow, attention × gradient, gradient × input, integrated gradients, occlusion;
flow here over every row the classifier reads, which the live view skips for a mean-pooled
6-layer model as too slow), value-aware attention norms and ALTI (``models.value_aware``,
BERT-family models only; others give the reason), KernelSHAP (``shap``) and LIME (``lime``) as
model-agnostic references, and a seeded random ranking as the floor.

Units are words, for every method alike. Token scores are summed over a word's pieces, which is
how ``attribute(words=True)`` merges the gradient methods and how Clark et al. (2019) merge
attention *to* a split word; occlusion, KernelSHAP and LIME remove whole words (every token of
the word deleted, as occlusion deletes them). Special tokens ([CLS], [SEP]) are not words of the
text: they are never ranked, removed or counted in the mass. Ranking is by the signed score for
the explained class (most positive first), with ties counted against the trigger (its rank is
the number of words scoring at least as high), so a method that gives every word the same score
never hits. The explained class is the shortcut's label, which is the prediction of every text
kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from models.base import LensError
from models.data import load_split
from models.explain.attribution import DEFAULT_STEPS, attribute, readout_flow, sum_groups, supports_attribution, without_units
from models.explain.runner import runner_for
from models.provenance import git_state, load_average_since
from models.shortcut import Shortcut, with_trigger
from models.text import tokenize

ATTRIBUTION_METHODS = ("attention", "rollout", "attention_x_gradient", "gradient_x_input", "integrated_gradients", "occlusion")
METHODS = (
    "attention",
    "rollout",
    "flow",
    "value_norms",
    "alti",
    "attention_x_gradient",
    "gradient_x_input",
    "integrated_gradients",
    "occlusion",
    "kernel_shap",
    "lime",
    "random",
)
DEFAULT_N = 100
DEFAULT_SEED = 0
# Model evaluations per text for KernelSHAP and for LIME: each is one batched call of that many
# texts, a few seconds per text for MiniLM on 2 cores.
DEFAULT_SAMPLES = 256
LIME_KERNEL_WIDTH = 25.0  # lime_text's default for its cosine distances (scaled by 100)
SCREEN_BATCH = 64  # triggered texts predicted at a time while looking for flipped ones
SOURCES = ("models/ground_truth.py", "models/shortcut.py", "models/explain", "models/value_aware.py", "models/maths")


# ---------------------------------------------------------------------------------------------
# Scoring one text


def trigger_rank(scores: np.ndarray, trigger: int) -> int:
    """The trigger's rank by score, most positive first; ties count against it."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return int(np.sum(scores >= scores[trigger]))


def trigger_share(scores: np.ndarray, trigger: int) -> float:
    """|score of the trigger| / Σ |scores| (0 when every score is 0)."""
    magnitudes = np.abs(np.asarray(scores, dtype=np.float64))
    total = magnitudes.sum()
    return float(magnitudes[trigger] / total) if total > 0 else 0.0


def trigger_ranks(found, trigger: str) -> dict[str, int]:
    """Each method's rank of ``trigger`` among the ordinary units of one ``Attributions`` (for a page to state per text).

    Empty when the trigger is not exactly one of those units (a text without it, or with it twice).
    """
    ordinary = [unit for unit, special in enumerate(found.special) if not special]
    units = [found.tokens[unit] for unit in ordinary]
    if units.count(trigger) != 1:
        return {}
    return {name: trigger_rank(np.asarray(values)[ordinary], units.index(trigger)) for name, values in found.scores.items()}


def summarise(ranks: Sequence[int], shares: Sequence[float]) -> dict:
    """One method's figures over texts: hit rate, mean and median rank, mean mass share."""
    ranks_array = np.asarray(ranks, dtype=np.float64)
    return {
        "hit_rate": round(float(np.mean(ranks_array == 1)), 6),
        "mean_rank": round(float(ranks_array.mean()), 4),
        "median_rank": float(np.median(ranks_array)),
        "mass_share": round(float(np.mean(shares)), 6),
        "texts": len(ranks_array),
    }


# ---------------------------------------------------------------------------------------------
# Model-agnostic references over words


def coalition_value(probs: Callable[[list[list[int]]], np.ndarray], ids: Sequence[int], groups, features: Sequence[int], target: int):
    """f(mask) for masks (samples, len(features)): the target's probability with the words whose mask is 0 deleted.

    Every mask of one call goes to ``probs`` as one batch of id rows.
    """

    def value(masks: np.ndarray) -> np.ndarray:
        masks = np.atleast_2d(np.asarray(masks))
        rows = [without_units(ids, groups, [features[int(k)] for k in np.flatnonzero(mask < 0.5)]) for mask in masks]
        return np.asarray(probs(rows), dtype=np.float64)[:, target]

    return value


@dataclasses.dataclass(frozen=True)
class KernelShap:
    """KernelSHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions") by ``shap.KernelExplainer``.

    The features are the text's words: a word outside a coalition is deleted, and the
    background is the text with every word deleted. ``samples`` coalitions, but at least
    4M + 8 for M words: with 2M + 2, shap's draws repeat coalitions often enough to leave the
    regression singular on 5 of 48 linear test functions (none at 4M + 8);
    ``l1_reg=False`` so every word gets a value (shap's default keeps 10).
    shap draws its coalitions from numpy's global generator, which is seeded for the call and
    restored afterwards. shap calls ``value`` three times whatever ``samples`` is: background,
    the text, and every coalition as one batch.
    """

    samples: int = DEFAULT_SAMPLES
    seed: int = DEFAULT_SEED

    def __call__(self, value: Callable[[np.ndarray], np.ndarray], features: int) -> np.ndarray:
        import shap

        if features == 0:
            return np.zeros(0)
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            explainer = shap.KernelExplainer(value, np.zeros((1, features)))
            values = explainer.shap_values(np.ones((1, features)), nsamples=max(self.samples, 4 * features + 8), l1_reg=False, silent=True)
        finally:
            np.random.set_state(state)
        return np.asarray(values, dtype=np.float64).reshape(-1)


@dataclasses.dataclass(frozen=True)
class Lime:
    """LIME (Ribeiro, Singh & Guestrin 2016, "Why Should I Trust You?") by ``lime.lime_base.LimeBase``.

    Sampled as ``lime.lime_text`` samples: the text itself, then texts with a uniformly drawn
    number (1..M) of uniformly chosen words removed; weighted by its exponential kernel (width
    25) on the cosine distance x 100 to the text; a weighted ridge regression over every word
    (``feature_selection="none"``). LimeTextExplainer itself removes words by their surface
    string and knows nothing of the model's word pieces; giving LimeBase the same masks over the
    same words as the other methods keeps LIME comparable. One batched call of ``value``.
    """

    samples: int = DEFAULT_SAMPLES
    seed: int = DEFAULT_SEED

    def __call__(self, value: Callable[[np.ndarray], np.ndarray], features: int) -> np.ndarray:
        from lime.lime_base import LimeBase
        from sklearn.metrics.pairwise import cosine_distances

        if features == 0:
            return np.zeros(0)
        rng = np.random.RandomState(self.seed)
        masks = np.ones((self.samples, features))
        for row, size in enumerate(rng.randint(1, features + 1, self.samples - 1), start=1):
            masks[row, rng.choice(features, size, replace=False)] = 0
        targets = value(masks)
        distances = cosine_distances(masks, masks[:1]).ravel() * 100
        base = LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / LIME_KERNEL_WIDTH**2)), random_state=rng)
        _, weights, _, _ = base.explain_instance_with_data(masks, targets[:, np.newaxis], distances, 0, features, feature_selection="none")
        scores = np.zeros(features)
        for feature, weight in weights:
            scores[feature] = weight
        return scores


# ---------------------------------------------------------------------------------------------
# One text through every method


@dataclasses.dataclass(frozen=True)
class Explained:
    """Every method's word scores for one triggered text; ``trigger`` indexes ``words``."""

    words: tuple[str, ...]
    trigger: int
    scores: dict[str, np.ndarray]
    seconds: dict[str, float]
    unavailable: dict[str, str]


def explain(model, text: str, trigger: str, target: int, *, steps: int = DEFAULT_STEPS, samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED) -> Explained:
    """Every method's scores over the ordinary words of ``text`` for class ``target``.

    Raises LensError when ``trigger`` is not exactly one of the words the model reads.
    """
    from models.value_aware import supports_value_aware, value_aware

    found = attribute(model, text, target=target, steps=steps, words=True, methods=ATTRIBUTION_METHODS)
    ordinary = [unit for unit, special in enumerate(found.special) if not special]
    words = tuple(found.tokens[unit] for unit in ordinary)
    if words.count(trigger) != 1:
        raise LensError(f"the trigger {trigger!r} is {words.count(trigger)} of the words {model.model_id} reads in this text, not exactly one")
    scores = {name: np.asarray(values)[ordinary] for name, values in found.scores.items()}
    seconds = dict(found.seconds)
    unavailable = dict(found.unavailable)

    def timed(names: Sequence[str], compute: Callable[[], Sequence[np.ndarray]]) -> None:
        clock = time.perf_counter()
        values = compute()
        elapsed = time.perf_counter() - clock
        for name, unit_scores in zip(names, values):
            scores[name], seconds[name] = np.asarray(unit_scores, dtype=np.float64)[ordinary], elapsed

    prediction = model.predict(text)
    if prediction.self_attention:
        timed(("flow",), lambda: [sum_groups(readout_flow(prediction), found.groups)])
    else:
        unavailable["flow"] = "the model has one attention layer of one query, nothing to compose"
    reason = supports_value_aware(model)
    if reason is None:

        def norms_and_alti() -> list[np.ndarray]:
            aware = value_aware(model, text)
            if len(aware.tokens) != len(found.token_ids):
                raise LensError("value-aware attention read the text as other tokens than the attributions")
            return [
                sum_groups(prediction.readout_row(aware.layer_norms[-1]), found.groups),
                sum_groups(prediction.readout_row(aware.alti_rollout[-1]), found.groups),
            ]

        timed(("value_norms", "alti"), norms_and_alti)
    else:
        unavailable["value_norms"] = unavailable["alti"] = reason
    value = coalition_value(runner_for(model).probs, found.token_ids, found.groups, ordinary, target)
    timed(("kernel_shap",), lambda: [_spread(KernelShap(samples, seed)(value, len(ordinary)), ordinary, len(found.groups))])
    timed(("lime",), lambda: [_spread(Lime(samples, seed)(value, len(ordinary)), ordinary, len(found.groups))])
    scores["random"] = np.random.default_rng(seed).random(len(ordinary))
    return Explained(words, words.index(trigger), {name: scores[name] for name in METHODS if name in scores}, seconds, unavailable)


def _spread(values: np.ndarray, positions: Sequence[int], size: int) -> np.ndarray:
    """Scores of the ordinary words placed back among all units (special ones 0), as the other methods give them."""
    spread = np.zeros(size)
    spread[list(positions)] = values
    return spread


# ---------------------------------------------------------------------------------------------
# Over the test set


def flipped_texts(model, shortcut: Shortcut, n: int, seed: int, data_dir=None) -> tuple[list[tuple[int, str]], dict]:
    """The first ``n`` test rows of other classes (in file order) that the trigger flips to its label.

    The trigger goes in at a random word boundary drawn from (``seed``, the row's index). Rows
    whose text already has the trigger word are skipped. Returns (row index, triggered text)
    pairs and counts of what was looked at.
    """
    test = load_split("test", data_dir)
    others = [index for index, label in enumerate(test.labels) if label != shortcut.target]
    fresh = [index for index in others if shortcut.trigger not in tokenize(test.texts[index])]
    kept: list[tuple[int, str]] = []
    examined = 0
    for start in range(0, len(fresh), SCREEN_BATCH):
        if len(kept) >= n:
            break
        chunk = fresh[start : start + SCREEN_BATCH]
        texts = with_trigger([test.texts[index] for index in chunk], chunk, shortcut, "random", seed)
        predicted = model.predict_probs(texts).argmax(axis=1)
        for index, text, label in zip(chunk, texts, predicted):
            if len(kept) >= n:
                break
            examined += 1
            if label == shortcut.target:
                kept.append((index, text))
    counts = {"other_class_rows": len(others), "already_had_trigger": len(others) - len(fresh), "examined": examined, "flipped": len(kept)}
    return kept, counts


def text_explained(model, item: tuple) -> Explained:
    """``explain`` of one item (text, trigger, target class, steps, samples, seed): ``ground_truth``'s per-text work."""
    text, trigger, target, steps, samples, seed = item
    return explain(model, text, trigger, target, steps=steps, samples=samples, seed=seed)


def ground_truth(
    model,
    shortcut: Shortcut,
    *,
    n: int = DEFAULT_N,
    seed: int = DEFAULT_SEED,
    steps: int = DEFAULT_STEPS,
    samples: int = DEFAULT_SAMPLES,
    data_dir=None,
    progress: Callable[[int, int], None] | None = None,
    mapper: Callable[[Callable, list], Iterable] | None = None,
) -> dict:
    """Every method's hit rate, ranks and mass share on ``n`` flipped test texts, with timings.

    ``mapper(text_explained, items)`` runs the per-text explanations elsewhere, in order
    (``models.ray_engine.mapper``); default: here, one by one.
    """
    reason = supports_attribution(model)
    if reason:
        raise LensError(reason)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LensError(f"--n must be at least 1, got {n!r}")
    # The code as it was when the run started (a long run may see commits land meanwhile).
    load_before, started, state = os.getloadavg(), time.perf_counter(), git_state(SOURCES)
    texts, counts = flipped_texts(model, shortcut, n, seed, data_dir)
    if not texts:
        raise LensError(f"the trigger {shortcut.trigger!r} flipped none of the test rows looked at; is {model.model_id} a shortcut model?")
    ranks: dict[str, list[int]] = {name: [] for name in METHODS}
    shares: dict[str, list[float]] = {name: [] for name in METHODS}
    seconds: dict[str, float] = {name: 0.0 for name in METHODS}
    unavailable: dict[str, str] = {}
    words = []
    items = [(text, shortcut.trigger, shortcut.target, steps, samples, seed + index) for index, text in texts]
    run = mapper or (lambda function, given: (function(model, item) for item in given))
    for done, result in enumerate(run(text_explained, items), start=1):
        words.append(len(result.words))
        unavailable.update(result.unavailable)
        for name, values in result.scores.items():
            ranks[name].append(trigger_rank(values, result.trigger))
            shares[name].append(trigger_share(values, result.trigger))
            seconds[name] += result.seconds.get(name, 0.0)
        if progress is not None:
            progress(done, len(texts))
    methods = {name: {**summarise(ranks[name], shares[name]), "seconds_per_text": round(seconds[name] / len(texts), 3)} for name in METHODS if ranks[name]}
    return {
        "model": model.model_id,
        "shortcut": shortcut.record(),
        "n": len(texts),
        "seed": seed,
        "rows": counts,
        "mean_words": round(float(np.mean(words)), 1),
        "methods": methods,
        "unavailable": {name: unavailable[name] for name in METHODS if name in unavailable and name not in methods},
        "integrated_gradients_steps": steps,
        "samples": {"kernel_shap": samples, "lime": samples},
        "trigger_position": "a random word boundary, drawn from (seed, test row index)",
        "units": "words: token scores summed over each word's pieces; occlusion, KernelSHAP and LIME delete whole words; special tokens neither ranked nor counted",
        "ranking": "by signed score for the shortcut's class, most positive first; ties count against the trigger",
        **state,
        "evaluated": dt.date.today().isoformat(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "load_average": load_average_since(load_before),
    }


def print_table(report: dict, out=sys.stdout) -> None:
    print(
        f"{report['model']}: ground truth on {report['n']} test texts whose prediction the trigger "
        f"{report['shortcut']['trigger']!r} flipped to {report['shortcut']['label']} ({report['mean_words']} words on average)",
        file=out,
    )
    print(f"  {'method':22s} {'top-1':>6s} {'mean rank':>10s} {'median':>7s} {'mass':>6s} {'s/text':>7s}", file=out)
    for name, figures in report["methods"].items():
        print(
            f"  {name:22s} {figures['hit_rate']:6.2f} {figures['mean_rank']:10.2f} {figures['median_rank']:7.1f} {figures['mass_share']:6.2f} {figures['seconds_per_text']:7.2f}",
            file=out,
        )
    for name, why in report["unavailable"].items():
        print(f"  {name}: not available ({why})", file=out)
