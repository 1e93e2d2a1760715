"""Comprehensiveness, sufficiency and normalized AOPC on hand-built models where the right ranking
is known, and their bootstrap intervals against a hand-worked reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from models import registry
from models.explain.attribution import Attributions, attribute
from models.explain.faithfulness import (
    BEAM_WIDTH,
    FRACTIONS,
    MEASURES,
    RESAMPLES,
    Deletions,
    aopc_bounds,
    bootstrap_interval,
    comprehensiveness,
    curve_aopc,
    dataset_faithfulness,
    faithfulness_scores,
    faithfulness_table,
    gap_summary,
    most_faithful,
    normalized,
    normalized_scores,
    normalized_table,
    perturbed_rows,
    ranking,
    sufficiency,
    top_units,
)
from models.explain.runner import runner_for
from tests.helpers.tiny_models import WORDS_KNOWN, TinyAttentionClassifier, numpy_forward

# A bag-of-words "model": the positive class's probability is sigmoid(Σ weights of the ids it
# sees). Ids 100 and 101 are special tokens worth nothing; ids 1..10 carry weights, so the
# right ranking of a text's tokens is by weight.
WEIGHTS = {100: 0.0, 101: 0.0, 1: 3.0, 2: -1.0, 3: 0.5, 4: 2.0, 5: 0.0, 6: -0.5, 7: 1.0, 8: 0.2, 9: -2.0, 10: 0.1}
IDS = [100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 101]
SPECIAL = tuple(i in (100, 101) for i in IDS)
GROUPS = tuple((i,) for i in range(len(IDS)))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def bag_of_words(rows):
    p = np.array([sigmoid(sum(WEIGHTS[i] for i in row)) for row in rows])
    return np.stack([1.0 - p, p], axis=1)


def test_top_units_rounds_up_skips_special_tokens_and_breaks_ties_by_position():
    scores = np.array([9.0, 1.0, 5.0, 5.0, 0.0, 9.0])
    special = (True, False, False, False, False, True)
    assert top_units(scores, special, 0.1) == [2]  # ceil(0.4) = 1 of 4 ordinary units; tie -> earlier
    assert top_units(scores, special, 0.5) == [2, 3]
    assert top_units(scores, special, 1.0) == [2, 3, 1, 4]


def test_perturbed_rows_delete_or_keep_the_top_units_with_special_tokens_always_kept():
    scores = np.array([0.0, 0.9, 0.1, 0.5, 0.0])
    ids, special, groups = [100, 1, 2, 3, 101], (True, False, False, False, True), tuple((i,) for i in range(5))
    removed, kept = perturbed_rows(ids, groups, scores, special, (0.1, 0.5))
    # ceil(0.1 · 3) = 1 unit (id 1), ceil(0.5 · 3) = 2 units (ids 1 and 3)
    assert removed == [[100, 2, 3, 101], [100, 2, 101]]
    assert kept == [[100, 1, 101], [100, 1, 3, 101]]


def test_aopc_by_hand_for_the_true_ranking():
    scores = np.array([WEIGHTS[i] for i in IDS])
    full = sigmoid(sum(WEIGHTS[i] for i in IDS))  # 3.3
    # 10 ordinary tokens: the top 1, 2 and 5 by weight are {1}, {1, 4}, {1, 4, 7, 3, 8}.
    top = [[1], [1, 4], [1, 4, 7, 3, 8]]
    expected_comprehensiveness = np.mean([full - sigmoid(3.3 - sum(WEIGHTS[i] for i in t)) for t in top])
    expected_sufficiency = np.mean([full - sigmoid(sum(WEIGHTS[i] for i in t)) for t in top])
    assert comprehensiveness(IDS, GROUPS, scores, SPECIAL, 1, bag_of_words) == pytest.approx(expected_comprehensiveness)
    assert sufficiency(IDS, GROUPS, scores, SPECIAL, 1, bag_of_words) == pytest.approx(expected_sufficiency)


def test_the_true_ranking_beats_a_reversed_and_a_random_one():
    truth = np.array([WEIGHTS[i] for i in IDS])
    rankings = {"truth": truth, "reversed": -truth, "random": np.random.default_rng(0).normal(size=len(IDS))}
    comp = {name: comprehensiveness(IDS, GROUPS, s, SPECIAL, 1, bag_of_words) for name, s in rankings.items()}
    suff = {name: sufficiency(IDS, GROUPS, s, SPECIAL, 1, bag_of_words) for name, s in rankings.items()}
    assert comp["truth"] > comp["random"] > comp["reversed"]
    assert suff["truth"] < suff["random"] < suff["reversed"]


def _record(scores: dict[str, np.ndarray]) -> Attributions:
    tokens = tuple(str(i) for i in IDS)
    return Attributions(
        model="bag",
        labels=("negative", "positive"),
        probs=bag_of_words([IDS])[0],
        target=1,
        tokens=tokens,
        special=SPECIAL,
        groups=GROUPS,
        token_ids=tuple(IDS),
        scores=scores,
        completeness_gap=0.0,
        baseline="none",
        baseline_probability=0.5,
        steps=32,
        words=False,
    )


def test_the_table_equals_the_single_measures_and_names_the_true_ranking():
    truth = np.array([WEIGHTS[i] for i in IDS])
    scores = {"occlusion": truth, "attention": -truth, "gradient_x_input": np.arange(len(IDS), dtype=float)}
    calls = []

    def counted(rows):
        calls.append(len(rows))
        return bag_of_words(rows)

    table = faithfulness_scores(_record(scores), counted)
    assert len(calls) == 1 and calls[0] < 1 + 2 * len(FRACTIONS) * len(scores)  # shared rows computed once
    for row in table:
        values = scores[row["method"]]
        assert row["comprehensiveness"] == pytest.approx(comprehensiveness(IDS, GROUPS, values, SPECIAL, 1, bag_of_words))
        assert row["sufficiency"] == pytest.approx(sufficiency(IDS, GROUPS, values, SPECIAL, 1, bag_of_words))
    assert most_faithful(table) == "occlusion"
    assert most_faithful([]) is None


def test_word_units_are_removed_whole():
    # Units: [CLS], "1 2" (one word of two tokens), "3", [SEP]; the word scores highest.
    ids, groups, special = [100, 1, 2, 3, 101], ((0,), (1, 2), (3,), (4,)), (True, False, False, True)
    removed, kept = perturbed_rows(ids, groups, np.array([0.0, 2.0, 1.0, 0.0]), special, (0.5,))
    assert removed == [[100, 3, 101]] and kept == [[100, 1, 2, 101]]


def test_faithfulness_table_on_a_model_equals_deleting_words_in_its_numpy_twin():
    tiny = TinyAttentionClassifier()
    words = ["the", "good", "movie", "bad", "plot", "great"]
    text = " ".join(words)
    attributions = attribute(tiny, text)
    target = attributions.target

    def p(kept: list[str]) -> float:
        embeds = tiny.weights["embeddings"][[WORDS_KNOWN.index(word) + 1 for word in kept]]
        return float(numpy_forward(tiny.weights, embeds)[0][target])

    table = faithfulness_table(tiny, text, attributions)
    assert [row["method"] for row in table] == list(attributions.scores)
    for row in table:
        # Six words: the top 10, 20 and 50% are the top 1, 2 and 3 words (ties: earlier first).
        ranked = np.argsort(-attributions.scores[row["method"]], kind="stable")
        tops = [set(ranked[:count].tolist()) for count in (1, 2, 3)]
        without = [[word for i, word in enumerate(words) if i not in top] for top in tops]
        alone = [[word for i, word in enumerate(words) if i in top] for top in tops]
        # The model runs in float32, its twin in float64.
        assert row["comprehensiveness"] == pytest.approx(np.mean([p(words) - p(kept) for kept in without]), abs=1e-5)
        assert row["sufficiency"] == pytest.approx(np.mean([p(words) - p(kept) for kept in alone]), abs=1e-5)
    with pytest.raises(ValueError, match="another model or text"):
        faithfulness_table(tiny, "the good movie", attributions)


def test_dataset_report_has_one_entry_per_method_with_times():
    model = registry.load("keras-transformer")
    texts = ["Stocks fall as oil prices climb", "Federer wins the final in five sets", "New chip doubles the speed of servers"]
    done = []
    report, gaps = dataset_faithfulness(model, texts, steps=32, progress=done.append)
    assert done == [1, 2, 3] and gaps.shape == (3,)
    summary = gap_summary(np.array([0.01, 0.02, 0.1, float("nan")]))
    assert summary["texts"] == 3 and summary["median"] == pytest.approx(0.02) and summary["above_5_percent"] == pytest.approx(1 / 3)
    assert summary["p90"] == pytest.approx(0.084)  # 90% of the way from 0.02 (50th) to 0.1 (100th): 0.02 + 0.8 · 0.08
    assert report["model"] == "keras-transformer" and report["n"] == 3
    assert {key: report["normalized"][key] for key in ("beam", "texts", "undefined")} == {"beam": BEAM_WIDTH, "texts": 3, "undefined": 0}
    assert 0 <= report["normalized"]["bounds_set_by_an_explanation"] <= 3
    assert report["bootstrap"] == {"method": "percentile", "confidence": 0.95, "resamples": RESAMPLES, "seed": 0}
    methods = set(report) - {"model", "n", "normalized", "bootstrap"}
    assert methods == {*attribute(model, texts[0]).scores, "random"}
    assert report["random"]["seconds"] == 0.0
    for name in methods:
        assert set(report[name]) == {*MEASURES, *(f"{measure}_ci" for measure in MEASURES), "seconds"} and report[name]["seconds"] >= 0
        for measure in MEASURES:
            low, high = report[name][f"{measure}_ci"]
            assert low - 1e-6 <= report[name][measure] <= high + 1e-6


def test_dataset_report_is_the_mean_of_each_texts_table_and_of_a_seeded_random_ranking():
    tiny = TinyAttentionClassifier()
    texts = ["the good movie bad plot great", "bad plot", "great movie the good"]
    report, gaps = dataset_faithfulness(tiny, texts, steps=32)
    per_text = [attribute(tiny, text, steps=32) for text in texts]
    np.testing.assert_allclose(gaps, [a.completeness_gap for a in per_text])
    rows = [{row["method"]: row for row in faithfulness_table(tiny, text, a)} for text, a in zip(texts, per_text)]
    # Normalized: each text's search, widened by every method's ordering and by the random one.
    beaten = 0
    for number, (table, a) in enumerate(zip(rows, per_text), start=1):
        noise = np.random.default_rng(number).random(len(a.tokens))
        bounds, normalized_rows = normalized_scores(a, runner_for(tiny).probs, BEAM_WIDTH, {"random": noise})
        beaten += bounds.beaten
        table["random"] = {}
        for row in normalized_rows:
            table[row["method"]].update(row)
    assert report["normalized"]["bounds_set_by_an_explanation"] == beaten
    for measure in ("normalized_comprehensiveness", "normalized_sufficiency"):
        assert report["random"][measure] == pytest.approx(np.mean([table["random"][measure] for table in rows]), abs=1e-6)
    for name in per_text[0].scores:
        for measure in MEASURES:
            values = [table[name][measure] for table in rows]
            assert report[name][measure] == pytest.approx(np.mean(values), abs=1e-6), (name, measure)
            assert report[name][f"{measure}_ci"] == pytest.approx(bootstrap_interval(values), abs=1e-6), (name, measure)

    def probs_of_texts(rows: list[list[int]]) -> np.ndarray:
        """The model's own text path, not the batched id rows the report uses."""
        return np.stack([p.probs for p in tiny.predict_batch([" ".join(WORDS_KNOWN[i - 1] for i in row) for row in rows])])

    # The random row: text number k (from 1) ranked by numpy's generator seeded with k.
    random_rows = []
    for number, a in enumerate(per_text, start=1):
        noise = np.random.default_rng(number).random(len(a.tokens))
        random_rows.append([measure(a.token_ids, a.groups, noise, a.special, a.target, probs_of_texts) for measure in (comprehensiveness, sufficiency)])
    assert [report["random"]["comprehensiveness"], report["random"]["sufficiency"]] == pytest.approx(np.mean(random_rows, axis=0), abs=1e-6)


