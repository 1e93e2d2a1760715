"""Comprehensiveness and sufficiency on hand-built models where the right ranking is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import registry
from models.explain.attribution import Attributions, attribute
from models.explain.faithfulness import (
    FRACTIONS,
    comprehensiveness,
    dataset_faithfulness,
    faithfulness_scores,
    faithfulness_table,
    gap_summary,
    most_faithful,
    perturbed_rows,
    sufficiency,
    top_units,
)
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
    methods = set(report) - {"model", "n"}
    assert methods == {*attribute(model, texts[0]).scores, "random"}
    assert report["random"]["seconds"] == 0.0
    for name in methods:
        assert set(report[name]) == {"comprehensiveness", "sufficiency", "seconds"} and report[name]["seconds"] >= 0


def test_dataset_report_is_the_mean_of_each_texts_table_and_of_a_seeded_random_ranking():
    tiny = TinyAttentionClassifier()
    texts = ["the good movie bad plot great", "bad plot", "great movie the good"]
    report, gaps = dataset_faithfulness(tiny, texts, steps=32)
    per_text = [attribute(tiny, text, steps=32) for text in texts]
    np.testing.assert_allclose(gaps, [a.completeness_gap for a in per_text])
    rows = [{row["method"]: row for row in faithfulness_table(tiny, text, a)} for text, a in zip(texts, per_text)]
    for name in per_text[0].scores:
        for measure in ("comprehensiveness", "sufficiency"):
            assert report[name][measure] == pytest.approx(np.mean([table[name][measure] for table in rows]), abs=1e-6), (name, measure)

    def probs_of_texts(rows: list[list[int]]) -> np.ndarray:
        """The model's own text path, not the batched id rows the report uses."""
        return np.stack([p.probs for p in tiny.predict_batch([" ".join(WORDS_KNOWN[i - 1] for i in row) for row in rows])])

    # The random row: text number k (from 1) ranked by numpy's generator seeded with k.
    random_rows = []
    for number, a in enumerate(per_text, start=1):
        noise = np.random.default_rng(number).random(len(a.tokens))
        random_rows.append([measure(a.token_ids, a.groups, noise, a.special, a.target, probs_of_texts) for measure in (comprehensiveness, sufficiency)])
    assert [report["random"]["comprehensiveness"], report["random"]["sufficiency"]] == pytest.approx(np.mean(random_rows, axis=0), abs=1e-6)
