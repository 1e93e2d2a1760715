"""Bahdanau (additive) attention as one small Keras 3 layer.

Bahdanau, Cho & Bengio (2015), "Neural Machine Translation by Jointly Learning to Align and
Translate", ICLR. In the paper's notation, for the decoder state ``s_{i-1}`` and the encoder
annotations ``h_j`` (j = 1..T_x):

    e_ij     = a(s_{i-1}, h_j) = v_a^T tanh(W_a s_{i-1} + U_a h_j + b)    (Appendix A.1.2)
    alpha_ij = exp(e_ij) / sum_k exp(e_ik)                                  (eq. 6)
    c_i      = sum_j alpha_ij h_j                                           (eq. 5)

The paper writes the alignment model without the bias ``b``; it is kept here because without a
query (below) it is the only thing the projection can shift by.

Without a query the same layer is attention *pooling* for a classifier: the ``W_a s_{i-1}`` term
disappears and the one learned query lives in ``b`` and ``v_a``, i.e. ``e_j = v_a^T tanh(U_a h_j
+ b)``, the form of Raffel & Ellis (2015) and of Yang et al. (2016)'s word attention.

Padding is masked out of the softmax, so its weights are exactly 0 and the weights over the real
tokens sum to 1; what the app draws is then exactly what the model used.
"""

from __future__ import annotations

import keras
from keras import ops

# Scores are bounded by sum(|v_a|) (tanh lies in [-1, 1]), so this is far below any real score
# and exp() of it underflows to exactly 0.0 in float32: masked weights are zero, not tiny.
MASKED_SCORE = -1e9


class AdditiveAttention(keras.layers.Layer):
    """Additive attention of Bahdanau et al. (2015), eqs. (5)-(6).

    Call as ``context, weights = layer(keys, query=None, mask=None, learned=None)`` with

    - ``keys``: the annotations h, shape (batch, T_x, key_dim);
    - ``query``: the states s_{i-1}, shape (batch, T_y, query_dim), or None for one learned query
      (T_y = 1);
    - ``mask``: bool (batch, T_x), True for real tokens;
    - ``learned``: None, or (batch,) blending the weights with uniform attention
      (``blend_with_uniform``), for ablation.

    Returns ``context`` (batch, T_y, key_dim), the c_i, and ``weights`` (batch, T_y, T_x), the
    alpha_ij. ``alignment_scores`` gives the e_ij before the softmax.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        # The key mask is consumed here (it zeroes weights); nothing downstream is over T_x.
        self.supports_masking = True

    def build(self, keys_shape, query_shape=None):
        self.U_a = self.add_weight(shape=(keys_shape[-1], self.units), initializer="glorot_uniform", name="U_a")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")
        self.v_a = self.add_weight(shape=(self.units,), initializer="glorot_uniform", name="v_a")
        self.W_a = None
        if query_shape is not None:
            self.W_a = self.add_weight(shape=(query_shape[-1], self.units), initializer="glorot_uniform", name="W_a")

    def alignment_scores(self, keys, query=None):
        """e_ij, shape (batch, T_y, T_x) (T_y = 1 without a query)."""
        projected = ops.expand_dims(ops.matmul(keys, self.U_a) + self.b, axis=1)  # (batch, 1, T_x, units)
        if query is not None:
            projected = projected + ops.expand_dims(ops.matmul(query, self.W_a), axis=2)  # (batch, T_y, T_x, units)
        return ops.einsum("bytu,u->byt", ops.tanh(projected), self.v_a)

    def call(self, keys, query=None, mask=None, learned=None):
        scores = self.alignment_scores(keys, query)
        if mask is not None:
            scores = ops.where(ops.expand_dims(ops.cast(mask, "bool"), axis=1), scores, MASKED_SCORE)
        weights = ops.softmax(scores, axis=-1)
        if learned is not None:
            weights = self.blend_with_uniform(weights, keys, mask, learned)
        return ops.matmul(weights, keys), weights

    @staticmethod
    def blend_with_uniform(weights, keys, mask, learned):
        """``learned`` · alpha + (1 − ``learned``) · 1/T over the real tokens, per row of the batch.

        ``learned`` (batch,) is 1 for the learned weights and 0 for uniform attention, the
        baseline of Wiegreffe & Pinter (2019), "Attention is not not Explanation" (EMNLP, sec.
        3.2): if the weights can be replaced by 1/T without changing the prediction, they are
        not what the prediction depends on. With ``learned`` = 1 the weights are unchanged.
        """
        if mask is None:
            mask = ops.ones(ops.shape(keys)[:2])
        real = ops.expand_dims(ops.cast(mask, weights.dtype), axis=1)
        uniform = real / ops.sum(real, axis=-1, keepdims=True)
        learned = ops.reshape(ops.cast(learned, weights.dtype), (-1, 1, 1))
        return learned * weights + (1.0 - learned) * uniform

    def compute_mask(self, inputs, previous_mask):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}