def test_the_normalized_measures_can_be_limited_to_the_first_texts():
    tiny = TinyAttentionClassifier()
    report, _ = dataset_faithfulness(tiny, ["the good movie bad plot great", "bad plot", "great movie the good"], steps=32, normalized_texts=1)
    assert {key: report["normalized"][key] for key in ("beam", "texts", "undefined")} == {"beam": BEAM_WIDTH, "texts": 1, "undefined": 0}
    # One text: a mean, but no interval.
    assert report["occlusion"]["normalized_comprehensiveness_ci"] is None and report["occlusion"]["comprehensiveness_ci"] is not None
    # Or only texts of at most 2 words: "bad plot" alone.
    short, _ = dataset_faithfulness(tiny, ["the good movie bad plot great", "bad plot", "great movie the good"], steps=32, normalized_max_units=2)
    assert {key: short["normalized"][key] for key in ("first_texts", "max_units", "texts")} == {"first_texts": 3, "max_units": 2, "texts": 1}
    alone, _ = dataset_faithfulness(tiny, ["bad plot"], steps=32)
    assert short["occlusion"]["normalized_comprehensiveness"] == pytest.approx(alone["occlusion"]["normalized_comprehensiveness"])


# --- bootstrap intervals ----------------------------------------------------------------------

SMALL = np.array([0.0, 1.0, 2.0, 10.0])


