"""Batched, compiled calls of a model's two explanation hooks, shared by every session.

Every classifier family exposes ``embed(ids)`` and ``forward_embedded(embeds, mask, head_mask)``
(see ``models.hf_common.TransformerClassifier``). A ``Runner`` wraps them in TensorFlow
functions compiled once per (padded length, batch size), as ``models.hf_common.BucketedFunction``
does for predictions: probabilities for many id rows at once (each row with its own head mask),
probabilities of embedded rows, and gradients of one class's probability. Nothing here changes the model: head masks and
embeddings are inputs of each call, so concurrent sessions never see each other's ablations.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.hf_common import BucketedFunction

_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The smallest probability whose logarithm a contrast differentiates (float32 keeps it normal).
LOG_FLOOR = 1e-30
_RUNNERS_LOCK = threading.Lock()


def runner_for(model) -> Runner:
    """The one Runner of ``model`` (built on first use, then shared by every thread)."""
    with _RUNNERS_LOCK:
        found = _RUNNERS.get(model)
        if found is None:
            found = _RUNNERS[model] = Runner(model)
        return found


def objective_weights(rows: int, classes: int, target: int, foil: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-row weights (probabilities, log-probabilities), each (rows, classes), of the objective
    Σ w_c p_c + Σ v_c log p_c the gradient passes differentiate: p(target) alone, or with a foil
    log p(target) − log p(foil)."""
    prob_weights = np.zeros((rows, classes), dtype=np.float32)
    log_weights = np.zeros((rows, classes), dtype=np.float32)
    if foil is None:
        prob_weights[:, target] = 1.0
    else:
        log_weights[:, target], log_weights[:, foil] = 1.0, -1.0
    return prob_weights, log_weights


@dataclass(frozen=True)
class Gradients:
    """One forward and backward pass over a batch of embedded rows, for one target class.

    ``probs`` (batch, classes); ``embeds`` (batch, length, width) the inputs; ``d_embeds`` the
    gradient of the explained quantity with respect to them: the target's probability, or with a
    foil log p(target) − log p(foil). With ``full``: ``attentions``
    (batch, layers, heads, queries, length) and ``d_attentions`` their gradients, ``d_heads``
    (batch, layers, heads) the gradient with respect to a head mask at 1 (None when the model
    cannot take one).
    """

    probs: np.ndarray
    embeds: np.ndarray
    d_embeds: np.ndarray
    attentions: np.ndarray | None = None
    d_attentions: np.ndarray | None = None
    d_heads: np.ndarray | None = None


