"""Attention flow (models.maths.flow) against hand-worked graphs and networkx's maximum flow."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from models.maths.flow import FLOW_SCALE, attention_flow
from models.maths.rollout import attention_rollout


def _weights(attentions: np.ndarray) -> np.ndarray:
    """The graph's edge weights, written out independently of the module: (mean_h A + I), rows renormalised."""
    mean = np.asarray(attentions, dtype=np.float64).mean(axis=1)
    augmented = mean + np.eye(mean.shape[-1])
    return augmented / augmented.sum(axis=-1, keepdims=True)


def _networkx_flows(attentions: np.ndarray, rows, through_layer: int) -> np.ndarray:
    """Abnar & Zuidema's layered graph in networkx (float capacities), one maximum flow per pair."""
    weights = _weights(attentions)[:through_layer]
    size = weights.shape[-1]
    graph = nx.DiGraph()
    for layer in range(1, through_layer + 1):
        for i in range(size):
            for j in range(size):
                graph.add_edge((layer - 1, j), (layer, i), capacity=weights[layer - 1, i, j])
    return np.array([[nx.maximum_flow_value(graph, (0, j), (through_layer, row)) for j in range(size)] for row in rows])


def _rounding_bound(through_layer: int, size: int, scale: int) -> float:
    """The documented bound: (edges of the per-pair graph) / (2 · scale); exact below three layers."""
    if through_layer <= 2:
        return 1e-12
    return ((through_layer - 2) * size**2 + 2 * size) / (2 * scale)


def _random_attentions(rng, layers: int, heads: int, size: int) -> np.ndarray:
    return rng.dirichlet(np.full(size, rng.uniform(0.1, 2.0)), size=(layers, heads, size))


def test_hand_worked_two_layers_three_tokens():
    # One head per layer; with the residual, Â = (A + I) / 2 since A's rows sum to 1.
    layer1 = np.array([[1.0, 0.0, 0.0], [0.6, 0.4, 0.0], [0.2, 0.2, 0.6]])
    layer2 = np.array([[0.2, 0.4, 0.4], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    attentions = np.stack([layer1, layer2])[:, np.newaxis]
    # Â1 = [[1, 0, 0], [0.3, 0.7, 0], [0.1, 0.1, 0.8]];  row 0 of Â2 = [0.6, 0.2, 0.2].
    # Every path from input j to token 0 of layer 2 crosses one middle token k, and different k
    # share no edge, so flow(j) = Σ_k min(Â1[k, j], Â2[0, k]):
    #   j = 0: min(1, 0.6) + min(0.3, 0.2) + min(0.1, 0.2) = 0.6 + 0.2 + 0.1 = 0.9
    #   j = 1: min(0, 0.6) + min(0.7, 0.2) + min(0.1, 0.2) = 0 + 0.2 + 0.1   = 0.3
    #   j = 2: min(0, 0.6) + min(0, 0.2)   + min(0.8, 0.2) = 0 + 0 + 0.2     = 0.2
    # Rollout multiplies instead: Â2[0] @ Â1 = [0.68, 0.16, 0.16].
    flows = attention_flow(attentions, [0])
    np.testing.assert_allclose(flows, [[0.9, 0.3, 0.2]], atol=1e-12)
    np.testing.assert_allclose(_networkx_flows(attentions, [0], 2), [[0.9, 0.3, 0.2]], atol=1e-12)
    np.testing.assert_allclose(attention_rollout(attentions)[1, 0], [0.68, 0.16, 0.16], atol=1e-12)
    # Through layer 1 the only path is the edge itself.
    np.testing.assert_allclose(attention_flow(attentions, [1, 2], through_layer=1), [[0.3, 0.7, 0.0], [0.1, 0.1, 0.8]], atol=1e-12)


@pytest.mark.parametrize("seed", range(24))
def test_equals_networkx_maximum_flow_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    layers, heads, size = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 7))
    attentions = _random_attentions(rng, layers, heads, size)
    through_layer = int(rng.integers(1, layers + 1))
    rows = [int(r) for r in rng.choice(size, size=int(rng.integers(1, size + 1)), replace=False)]
    flows = attention_flow(attentions, rows, through_layer)
    expected = _networkx_flows(attentions, rows, through_layer)
    assert np.abs(flows - expected).max() <= _rounding_bound(through_layer, size, FLOW_SCALE)


