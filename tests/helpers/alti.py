"""A naive ALTI reference shared by the tests of models.maths.norms and models.value_aware."""

from __future__ import annotations

import numpy as np


def alti_reference(hidden, attention, weights):
    """ALTI written out token pair by token pair, as in the paper; also returns the vectors' sum."""
    heads, width = attention.shape[0], hidden.shape[1]
    size, step = len(hidden), width // heads
    values = hidden @ weights.value_kernel + weights.value_bias
    f = np.array([[values[j, h * step : (h + 1) * step] @ weights.dense_kernel[h * step : (h + 1) * step] for j in range(size)] for h in range(heads)])
    contributions, rebuilt = np.zeros((size, size)), np.zeros((size, width))
    for i in range(size):
        z = sum(attention[h, i, j] * f[h, j] for h in range(heads) for j in range(size)) + weights.dense_bias + hidden[i]
        sigma = np.sqrt(z.var() + weights.ln1_eps)
        y = (z - z.mean()) / sigma * weights.ln1_gamma + weights.ln1_beta
        for j in range(size):
            vector = sum(attention[h, i, j] * f[h, j] for h in range(heads)) + (hidden[j] if i == j else 0.0)
            transformed = (vector - vector.mean()) * weights.ln1_gamma / sigma
            rebuilt[i] += transformed
            contributions[i, j] = max(0.0, np.abs(y).sum() - np.abs(y - transformed).sum())
        bias = weights.dense_bias
        rebuilt[i] += (bias - bias.mean()) * weights.ln1_gamma / sigma + weights.ln1_beta
    with np.errstate(invalid="ignore"):
        return contributions / contributions.sum(axis=1, keepdims=True), rebuilt
