"""Attention rollout: attention composed across layers, residual connections included."""

from __future__ import annotations

import numpy as np


def attention_rollout(attentions: np.ndarray, residual: bool = True) -> np.ndarray:
    """How much each token's representation at each layer draws on each input token.

    Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
    ACL): average the heads of every layer, add the identity for the residual connection and
    renormalise the rows, then multiply the layers up, so that entry [l, i, j] is the share of
    input token j in token i after layer l + 1. Follows ``compute_joint_attention`` of the
    authors' reference code (github.com/samiraabnar/attention_flow).

    ``attentions`` is (layers, heads, T, T) self-attention; returns (layers, T, T) whose rows
    each sum to 1.
    """
    attentions = np.asarray(attentions, dtype=np.float64)
    if attentions.ndim != 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ValueError(f"rollout needs square self-attention (layers, heads, T, T), got shape {attentions.shape}")
    per_layer = attentions.mean(axis=1)
    if residual:
        per_layer = per_layer + np.eye(per_layer.shape[-1])
        per_layer = per_layer / per_layer.sum(axis=-1, keepdims=True)
    rolled = np.empty_like(per_layer)
    rolled[0] = per_layer[0]
    for layer in range(1, len(per_layer)):
        rolled[layer] = per_layer[layer] @ rolled[layer - 1]
    return rolled
