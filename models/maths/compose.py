"""Composing per-layer token mixing across layers: the one helper rollout, flow and ALTI share.

Order, for every composed view: compose over the model's own tokens (word pieces and special
tokens included, exactly the positions the layers mixed), and only then merge word pieces into
words and hide special tokens for display. Merging first would compose matrices the model never
applied: the mean of a word's rows mixed with the sum of its columns is not a layer's mixing.
"""

from __future__ import annotations

import numpy as np


def _square(matrices: np.ndarray, ndim: int, what: str) -> np.ndarray:
    matrices = np.asarray(matrices)
    if matrices.ndim != ndim or matrices.shape[-1] != matrices.shape[-2]:
        shape = "(layers, heads, T, T)" if ndim == 4 else "(layers, T, T)"
        raise ValueError(f"{what} needs square self-attention {shape}, got shape {matrices.shape}")
    return matrices


def residual_mixing(attentions: np.ndarray, residual: bool = True) -> np.ndarray:
    """Per-layer mixing (layers, T, T) of Abnar & Zuidema (2020): heads averaged, 0.5·A + 0.5·I.

    ``attentions`` is (layers, heads, T, T) self-attention. With ``residual`` the identity is
    added for the residual connection and every row renormalised (their ``compute_joint_attention``
    and the capacities of their flow graph); without it, the head average alone.
    """
    # Averaged in float64 as it is read: a float64 copy of a 512-token MiniLM's (6, 12, T, T) float16
    # store first would be 151 MB and most of rollout's time.
    per_layer: np.ndarray = _square(attentions, 4, "attention composition").mean(axis=1, dtype=np.float64)
    if residual:
        per_layer = per_layer + np.eye(per_layer.shape[-1])
        per_layer = per_layer / per_layer.sum(axis=-1, keepdims=True)
    return per_layer


def compose(mixing: np.ndarray) -> np.ndarray:
    """Mixing composed through the layers (layers, T, T): ``[l] = M_l @ M_(l-1) @ ... @ M_1``.

    Entry [l, i, j] is how much of input token j reaches token i after layer l + 1, when each
    layer's row i says how token i mixes the previous layer's tokens.
    """
    mixing = _square(mixing, 3, "composition").astype(np.float64, copy=False)
    composed = np.empty_like(mixing)
    composed[0] = mixing[0]
    for layer in range(1, len(mixing)):
        composed[layer] = mixing[layer] @ composed[layer - 1]
    return composed