def test_bootstrap_interval_is_the_percentile_interval_of_the_exact_bootstrap_distribution():
    # 4 values: all 4⁴ = 256 resamples are equally likely, so the bootstrap distribution of the mean
    # is known exactly. Its 2.5% quantile is 0.5 (P(mean ≤ 0.25) = 5/256 < 2.5% ≤ P(mean ≤ 0.5) =
    # 15/256) and its 97.5% quantile 7.75 (P(mean ≤ 7.5) = 247/256 < 97.5% ≤ 251/256).
    means = np.array([SMALL[list(picks)].mean() for picks in itertools.product(range(4), repeat=4)])
    values, counts = np.unique(means, return_counts=True)
    cumulative = np.cumsum(counts) / len(means)
    exact = [values[np.argmax(cumulative >= 0.025)], values[np.argmax(cumulative >= 0.975)]]
    assert exact == [0.5, 7.75]
    assert bootstrap_interval(SMALL) == exact


def test_bootstrap_interval_is_seeded_percentiles_of_resampled_means():
    # The percentile method by hand: the same draws (numpy's generator seeded with 0, one index
    # matrix of RESAMPLES × n), the means, their 2.5th and 97.5th percentiles.
    values = np.array([0.31, 0.12, 0.55, 0.47, 0.08, 0.9, 0.26])
    picks = np.random.default_rng(0).integers(0, len(values), (RESAMPLES, len(values)))
    reference = np.percentile(values[picks].mean(axis=1), [2.5, 97.5])
    np.testing.assert_allclose(bootstrap_interval(values), reference, rtol=0, atol=1e-12)
    assert bootstrap_interval(values) == bootstrap_interval(values)  # seeded: a rerun gives the same interval
    # Undefined values are left out; fewer than two values have no interval.
    assert bootstrap_interval([*values, float("nan")]) == bootstrap_interval(values)
    assert bootstrap_interval([0.4]) is None and bootstrap_interval([]) is None


