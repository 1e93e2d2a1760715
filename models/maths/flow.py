"""Attention flow: how much of each input token can reach a token of a later layer.

Abnar and Zuidema (2020), "Quantifying Attention Flow in Transformers" (ACL), treat the layers
of a transformer as a graph: a node per token per layer (layer 0 = the input tokens), and an
edge from token j in layer l - 1 to token i in layer l whose capacity is the attention of i to
j in layer l, averaged over the heads, with the residual connection added as 0.5·A + 0.5·I and
each row renormalised (the same matrices as rollout, ``models.maths.rollout``). The flow from
input token j to token i of layer l is the maximum flow from j to i through that graph. It
follows ``compute_flows`` of the authors' reference code (github.com/samiraabnar/attention_flow,
attention_graph_util.py), which runs one maximum flow per (input token, output token) pair.
Unlike rollout, which multiplies weights along every path, flow is limited by the narrowest
edges a token's information must pass.

The values are raw maximum flows (each at most 1). The reference code divides each output
token's flows by their sum before plotting; ``flows / flows.sum(axis=1, keepdims=True)`` does
the same, and leaves rank correlations with rollout unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from models.maths.compose import residual_mixing

# scipy's maximum_flow needs integer capacities (int32). Capacities are multiplied by
# FLOW_SCALE and rounded to the nearest integer, so each edge is off by at most
# 1 / (2 · FLOW_SCALE) ≈ 4.7e-10. A maximum flow equals the capacity of a minimum cut, so it
# is off by at most (edges in a minimum cut) / (2 · FLOW_SCALE): at most
# ((layers - 2) · T² + 2T) / (2 · FLOW_SCALE) for the graph below, which is 5.0e-5 for
# T = 128 and 7.8e-4 for T = 512 through 6 layers, and in practice about T / (2 · FLOW_SCALE)
# (< 3e-7), the cut around the input token or the query token. 2^30 is the largest power of
# two for which no flow can overflow int32: the edges into a query token carry at most
# FLOW_SCALE · 1 + T / 2.
FLOW_SCALE = 2**30


def _checked_rows(query_rows: Sequence[int], size: int) -> list[int]:
    rows = []
    for row in query_rows:
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < size:
            raise ValueError(f"query rows must be token positions 0..{size - 1}, got {row!r}")
        rows.append(int(row))
    return rows


def attention_flow(
    attentions: np.ndarray,
    query_rows: Sequence[int],
    through_layer: int | None = None,
    *,
    scale: int = FLOW_SCALE,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Maximum flow from every input token to each query token after ``through_layer`` layers.

    ``attentions`` is (layers, heads, T, T) self-attention; ``through_layer`` is 1-based and
    defaults to the last layer. Returns (len(query_rows), T): entry [r, j] is the maximum flow
    from input token j (layer 0) to token ``query_rows[r]`` at layer ``through_layer``.

    Through one layer the only path is the edge itself, and through two layers the paths from
    j to i cross distinct middle tokens k, so the flow is Σ_k min(Â₁[k, j], Â₂[i, k]); both are
    computed exactly, without scaling. From three layers on, each (input token, query token)
    pair needs its own maximum flow (scipy's Dinic), with capacities scaled by ``scale`` and
    rounded (see FLOW_SCALE for the error bound). A super-source joined to several input tokens
    would give the flow of the group, which is less than the sum of their flows whenever they
    share a narrow edge, so it is never used. What is shared is the graph: the edges between
    layers 1 and ``through_layer`` - 1 and into the query tokens are built once, each input
    token adds only its own edges into layer 1, and the other tokens of layer 0 and of the last
    layer, which no flow between the pair can use, are left out. ``progress(done, total)`` is
    called after each maximum flow.
    """
    graph = residual_mixing(attentions)
    layers, size, _ = graph.shape
    through_layer = layers if through_layer is None else through_layer
    if isinstance(through_layer, bool) or not isinstance(through_layer, (int, np.integer)) or not 1 <= through_layer <= layers:
        raise ValueError(f"through_layer must be a layer 1..{layers}, got {through_layer!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 1 <= scale <= FLOW_SCALE:
        raise ValueError(f"scale must be an integer from 1 to {FLOW_SCALE}, got {scale!r}")
    rows = _checked_rows(query_rows, size)
    graph = graph[:through_layer]
    total = len(rows) * size
    flows: np.ndarray
    if through_layer == 1:
        flows = graph[0][rows]
    elif through_layer == 2:
        # flows[r, j] = Σ_k min(Â₁[k, j], Â₂[rows[r], k])
        flows = np.minimum(graph[0][np.newaxis, :, :], graph[1][rows][:, :, np.newaxis]).sum(axis=1)
    else:
        flows = _dinic_flows(graph, rows, scale, progress)
    if progress is not None and through_layer <= 2:
        progress(total, total)
    return flows


def _dinic_flows(graph: np.ndarray, rows: list[int], scale: int, progress: Callable[[int, int], None] | None) -> np.ndarray:
    """Flows through three or more layers, one scipy maximum flow per (input token, query row).

    Node 0 is the input token of the current call, nodes 1 .. (layers - 1) · T the tokens of
    layers 1 to layers - 1, and the last len(rows) nodes the query tokens. Rows of the CSR
    matrix are nodes, columns the nodes they feed, so row k of a layer holds column k of the
    next layer's attention.
    """
    # Imported on first use: scipy.sparse.csgraph costs about 0.2 s of a server's first page.
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import maximum_flow

    layers, size, _ = graph.shape
    capacities = np.rint(graph * scale).astype(np.int32)
    middle = (layers - 1) * size
    sinks = middle + 1 + np.arange(len(rows))
    blocks = []
    for layer in range(1, layers - 1):
        block = np.zeros((size, middle + 1 + len(rows)), dtype=np.int32)
        block[:, 1 + layer * size : 1 + (layer + 1) * size] = capacities[layer].T
        blocks.append(block)
    last = np.zeros((size, middle + 1 + len(rows)), dtype=np.int32)
    last[:, sinks] = capacities[layers - 1][rows].T
    blocks.append(last)
    shared = csr_array(np.concatenate(blocks))  # drops edges rounded to zero
    shared.sort_indices()
    first_layer = capacities[0]
    flows = np.zeros((len(rows), size))
    done, total = 0, len(rows) * size
    for source in range(size):
        out = np.flatnonzero(first_layer[:, source])
        # The input token's row (its edges into layer 1), then the shared rows; the query rows
        # are sinks and have no edges out.
        indptr = np.concatenate([[0], len(out) + shared.indptr, np.full(len(rows), len(out) + shared.nnz)])
        indices = np.concatenate([1 + out, shared.indices]).astype(np.int32)
        data = np.concatenate([first_layer[out, source], shared.data])
        count = middle + 1 + len(rows)
        network = csr_array((data, indices, indptr.astype(np.int32)), shape=(count, count))
        network.has_sorted_indices = True
        for r, sink in enumerate(sinks):
            flows[r, source] = maximum_flow(network, 0, int(sink), method="dinic").flow_value / scale
            done += 1
            if progress is not None:
                progress(done, total)
    return flows
