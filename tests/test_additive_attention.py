"""Bahdanau attention against a hand-worked example and a plain numpy reference."""

import numpy as np
import pytest

from models.additive_attention import AdditiveAttention

# Chosen so that tanh comes out as round numbers: tanh(A) = 0.5, tanh(B) = 0.25, tanh(2A) = 0.8.
A, B = np.arctanh(0.5), np.arctanh(0.25)
# Three annotations and one padding position whose values must not matter.
KEYS = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, -7.0]]], dtype=np.float32)
MASK = np.array([[True, True, True, False]])
U_A = np.array([[A, 0.0], [0.0, B]], dtype=np.float32)
V_A = np.array([2.0, 4.0], dtype=np.float32)
# Query s_1 = 0 adds nothing; query s_2 = (1, 0) adds W_a s_2 = (A, 0).
QUERIES = np.array([[[0.0, 0.0], [1.0, 0.0]]], dtype=np.float32)
W_A = np.array([[A, 0.0], [0.0, 0.0]], dtype=np.float32)

# By hand, U_a h_j = (A, 0), (0, B), (A, B), so tanh gives (.5, 0), (0, .25), (.5, .25) and
# e_1j = v_a . tanh = 1, 1, 2. With (A, 0) added: (.8, 0), (.5, .25), (.8, .25) -> 1.6, 2, 2.6.
EXPECTED_SCORES = np.array([[1.0, 1.0, 2.0], [1.6, 2.0, 2.6]])


def _layer(with_query: bool, bias=(0.0, 0.0)) -> AdditiveAttention:
    layer = AdditiveAttention(units=2)
    layer.build(KEYS.shape, QUERIES.shape if with_query else None)
    layer.U_a.assign(U_A)
    layer.v_a.assign(V_A)
    layer.b.assign(np.asarray(bias, dtype=np.float32))
    if with_query:
        layer.W_a.assign(W_A)
    return layer


def _softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def test_alignment_scores_match_the_hand_worked_example():
    scores = np.asarray(_layer(with_query=True).alignment_scores(KEYS, QUERIES))
    assert scores.shape == (1, 2, 4)
    np.testing.assert_allclose(scores[0, :, :3], EXPECTED_SCORES, atol=1e-6)


def test_weights_are_the_softmax_over_real_tokens_and_exactly_zero_on_padding():
    _, weights = _layer(with_query=True)(KEYS, query=QUERIES, mask=MASK)
    weights = np.asarray(weights)[0]
    # Row 1: e^1, e^1, e^2 over their sum.
    e = np.e
    np.testing.assert_allclose(weights[0, :3], [e / (2 * e + e**2), e / (2 * e + e**2), e**2 / (2 * e + e**2)], rtol=1e-6)
    np.testing.assert_allclose(weights[:, :3], _softmax(EXPECTED_SCORES), rtol=1e-6)
    assert np.all(weights[:, 3] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)


def test_context_is_the_weighted_sum_of_the_annotations():
    context, _weights = _layer(with_query=True)(KEYS, query=QUERIES, mask=MASK)
    alpha = _softmax(EXPECTED_SCORES)
    # c_i = sum_j alpha_ij h_j over the three real annotations (1,0), (0,1), (1,1).
    expected = np.stack([alpha[:, 0] + alpha[:, 2], alpha[:, 1] + alpha[:, 2]], axis=-1)
    np.testing.assert_allclose(np.asarray(context)[0], expected, rtol=1e-6)


def test_without_a_query_the_learned_bias_acts_as_the_query():
    # b = (A, 0) shifts every key exactly as W_a s_2 did, so the scores are row 2 of the example.
    layer = _layer(with_query=False, bias=(A, 0.0))
    np.testing.assert_allclose(np.asarray(layer.alignment_scores(KEYS))[0, 0, :3], EXPECTED_SCORES[1], atol=1e-6)
    context, weights = layer(KEYS, mask=MASK)
    assert context.shape == (1, 1, 2) and weights.shape == (1, 1, 4)
    np.testing.assert_allclose(np.asarray(weights)[0, 0], [*_softmax(EXPECTED_SCORES[1]), 0.0], rtol=1e-6)
    assert len(layer.weights) == 3  # U_a, b, v_a: no W_a without a query


def reference(keys, query, mask, U_a, b, v_a, W_a):
    """Bahdanau et al. (2015) eqs. (5)-(6), written as loops over i and j."""
    batch, T_x, _ = keys.shape
    T_y = query.shape[1]
    weights = np.zeros((batch, T_y, T_x))
    context = np.zeros((batch, T_y, keys.shape[-1]))
    for n in range(batch):
        real = np.flatnonzero(mask[n])
        for i in range(T_y):
            e = np.array([v_a @ np.tanh(W_a.T @ query[n, i] + U_a.T @ keys[n, j] + b) for j in real])
            weights[n, i, real] = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
            context[n, i] = weights[n, i] @ keys[n]
    return context, weights


@pytest.mark.parametrize("seed", [0, 1])
def test_random_batches_match_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(3, 5, 4)).astype(np.float32)
    query = rng.normal(size=(3, 2, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)
    layer = AdditiveAttention(units=7)
    context, weights = (np.asarray(t) for t in layer(keys, query=query, mask=mask))
    U_a, b, v_a, W_a = (np.asarray(w) for w in (layer.U_a, layer.b, layer.v_a, layer.W_a))
    expected_context, expected_weights = reference(keys, query, mask, U_a, b, v_a, W_a)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(context, expected_context, atol=1e-5)
    assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)


def test_more_padding_changes_nothing():
    layer = _layer(with_query=True)
    padded_keys = np.concatenate([KEYS, np.full((1, 6, 2), 9.0, dtype=np.float32)], axis=1)
    padded_mask = np.concatenate([MASK, np.zeros((1, 6), dtype=bool)], axis=1)
    short_context, short_weights = layer(KEYS, query=QUERIES, mask=MASK)
    long_context, long_weights = layer(padded_keys, query=QUERIES, mask=padded_mask)
    np.testing.assert_allclose(np.asarray(long_weights)[..., :4], np.asarray(short_weights), atol=1e-7)
    np.testing.assert_allclose(np.asarray(long_context), np.asarray(short_context), atol=1e-7)