# --- normalized AOPC (Edin et al. 2024) -------------------------------------------------------

# Five units (ids 1..5, no special tokens). p(class 1) = 0.9 minus what is deleted: unit 5 is worth
# 0.2, units 1 and 2 only 0.05 each but 0.5 together (deleting both costs 0.4 more), units 3 and 4
# 0.02 and 0.01. The best order deletes 1 and 2 first: drops 0.05, 0.5, 0.7, 0.72 (sum 1.97); the
# greedy first step takes unit 5 (the largest single drop) and gets 0.2, 0.25, 0.7, 0.72 (1.87).
WORTH = {1: 0.05, 2: 0.05, 3: 0.02, 4: 0.01, 5: 0.2}


def interacting(rows):
    p = []
    for row in rows:
        gone = set(WORTH) - set(row)
        p.append(0.9 - sum(WORTH[unit] for unit in gone) - (0.4 if {1, 2} <= gone else 0.0))
    p = np.array(p)
    return np.stack([1.0 - p, p], axis=1)


UNIT_IDS, UNIT_GROUPS = [1, 2, 3, 4, 5], tuple((i,) for i in range(5))


def every_order(drop: Deletions, units) -> dict[tuple[int, ...], float]:
    return {order: curve_aopc(order, drop) for order in itertools.permutations(units)}


