"""Attention rollout: attention composed across layers, residual connections included."""

from __future__ import annotations

import numpy as np

from models.maths.compose import compose, residual_mixing


def attention_rollout(attentions: np.ndarray, residual: bool = True) -> np.ndarray:
    """How much each token's representation at each layer draws on each input token.

    Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
    ACL): average the heads of every layer, add the identity for the residual connection and
    renormalise the rows, then multiply the layers up, so that entry [l, i, j] is the share of
    input token j in token i after layer l + 1. Follows ``compute_joint_attention`` of the
    authors' reference code (github.com/samiraabnar/attention_flow).

    ``attentions`` is (layers, heads, T, T) self-attention; returns (layers, T, T) whose rows
    each sum to 1, over the model's own tokens (merge word pieces afterwards, see
    ``models.maths.compose``).
    """
    return compose(residual_mixing(attentions, residual))