@pytest.mark.parametrize("seed", range(4))
def test_coarse_scale_stays_within_the_documented_rounding_bound(seed):
    rng = np.random.default_rng(100 + seed)
    attentions = _random_attentions(rng, layers=4, heads=2, size=5)
    scale = 1000
    flows = attention_flow(attentions, [0, 3], scale=scale)
    error = np.abs(flows - _networkx_flows(attentions, [0, 3], 4)).max()
    assert 0 < error <= _rounding_bound(4, 5, scale)


def test_one_layer_and_identity_graphs_equal_rollout():
    rng = np.random.default_rng(7)
    one_layer = _random_attentions(rng, layers=1, heads=3, size=6)
    np.testing.assert_allclose(attention_flow(one_layer, range(6)), attention_rollout(one_layer)[0], atol=1e-12)
    # Every token attending only to itself: each token's information stays its own.
    identity = np.broadcast_to(np.eye(5), (4, 2, 5, 5))
    np.testing.assert_allclose(attention_flow(identity, range(5)), np.eye(5), atol=1e-9)
    np.testing.assert_allclose(attention_rollout(identity)[-1], np.eye(5), atol=1e-12)


@pytest.mark.parametrize(("size", "layers"), [(5, 3), (40, 4)])
def test_cls_parking_graph_known_flows(size, layers):
    # Every token attends only to token 0 ([CLS]): Â[i, i] = Â[i, 0] = 0.5 for i > 0 and Â[0, 0] = 1.
    attentions = np.zeros((layers, 1, size, size))
    attentions[:, :, :, 0] = 1.0
    flows = attention_flow(attentions, range(size))
    # Token u > 0 keeps its own information only along the chain u -> u -> ... (capacity 0.5), and
    # receives token 0's along two edge-disjoint paths, 0 -> 0 -> ... -> 0 -> u and 0 -> u -> ... -> u,
    # which fill both edges into u (0.5 + 0.5). No other token can reach u. Rollout instead gives
    # 1 - 0.5^layers and 0.5^layers.
    expected = np.zeros((size, size))
    expected[:, 0] = 1.0
    expected[np.arange(1, size), np.arange(1, size)] = 0.5
    np.testing.assert_allclose(flows, expected, atol=_rounding_bound(layers, size, FLOW_SCALE))
    np.testing.assert_allclose(attention_rollout(attentions)[-1, 1, :2], [1 - 0.5**layers, 0.5**layers], atol=1e-12)


def test_shape_range_and_bounds_on_a_larger_graph():
    rng = np.random.default_rng(3)
    attentions = _random_attentions(rng, layers=5, heads=4, size=12).astype(np.float32)
    rows = [0, 4, 11]
    flows = attention_flow(attentions, rows, through_layer=4)
    assert flows.shape == (3, 12)
    bound = _rounding_bound(4, 12, FLOW_SCALE)
    weights = _weights(attentions)
    # A flow cannot exceed what leaves its input token or what enters its query token (1).
    assert np.all(flows >= -bound)
    assert np.all(flows <= np.minimum(weights[0].sum(axis=0), 1.0)[np.newaxis, :] + bound)
    # Rollout's path products form a feasible flow, so the maximum flow is never below rollout.
    assert np.all(flows >= attention_rollout(attentions)[3][rows] - bound)


def test_progress_reports_every_maximum_flow():
    rng = np.random.default_rng(5)
    calls = []
    attention_flow(_random_attentions(rng, layers=3, heads=1, size=4), [0, 1], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 8) for done in range(1, 9)]
    calls.clear()
    attention_flow(_random_attentions(rng, layers=2, heads=1, size=4), [0], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 4)]


def test_bad_input_is_refused():
    attentions = np.full((3, 2, 4, 4), 0.25)
    with pytest.raises(ValueError, match="square"):
        attention_flow(np.full((3, 2, 4, 5), 0.2), [0])
    with pytest.raises(ValueError, match="square"):
        attention_flow(np.full((2, 4, 4), 0.25), [0])
    for rows in ([4], [-1], [True], [0.5]):
        with pytest.raises(ValueError, match="query rows"):
            attention_flow(attentions, rows)
    for layer in (0, 4, True):
        with pytest.raises(ValueError, match="through_layer"):
            attention_flow(attentions, [0], through_layer=layer)
    with pytest.raises(ValueError, match="scale"):
        attention_flow(attentions, [0], scale=2 * FLOW_SCALE)