def test_the_beam_search_finds_the_best_and_worst_of_all_orders_and_a_greedy_one_does_not():
    drop = Deletions(UNIT_IDS, UNIT_GROUPS, 1, interacting)
    exhaustive = every_order(drop, range(5))
    best, worst = max(exhaustive.values()), min(exhaustive.values())
    assert best == pytest.approx((0.05 + 0.5 + 0.7 + 0.72) / 4)
    bounds = aopc_bounds(range(5), drop, BEAM_WIDTH)
    assert (bounds.upper, bounds.lower) == (pytest.approx(best), pytest.approx(worst))
    # The orders returned are complete and score their bounds.
    assert sorted(bounds.upper_order) == sorted(bounds.lower_order) == list(range(5))
    assert curve_aopc(bounds.upper_order, drop) == pytest.approx(best) and curve_aopc(bounds.lower_order, drop) == pytest.approx(worst)
    assert bounds.upper_order[:2] in ((0, 1), (1, 0))  # units 1 and 2 first
    greedy = aopc_bounds(range(5), drop, 1)
    assert greedy.upper == pytest.approx((0.2 + 0.25 + 0.7 + 0.72) / 4)
    assert greedy.upper < best


def test_normalized_aopc_places_a_ranking_between_the_bounds():
    drop = Deletions(UNIT_IDS, UNIT_GROUPS, 1, interacting)
    bounds = aopc_bounds(range(5), drop)
    exhaustive = every_order(drop, range(5))
    special = (False,) * 5
    best = np.array([5.0, 4.0, 2.0, 1.0, 3.0])  # ranks units 1, 2, 5, 3, 4
    assert ranking(best, special) == [0, 1, 4, 2, 3]
    assert normalized(curve_aopc(ranking(best, special), drop), bounds) == pytest.approx(1.0)
    # Sufficiency deletes the lowest-ranked first: 4, 3, 5, 2 drop 0.01, 0.03, 0.23, 0.28.
    suff = (0.01 + 0.03 + 0.23 + 0.28) / 4
    expected = (suff - min(exhaustive.values())) / (max(exhaustive.values()) - min(exhaustive.values()))
    assert normalized(curve_aopc(ranking(best, special)[::-1], drop), bounds) == pytest.approx(expected)
    worst = min(exhaustive, key=exhaustive.get)
    assert normalized(exhaustive[worst], bounds) == pytest.approx(0.0)
    # One unit has one order: nothing to scale.
    single = aopc_bounds([0], drop)
    assert math.isnan(single.upper) and math.isnan(normalized(0.1, single))


