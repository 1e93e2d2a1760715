"""Attribution methods against hand-worked values, finite differences and the axioms they promise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import registry
from models.base import LensError
from models.explain.attribution import (
    METHODS,
    SCAN_CELLS,
    attention_x_gradient,
    attribute,
    completeness_gap,
    gradient_x_input,
    integrated_gradients,
    merge,
    occlusion,
    path_points,
    sum_groups,
    supports_attribution,
    without_units,
)
from models.explain.runner import runner_for
from models.maths.rollout import attention_rollout
from tests.helpers.checkpoints import TEXT as CHECKPOINT_TEXT
from tests.helpers.tiny_models import TinyAttentionClassifier, finite_difference_gradient, numpy_forward

TINY_TEXT = "the good movie bad plot"
HEADLINES = {
    "keras-transformer": "Federer beats Nadal to reach the Wimbledon final",
    "bahdanau-rnn": "Stocks fall as oil prices climb to a record high",
    "minilm-agnews": "NASA probe sends back the first images from Mars",
}


# --- pure functions, hand-worked -------------------------------------------------------------


def test_gradient_x_input_of_a_linear_model_is_weight_times_input():
    # f(x) = Σ w ⊙ x over 2 tokens × 2 dimensions: ∂f/∂x = w, so token t scores Σ_e w_te x_te.
    w = np.array([[1.0, -2.0], [0.5, 3.0]])
    x = np.array([[2.0, 1.0], [4.0, -1.0]])
    np.testing.assert_allclose(gradient_x_input(x, w), [2.0 - 2.0, 2.0 - 3.0])


def test_integrated_gradients_of_a_square_is_exact_and_complete():
    # f(x) = (Σ x)² from x' = 0: the gradient along the path is 2α(Σx) per coordinate, linear in
    # α, so the midpoint rule is exact and IG_t = Σ_e x_te · (Σ x) for every step count.
    x = np.array([[1.0, 2.0], [-0.5, 0.5]])
    total = x.sum()

    def path_gradients(points):
        return np.stack([np.full_like(point, 2.0 * point.sum()) for point in points])

    for steps in (1, 4, 32):
        scores = integrated_gradients(x, np.zeros_like(x), path_gradients, steps)
        np.testing.assert_allclose(scores, x.sum(axis=1) * total, rtol=1e-6)
        assert math.isclose(scores.sum(), total**2, rel_tol=1e-6)


def test_integrated_gradients_of_an_exponential_converges_as_the_midpoint_rule_does():
    # One token, one dimension, f(x) = exp(x), baseline -1 and input 2: IG = e^2 − e^-1 exactly.
    # The midpoint rule's error is (b − a)³ max|f''| / (24 m²) with f'' the integrand's second
    # derivative in α: (x − x')³ e^x / (24 m²).
    x, baseline = np.array([[2.0]]), np.array([[-1.0]])
    exact = math.exp(2.0) - math.exp(-1.0)
    for steps in (8, 32):
        score = integrated_gradients(x, baseline, lambda points: np.exp(points.astype(np.float64)), steps)[0]
        assert abs(score - exact) <= 3.0**3 * math.exp(2.0) / (24 * steps**2) + 1e-5


def test_path_points_are_midpoints_with_equal_weights():
    alphas, weights = path_points(4)
    np.testing.assert_allclose(alphas, [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(weights, [0.25] * 4)


def test_a_scan_gathers_the_steps_where_the_function_changes():
    # f changes only across the fourth of eight cells, [3/8, 1/2].
    scan = np.array([0.0, 0.0, 0.0, 0.0, 0.9, 0.9, 0.9, 0.9, 0.9])
    alphas, weights = path_points(32, scan)
    inside = (alphas > 3 / 8) & (alphas < 1 / 2)
    assert inside.sum() > 32 / 8 * 2 and np.all(np.diff(alphas) > 0)
    # The weights are 1 / (m φ(α)): they integrate constants and straight lines almost exactly.
    assert weights.sum() == pytest.approx(1.0, abs=1e-4)
    assert (weights * (3 * alphas + 1)).sum() == pytest.approx(2.5, abs=1e-3)
    # A flat scan leaves the plain midpoint rule.
    np.testing.assert_array_equal(path_points(8, np.zeros(5))[0], path_points(8)[0])


def test_the_scan_beats_even_steps_on_a_sharp_switch():
    # f(α) = sigmoid(k (α − 0.37)) along the path; minilm-agnews switches within a twentieth of
    # the path (k ≈ 100). Gentle switches the midpoint rule handles well must stay as good.
    def f(alpha, k):
        return 1.0 / (1.0 + np.exp(-k * (alpha - 0.37)))

    def df(alpha, k):
        return k * f(alpha, k) * (1.0 - f(alpha, k))

    for steepness in (30.0, 60.0, 200.0):
        exact = f(1.0, steepness) - f(0.0, steepness)
        even = np.sum(path_points(32)[1] * df(path_points(32)[0], steepness))
        alphas, weights = path_points(32, f(np.linspace(0.0, 1.0, SCAN_CELLS + 1), steepness))
        assert abs(np.sum(weights * df(alphas, steepness)) - exact) <= max(abs(even - exact) / 10, 1e-4 * exact)


def test_completeness_gap_is_relative_and_undefined_for_no_difference():
    assert completeness_gap(0.45, 0.5) == pytest.approx(0.1)
    assert completeness_gap(-0.2, -0.25) == pytest.approx(0.2)
    assert math.isnan(completeness_gap(0.1, 0.0))


def test_attention_x_gradient_one_layer_by_hand():
    # Two heads, two tokens. ∇A ⊙ A per head, negatives clipped, averaged:
    # head 1: [[0.5, -0.5], [0.4, 0]] -> [[0.5, 0], [0.4, 0]]; head 2: [[0, 0.3], [-0.1, 0.2]] -> [[0, 0.3], [0, 0.2]]
    # mean [[0.25, 0.15], [0.2, 0.1]]; R = I + Ā I.
    attentions = np.array([[[[0.5, 0.5], [0.2, 0.8]], [[0.4, 0.6], [0.5, 0.5]]]])
    gradients = np.array([[[[1.0, -1.0], [2.0, 0.0]], [[0.0, 0.5], [-0.2, 0.4]]]])
    np.testing.assert_allclose(attention_x_gradient(attentions, gradients), [[1.25, 0.15], [0.2, 1.1]])


def test_attention_x_gradient_composes_layers_in_order():
    # R1 = I + Ā1, R2 = R1 + Ā2 R1 with one head per layer.
    a1 = np.array([[0.6, 0.4], [0.3, 0.7]])
    a2 = np.array([[0.9, 0.1], [0.5, 0.5]])
    g = np.ones((2, 2))
    r1 = np.eye(2) + a1
    expected = r1 + a2 @ r1
    np.testing.assert_allclose(attention_x_gradient(np.stack([a1, a2])[:, None], np.stack([g, g])[:, None]), expected)


def test_occlusion_deletes_each_ordinary_unit_once_and_keeps_special_tokens():
    # A "model" whose positive-class probability is sigmoid(Σ weights of the ids it sees).
    weight = {101: 0.0, 5: 2.0, 6: -1.0, 7: 0.5, 102: 0.0}
    calls = []

    def probs(rows):
        calls.append(rows)
        p = np.array([1.0 / (1.0 + math.exp(-sum(weight[i] for i in row))) for row in rows])
        return np.stack([1.0 - p, p], axis=1)

    ids = [101, 5, 6, 7, 102]
    groups = ((0,), (1, 2), (3,), (4,))  # "5 6" is one word
    special = (True, False, False, True)
    scores = occlusion(ids, groups, special, 1, probs)
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    full = sig(1.5)
    np.testing.assert_allclose(scores, [0.0, full - sig(0.5), full - sig(1.0), 0.0])
    assert len(calls) == 1 and calls[0] == [ids, [101, 7, 102], [101, 5, 6, 102]]


def test_without_units_and_sum_groups():
    assert without_units([10, 11, 12, 13], ((0,), (1, 2), (3,)), [1]) == [10, 13]
    np.testing.assert_allclose(sum_groups(np.array([1.0, 2.0, 3.0, 4.0]), ((0,), (1, 2), (3,))), [1.0, 5.0, 4.0])


# --- a tiny self-attention classifier, against its float64 numpy twin ------------------------


@pytest.fixture(scope="module")
def tiny():
    return TinyAttentionClassifier()


@pytest.fixture(scope="module")
def tiny_attributions(tiny):
    return attribute(tiny, TINY_TEXT, target=1, steps=64)


def _tiny_embeds(tiny, text=TINY_TEXT):
    ids = list(tiny.explain_tokens(text).ids)
    return tiny.weights["embeddings"][ids]


def test_gradient_x_input_matches_finite_differences(tiny, tiny_attributions):
    x = _tiny_embeds(tiny)
    gradient = finite_difference_gradient(lambda e: numpy_forward(tiny.weights, e)[0][1], x)
    np.testing.assert_allclose(tiny_attributions.scores["gradient_x_input"], (x * gradient).sum(axis=1), atol=2e-5)


def test_integrated_gradients_are_complete_and_match_a_float64_reference(tiny, tiny_attributions):
    x = _tiny_embeds(tiny)
    p = lambda e: numpy_forward(tiny.weights, e)[0][1]  # noqa: E731
    # The same quadrature: steps placed by a scan of p at the edges of SCAN_CELLS equal cells.
    scan = np.array([p(alpha * x) for alpha in np.linspace(0.0, 1.0, SCAN_CELLS + 1)])
    reference = integrated_gradients(x, np.zeros_like(x), lambda points: np.stack([finite_difference_gradient(p, q) for q in points]), 64, scan)
    np.testing.assert_allclose(tiny_attributions.scores["integrated_gradients"], reference, atol=5e-5)
    difference = p(x) - p(np.zeros_like(x))
    assert tiny_attributions.baseline_probability == pytest.approx(p(np.zeros_like(x)), abs=1e-6)
    assert abs(tiny_attributions.scores["integrated_gradients"].sum() - difference) <= 0.01 * abs(difference)
    assert tiny_attributions.completeness_gap <= 0.01


def test_batched_passes_equal_one_row_at_a_time_however_the_rows_are_chunked(tiny, monkeypatch):
    # Integrated gradients and its scan send all their path points at once; the runner splits
    # them into chunks (Runner.calls) padded with filler rows. Each row's result must be what a
    # pass over that row alone gives: rows never interact, filler rows are dropped.
    import models.hf_common as hf_common

    runner, x = runner_for(tiny), _tiny_embeds(tiny)
    length, rows = len(x), 11
    monkeypatch.setattr(hf_common, "TOKENS_PER_BATCH", 4 * runner.bucket(length))  # at most 4 rows a chunk
    assert [size for _, _, size in runner.calls("gradients", length, rows)] == [4, 4, 4]
    points = np.linspace(0.05, 1.0, rows)[:, np.newaxis, np.newaxis] * x
    batched, probs = runner.gradients(points, length, 1), runner.embedded_probs(points, length)
    for row, point in enumerate(points):
        alone = runner.gradients(point[np.newaxis], length, 1)
        np.testing.assert_allclose(batched.d_embeds[row], alone.d_embeds[0], rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(batched.probs[row], alone.probs[0], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(probs[row], alone.probs[0], rtol=1e-6, atol=1e-8)


def test_attention_x_gradient_uses_gradients_of_the_log_probability(tiny, tiny_attributions):
    x = _tiny_embeds(tiny)
    attention = numpy_forward(tiny.weights, x)[1]

    # ∂ log p / ∂A by finite differences through a copy of the forward that takes A as input.
    def log_p_given_attention(a):
        v = np.einsum("tw,hwd->htd", x, tiny.weights["value"])
        logits = np.einsum("htd,hdc->c", a @ v, tiny.weights["output"]) / len(x)
        return logits[1] - np.log(np.exp(logits).sum())

    gradient = finite_difference_gradient(log_p_given_attention, attention)
    relevance = attention_x_gradient(attention[np.newaxis], gradient[np.newaxis]) - np.eye(len(x))
    np.testing.assert_allclose(tiny_attributions.scores["attention_x_gradient"], relevance.mean(axis=0), atol=1e-5)


def test_occlusion_matches_deleting_each_word(tiny, tiny_attributions):
    words = TINY_TEXT.split()
    full = numpy_forward(tiny.weights, _tiny_embeds(tiny))[0][1]
    expected = [full - numpy_forward(tiny.weights, _tiny_embeds(tiny, " ".join(words[:i] + words[i + 1 :])))[0][1] for i in range(len(words))]
    np.testing.assert_allclose(tiny_attributions.scores["occlusion"], expected, atol=1e-6)


def test_attention_rows_are_read_as_the_model_pools(tiny, tiny_attributions):
    attention = numpy_forward(tiny.weights, _tiny_embeds(tiny))[1]
    np.testing.assert_allclose(tiny_attributions.scores["attention"], attention.mean(axis=0).mean(axis=0), atol=1e-6)
    rolled = attention_rollout(attention[np.newaxis])[-1]
    np.testing.assert_allclose(tiny_attributions.scores["rollout"], rolled.mean(axis=0), atol=1e-6)
    # Through one layer attention flow is the graph weights themselves: rollout's matrix.
    np.testing.assert_allclose(tiny_attributions.scores["flow"], rolled.mean(axis=0), atol=1e-6)


def test_record_lists_every_method_with_a_time_and_validates_itself(tiny, tiny_attributions):
    a = tiny_attributions
    assert tuple(a.scores) == METHODS and not a.unavailable
    assert a.tokens == tuple(TINY_TEXT.split()) and a.groups == tuple((i,) for i in range(5))
    assert a.target == 1 and a.target_label == "positive" and a.steps == 64
    assert set(a.seconds) == set(METHODS) and all(s >= 0 for s in a.seconds.values())
    with pytest.raises(ValueError):
        a.scores["occlusion"][0] = 1.0
    with pytest.raises(LensError, match="steps"):
        attribute(TinyAttentionClassifier(), TINY_TEXT, steps=2)
    with pytest.raises(LensError, match="class"):
        attribute(TinyAttentionClassifier(), TINY_TEXT, target=2)


def test_the_predicted_class_is_explained_unless_one_is_picked(tiny):
    predicted = int(np.argmax(tiny.predict(TINY_TEXT).probs))
    assert attribute(tiny, TINY_TEXT).target == predicted


# --- the bundled models ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model_id", list(HEADLINES))
def test_integrated_gradients_are_complete_within_five_percent_on_the_bundled_models(model_id, shipped_model):
    model = shipped_model(model_id)
    attributions = attribute(model, HEADLINES[model_id])
    assert attributions.completeness_gap <= 0.05
    assert len(attributions.tokens) == len(model.predict(HEADLINES[model_id]).source_tokens)
    for name, values in attributions.scores.items():
        assert np.all(np.isfinite(values)), name


@pytest.mark.slow
def test_word_mode_sums_pieces_and_occludes_whole_words(shipped_model):
    model = shipped_model("minilm-agnews")
    text = "Nadal beats Federer"
    pieces, words = attribute(model, text), attribute(model, text, words=True)
    assert "nadal" in words.tokens and len(words.tokens) < len(pieces.tokens)
    for name in ("gradient_x_input", "integrated_gradients", "attention"):
        np.testing.assert_allclose(words.scores[name], sum_groups(pieces.scores[name], words.groups), atol=1e-6)
    nadal = words.tokens.index("nadal")
    assert len(words.groups[nadal]) > 1
    kept = [words.token_ids[i] for j, group in enumerate(words.groups) if j != nadal for i in group]
    probs = runner_for(model).probs([list(words.token_ids), kept])[:, words.target]
    assert words.scores["occlusion"][nadal] == pytest.approx(probs[0] - probs[1], abs=1e-6)


def test_models_without_a_classifier_or_embeddings_say_why(shipped_model):
    dates = shipped_model("bahdanau-dates")
    assert "generates text" in supports_attribution(dates)
    with pytest.raises(LensError, match="generates text"):
        attribute(dates, "3 March 2015")


def test_rnn_has_its_attention_row_and_no_self_attention_methods(shipped_model):
    model = shipped_model("bahdanau-rnn")
    attributions = attribute(model, HEADLINES["bahdanau-rnn"])
    np.testing.assert_allclose(attributions.scores["attention"], model.predict(HEADLINES["bahdanau-rnn"]).attentions[0, 0, 0], atol=1e-7)
    assert {"rollout", "flow", "attention_x_gradient"} <= set(attributions.unavailable)
    assert attributions.baseline.startswith("zero")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bert", "roberta", "albert", "distilbert", "electra"])
def test_hf_checkpoints_of_every_supported_family_are_explained(checkpoint, monkeypatch, family):
    import tensorflow as tf

    monkeypatch.setenv("ATTENTION_LENS_ALLOW_HF", "1")
    # Random weights, seeded: an untrained model's probabilities barely move along the path, so
    # the relative gap of an unlucky draw divides by almost nothing.
    tf.random.set_seed(0)
    model = registry.load(f"hf:{checkpoint(family)}")
    attributions = attribute(model, CHECKPOINT_TEXT)
    assert tuple(attributions.scores) == tuple(name for name in METHODS if name != "flow" or model.attention_grid[0] <= 2)
    assert attributions.completeness_gap <= 0.05
    # [CLS]-style special tokens stay in the baseline, so integrated gradients gives them nothing.
    special = np.asarray(attributions.special)
    assert special.any() and np.all(attributions.scores["integrated_gradients"][special] == 0.0)
    assert attributions.scores["occlusion"][special].tolist() == [0.0] * int(special.sum())


def test_parts_computed_apart_merge_into_the_whole(tiny, tiny_attributions):
    fast = attribute(tiny, TINY_TEXT, target=1, steps=64, methods=("attention", "gradient_x_input"))
    assert tuple(fast.scores) == ("attention", "gradient_x_input") and math.isnan(fast.completeness_gap)
    slow = attribute(tiny, TINY_TEXT, target=1, steps=64, methods=("occlusion", "integrated_gradients"))
    rest = attribute(tiny, TINY_TEXT, target=1, steps=64, methods=("rollout", "flow", "attention_x_gradient"))
    whole = merge([fast, slow, rest])
    assert tuple(whole.scores) == METHODS and set(whole.seconds) == set(METHODS)
    for name in METHODS:
        np.testing.assert_allclose(whole.scores[name], tiny_attributions.scores[name], atol=1e-7)
    assert whole.completeness_gap == pytest.approx(tiny_attributions.completeness_gap, abs=1e-6)
    with pytest.raises(ValueError, match="merged"):
        merge([fast, attribute(tiny, TINY_TEXT, target=0, methods=("attention",))])
    with pytest.raises(ValueError, match="unknown"):
        attribute(tiny, TINY_TEXT, methods=("saliency",))