class Runner:
    def __init__(self, model) -> None:
        self.model = model
        self.grid = tuple(model.attention_grid)
        self.takes_head_mask = not model.head_mask_unsupported
        self._plain = BucketedFunction(self._probs_plain, model.max_tokens, model.jit_compile, model.pad_id)
        self._masked = BucketedFunction(self._probs_masked, model.max_tokens, model.jit_compile, model.pad_id, extra_shapes=(self.grid,))
        self._functions: dict[tuple[str, int, int], object] = {}
        self._lock = threading.Lock()

    def _probs_plain(self, ids, mask):
        return self.model.forward_embedded(self.model.embed(ids), mask)[0]

    def _probs_masked(self, ids, mask, heads):
        return self.model.forward_embedded(self.model.embed(ids), mask, heads)[0]

    def probs(self, rows: Sequence[Sequence[int]], head_masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Class probabilities (len(rows), classes) of id rows, each with its own head mask if given."""
        if not rows:
            return np.zeros((0, len(self.model.labels)), dtype=np.float32)
        if head_masks is None:
            outputs = self._plain(rows)
        else:
            outputs = self._masked(rows, extras=[head_masks])
        return np.stack([probs for (probs,) in outputs])

    def embed(self, ids: Sequence[int]) -> np.ndarray:
        """The token embeddings (length, width) of one row of ids."""
        return np.asarray(self.model.embed(np.asarray([ids], dtype=np.int32)))[0]

    def bucket(self, length: int) -> int:
        return self._plain.bucket(max(1, length))

    def embedded_probs(self, embeds: np.ndarray, length: int) -> np.ndarray:
        """Class probabilities (rows, classes) of embedded rows (rows, length, width), forward only."""
        (probs,) = self._run("probs", embeds, length, 0)
        return probs

    def gradients(self, embeds: np.ndarray, length: int, target: int, *, full: bool = False, foil: int | None = None) -> Gradients:
        """Gradients of class ``target``'s probability, or with ``foil`` of log p(target) − log p(foil),
        for embedded rows (rows, length, width).

        With ``full`` the outputs also hold every layer's attention, its gradient and the
        gradient with respect to a head mask at 1; such passes run one row at a time.
        """
        embeds = np.asarray(embeds, dtype=np.float32)
        outputs = self._run("full" if full else "gradients", embeds, length, target, foil)
        probs, d_embeds = outputs[0], outputs[1][:, :length]
        if not full:
            return Gradients(probs=probs, embeds=embeds, d_embeds=d_embeds)
        attentions, d_attentions = outputs[2][..., :length], outputs[3][..., :length]
        queries = length if self.model.self_attention else attentions.shape[-2]
        d_heads = outputs[4] if self.takes_head_mask else None
        return Gradients(probs, embeds, d_embeds, attentions[..., :queries, :], d_attentions[..., :queries, :], d_heads)

    def _run(self, mode: str, embeds: np.ndarray, length: int, target: int, foil: int | None = None) -> list[np.ndarray]:
        """``mode``'s outputs for embedded rows padded to the bucket of ``length``, in chunks of at
        most TOKENS_PER_BATCH tokens (one row per chunk for "full"), as BucketedFunction batches."""
        embeds = np.asarray(embeds, dtype=np.float32)
        rows, _, width = embeds.shape
        padded_length = self.bucket(length)
        pieces: list[tuple[np.ndarray, ...]] = []
        for start, stop, size in self.calls(mode, length, rows):
            part = embeds[start:stop]
            batch = np.zeros((size, padded_length, width), dtype=np.float32)
            batch[: len(part), :length] = part
            batch[len(part) :, :length] = part[-1]  # filler rows repeat the last one and are dropped
            weights = objective_weights(size, len(self.model.labels), target, foil)
            mask = np.zeros((size, padded_length), dtype=np.int32)
            mask[:, :length] = 1
            outputs = self._function(mode, padded_length, size, width)(batch, mask, *weights)
            pieces.append(tuple(np.asarray(o)[: len(part)] for o in outputs))
        return [np.concatenate(column) for column in zip(*pieces)]

    def calls(self, mode: str, length: int, rows: int) -> list[tuple[int, int, int]]:
        """(first row, end row, padded batch size) of each compiled call ``_run`` makes for ``rows``
        embedded rows of ``length`` tokens: chunks of at most TOKENS_PER_BATCH tokens, one row per
        chunk for "full"."""
        limit = 1 if mode == "full" else BucketedFunction.rows_per_batch(self.bucket(length), rows)

        def plan(size: int) -> list[tuple[int, int, int]]:
            return [(start, min(rows, start + size), BucketedFunction.padded_rows(min(rows, start + size) - start, limit)) for start in range(0, rows, size)]

        # Full chunks then the rest, or the rows spread evenly over as many chunks, whichever runs
        # fewer filler rows: 32 integrated-gradients rows of 96 tokens (21 a chunk at most) run as
        # 16 + 16, not 21 + 11 padded to 16; 33 rows of 64 tokens as 32 + 1, not 17 + 16 padded to 32 + 16.
        chunks = -(-rows // limit)
        plans = [plan(limit), plan(-(-rows // chunks))] if rows else [[]]
        return min(plans, key=lambda calls: (sum(size for _, _, size in calls), len(calls)))

    def warm(self, mode: str, length: int, rows: int) -> None:
        """Trace, and run once on filler, every function ``mode`` ("probs", "gradients", "full")
        calls for ``rows`` embedded rows of ``length`` tokens, ahead of a user's first call."""
        padded_length, width = self.bucket(length), self.embed([self.model.pad_id]).shape[-1]
        for size in sorted({size for _, _, size in self.calls(mode, length, rows)}):
            mask = np.zeros((size, padded_length), dtype=np.int32)
            mask[:, 0] = 1
            weights = objective_weights(size, len(self.model.labels), 0, None)
            self._function(mode, padded_length, size, width)(np.zeros((size, padded_length, width), dtype=np.float32), mask, *weights)

    def warm_probs(self, length: int, head_masks: int = 0) -> None:
        """Trace ``probs`` at the padded length of ``length`` tokens: every batch size it may run
        plain id rows at, or with ``head_masks`` the batches of that many rows with a head mask each
        (``single_head_effects``)."""
        bucket = self.bucket(length)
        if head_masks:
            for size in sorted({size for _, size, _ in self._masked.plan([length] * head_masks)}):
                self._masked.warm(bucket, size)
        else:
            for size in self._plain.batch_sizes(bucket):
                self._plain.warm(bucket, size)

    def _function(self, mode: str, length: int, batch: int, width: int):
        key = (mode, length, batch)
        with self._lock:
            if key not in self._functions:
                import tensorflow as tf

                specs = [
                    tf.TensorSpec([batch, length, width], tf.float32),
                    tf.TensorSpec([batch, length], tf.int32),
                    tf.TensorSpec([batch, len(self.model.labels)], tf.float32),
                    tf.TensorSpec([batch, len(self.model.labels)], tf.float32),
                ]
                step = functools.partial(self._step, mode=mode)
                self._functions[key] = tf.function(step, input_signature=specs, jit_compile=self.model.jit_compile)
            return self._functions[key]

    def _step(self, embeds, mask, prob_weights, log_weights, *, mode: str):
        import tensorflow as tf

        if mode == "probs":
            return (self.model.forward_embedded(embeds, mask)[0],)
        full = mode == "full"
        heads = tf.ones([tf.shape(embeds)[0], *self.grid]) if full and self.takes_head_mask else None
        # Only the inputs are differentiated, never the weights.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(embeds)
            if heads is not None:
                tape.watch(heads)
            probs, attentions = self.model.forward_embedded(embeds, mask, heads)
            # Rows never interact, so the gradient of the sum is each row's own gradient. One
            # function serves both objectives (``objective_weights``), so a contrast traces nothing
            # new; the floor keeps log 0 finite where a weight of 0 multiplies it.
            log_probs = tf.math.log(tf.maximum(probs, LOG_FLOOR))
            objective = tf.reduce_sum(probs * prob_weights) + tf.reduce_sum(log_probs * log_weights)
        if not full:
            return probs, tape.gradient(objective, embeds)
        sources = [embeds, list(attentions)] + ([heads] if heads is not None else [])
        # A family may return attention that is not on the computation's path (the RNN's
        # reshaped row); its gradient is then zero, not None.
        grads = tape.gradient(objective, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        outputs = [probs, grads[0], tf.stack(attentions, axis=1), tf.stack(grads[1], axis=1)]
        if heads is not None:
            outputs.append(grads[2])
        return tuple(outputs)