def test_the_search_runs_each_set_once_and_within_its_stated_cost():
    calls = []

    def counted(rows):
        calls.append(len(rows))
        return bag_of_words(rows)

    drop = Deletions(IDS, GROUPS, 1, counted)
    ordinary = [unit for unit, special in enumerate(SPECIAL) if not special]
    aopc_bounds(ordinary, drop)
    n = len(ordinary)
    assert len(calls) == 1 + (n - 1)  # the whole text, then one call per step for both beams
    assert sum(calls) - 1 == drop.rows_run <= BEAM_WIDTH * n * n
    # The bag of words is additive: deleting the highest weights first is the best order, the
    # lowest first the worst, and the search finds both.
    bounds = aopc_bounds(ordinary, drop)
    truth = np.array([WEIGHTS[i] for i in IDS])
    assert curve_aopc(ranking(truth, SPECIAL), drop) == pytest.approx(bounds.upper)
    assert curve_aopc(ranking(-truth, SPECIAL), drop) == pytest.approx(bounds.lower)


def test_normalized_table_on_a_model_equals_every_order_of_deleting_words_in_its_numpy_twin():
    tiny = TinyAttentionClassifier()
    words = ["the", "good", "movie", "bad", "plot", "great"]
    text = " ".join(words)
    attributions = attribute(tiny, text)
    target = attributions.target

    def p(kept: list[str]) -> float:
        embeds = tiny.weights["embeddings"][[WORDS_KNOWN.index(word) + 1 for word in kept]]
        return float(numpy_forward(tiny.weights, embeds)[0][target])

    def aopc(order) -> float:
        return float(np.mean([p(words) - p([w for i, w in enumerate(words) if i not in order[:k]]) for k in range(1, len(order))]))

    everything = [aopc(order) for order in itertools.permutations(range(6))]
    bounds, table = normalized_table(tiny, text, attributions)
    assert bounds.lower == pytest.approx(min(everything), abs=1e-5) and bounds.upper == pytest.approx(max(everything), abs=1e-5)
    assert [row["method"] for row in table] == list(attributions.scores)
    for row in table:
        order = ranking(attributions.scores[row["method"]], attributions.special)
        span = max(everything) - min(everything)
        assert row["normalized_comprehensiveness"] == pytest.approx((aopc(order) - min(everything)) / span, abs=1e-4)
        assert row["normalized_sufficiency"] == pytest.approx((aopc(order[::-1]) - min(everything)) / span, abs=1e-4)


def test_an_explanations_ordering_that_beats_the_search_widens_the_bounds():
    # Greedy (width 1) misses the best order 1, 2, 5, 3, 4; an explanation that ranks it so sets
    # the upper bound instead, scores exactly 1, and the record says the search was beaten.
    record = Attributions(
        model="interacting",
        labels=("other", "class"),
        probs=interacting([UNIT_IDS])[0],
        target=1,
        tokens=tuple(str(i) for i in UNIT_IDS),
        special=(False,) * 5,
        groups=UNIT_GROUPS,
        token_ids=tuple(UNIT_IDS),
        scores={"occlusion": np.array([5.0, 4.0, 2.0, 1.0, 3.0]), "attention": np.array([1.0, 2.0, 3.0, 4.0, 5.0])},
        completeness_gap=0.0,
        baseline="none",
        baseline_probability=0.5,
        steps=32,
        words=False,
    )
    bounds, table = normalized_scores(record, interacting, beam=1)
    drop = Deletions(UNIT_IDS, UNIT_GROUPS, 1, interacting)
    assert bounds.beam_upper == pytest.approx(aopc_bounds(range(5), drop, 1).upper)
    assert bounds.upper == pytest.approx(max(every_order(drop, range(5)).values())) and bounds.beaten
    assert bounds.upper_order == (0, 1, 4, 2, 3)
    rows = {row["method"]: row for row in table}
    assert rows["occlusion"]["normalized_comprehensiveness"] == pytest.approx(1.0)
    assert all(0.0 <= row[measure] <= 1.0 for row in table for measure in ("normalized_comprehensiveness", "normalized_sufficiency"))
    # At width 5 the search finds both extremes itself (see above): nothing to widen.
    assert not normalized_scores(record, interacting)[0].beaten
