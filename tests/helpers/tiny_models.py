"""A tiny self-attention classifier with the explanation hooks, and a float64 numpy twin.

One layer of two heads over 3-dimensional word embeddings, mean pooling over the words and a
softmax over two classes: every explanation of it can be checked against the numpy
implementation (central finite differences in float64) or by hand.
"""

from __future__ import annotations

import numpy as np

from models.base import AttentionModel, check_text
from models.contract import Prediction
from models.hf_common import Tokenized
from models.maths.tokens import WORDS

WORDS_KNOWN = ("good", "bad", "movie", "plot", "great", "the")
WIDTH, HEADS, KEY = 3, 2, 2
MASKED = -1e9


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embeddings": rng.normal(size=(len(WORDS_KNOWN) + 1, WIDTH)),
        "query": rng.normal(size=(HEADS, WIDTH, KEY)),
        "key": rng.normal(size=(HEADS, WIDTH, KEY)),
        "value": rng.normal(size=(HEADS, WIDTH, KEY)),
        "output": rng.normal(size=(HEADS, KEY, 2)),
    }


def numpy_forward(weights: dict, embeds: np.ndarray, head_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probs (2,), attention (heads, T, T)) of one unpadded row of embeddings (T, WIDTH), float64."""
    embeds = np.asarray(embeds, dtype=np.float64)
    q = np.einsum("tw,hwd->htd", embeds, weights["query"])
    k = np.einsum("tw,hwd->htd", embeds, weights["key"])
    v = np.einsum("tw,hwd->htd", embeds, weights["value"])
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(KEY)
    attention = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attention /= attention.sum(axis=-1, keepdims=True)
    heads = attention @ v
    if head_mask is not None:
        heads = heads * np.asarray(head_mask, dtype=np.float64)[0][:, None, None]
    logits = np.einsum("htd,hdc->c", heads, weights["output"]) / len(embeds)
    probs = np.exp(logits - logits.max())
    return probs / probs.sum(), attention


class TinyAttentionClassifier(AttentionModel):
    model_id = "tiny-attention"
    labels = ("negative", "positive")
    max_tokens = 16
    subword_scheme = WORDS
    readout = "mean"
    self_attention = True
    ablation_mode = "heads"
    head_mask_unsupported = None
    pad_id = 0
    baseline_id = None
    baseline_token = None
    baseline_description = "zero vectors in place of the word embeddings"
    jit_compile = False
    attention_grid = (1, HEADS)

    def __init__(self, seed: int = 0):
        self.weights = _weights(seed)

    def explain_tokens(self, text: str) -> Tokenized:
        words = tuple(check_text(text).split())
        ids = tuple(WORDS_KNOWN.index(word) + 1 for word in words)
        return Tokenized(ids=ids, tokens=words, special=(False,) * len(words), dropped=0)

    def embed(self, ids):
        import tensorflow as tf

        return tf.gather(tf.constant(self.weights["embeddings"], tf.float32), ids)

    def forward_embedded(self, embeds, mask, head_mask=None):
        import tensorflow as tf

        w = {name: tf.constant(value, tf.float32) for name, value in self.weights.items()}
        q = tf.einsum("btw,hwd->bhtd", embeds, w["query"])
        k = tf.einsum("btw,hwd->bhtd", embeds, w["key"])
        v = tf.einsum("btw,hwd->bhtd", embeds, w["value"])
        real = tf.cast(mask, tf.float32)
        scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(KEY) + (1.0 - real[:, None, None, :]) * MASKED
        attention = tf.nn.softmax(scores, axis=-1)
        heads = tf.matmul(attention, v)
        if head_mask is not None:
            heads = heads * head_mask[:, 0, :, None, None]
        pooled = tf.reduce_sum(heads * real[:, None, :, None], axis=2) / tf.reduce_sum(real, axis=1)[:, None, None]
        return tf.nn.softmax(tf.einsum("bhd,hdc->bc", pooled, w["output"]), axis=-1), [attention]

    def _prediction(self, row: Tokenized, head_mask: np.ndarray) -> Prediction:
        ids = np.asarray([row.ids], dtype=np.int32)
        probs, attentions = self.forward_embedded(self.embed(ids), np.ones_like(ids), head_mask[np.newaxis])
        return Prediction(
            model=self.model_id,
            labels=self.labels,
            probs=np.asarray(probs)[0],
            source_tokens=row.tokens,
            target_tokens=row.tokens,
            attentions=np.asarray(attentions[0])[0][np.newaxis],
            self_attention=True,
            readout=self.readout,
        )

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        return [self._prediction(self.explain_tokens(text), np.ones(self.attention_grid, dtype=np.float32)) for text in texts]

    def predict_with_head_mask(self, text: str, head_mask: np.ndarray) -> Prediction:
        return self._prediction(self.explain_tokens(text), np.asarray(head_mask, dtype=np.float32))


def finite_difference_gradient(function, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function of an array, in float64."""
    x = np.asarray(x, dtype=np.float64)
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        gradient[index] = (function(x + step) - function(x - step)) / (2 * eps)
    return gradient
