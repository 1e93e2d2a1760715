"""The one data contract every model in Attention Lens returns.

Framework-free on purpose: the app, the visualisations and the tests only ever see numpy arrays
and tuples of strings, never a TensorFlow tensor, so a new model family plugs in by producing a
``Prediction`` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# Softmax outputs of float32 models drift by a few ulps per row; anything beyond this is a bug.
ROW_SUM_TOLERANCE = 1e-4
PROB_SUM_TOLERANCE = 1e-4
# The largest relative rounding error of float16 (half its machine epsilon, 2^-11).
FLOAT16_ROUNDING = float(np.finfo(np.float16).eps) / 2
# Which attention row the classifier's decision reads: the first token's ([CLS], BERT-style
# pooling), the mean over all rows (mean pooling), or the single row of a learned pooling query
# (the attention-pooled RNN). Models that generate text read none ("").
READOUTS = ("first", "mean", "pooling", "")


class ContractError(ValueError):
    """A model produced a Prediction that breaks the contract (a bug in the model wrapper)."""


def _owned(values: npt.ArrayLike, keep_float16: bool = False) -> np.ndarray:
    """``values`` as a float32 array that holds its own memory (float16 kept if ``keep_float16``).

    A view would keep its whole base alive for as long as the prediction is cached: a padded
    batch (the Keras transformer pads every text to 128 tokens, 70 times the attention of a short
    headline) or TensorFlow's output buffer, which TensorFlow's allocator then cannot reuse.
    """
    dtype = np.float16 if keep_float16 and np.asarray(values).dtype == np.float16 else np.float32
    array = np.asarray(values, dtype=dtype)
    return array if array.flags.owndata and array.flags.c_contiguous else array.copy()


@dataclass(frozen=True)
class Prediction:
    """What a model says about one input text, with the attention it used to say it.

    Attributes:
        model: registry id of the model that produced it.
        labels: class names, in the order of ``probs`` (empty for sequence-to-sequence models).
        probs: float array of shape (len(labels),) summing to 1 (empty for seq2seq).
        source_tokens: the tokens attended *to* (keys), one per column of each attention matrix.
        target_tokens: the tokens attending (queries), one per row; equal to ``source_tokens``
            for self-attention, generated characters for seq2seq, one learned query for a
            pooled RNN classifier.
        attentions: float32 array (layers, heads, target_len, source_len) over real tokens only
            (padding removed); every row is a probability distribution over the source tokens.
            The page's shared cache stores it as float16 (``views.compute.compact``: half the
            memory, each weight within 2^-11 of its value); maths and figures read it upcast.
        output: generated text for seq2seq models, ``None`` for classifiers.
        source_special / target_special: which tokens are special markers ([CLS], [SEP], </s>)
            so that views can hide them; all False when a model has none.
        dropped_tokens: how many input tokens were cut off because the text exceeded the model's
            maximum length (the attentions cover only what the model actually saw).
        notes: plain-language remarks the model wants the user to read next to its output
            (for example that a date model was given something that is not a date).
        self_attention: the queries are the source tokens themselves (a transformer layer), so
            attention can be composed across layers (rollout, flow, ALTI). The model says so;
            equal token lists alone do not make attention self-attention.
        readout: the row the classifier reads (``READOUTS``): "first", "mean", "pooling", or ""
            for a model that generates text.
    """

    model: str
    labels: tuple[str, ...]
    probs: np.ndarray
    source_tokens: tuple[str, ...]
    target_tokens: tuple[str, ...]
    attentions: np.ndarray
    output: str | None = None
    source_special: tuple[bool, ...] = field(default=())
    target_special: tuple[bool, ...] = field(default=())
    dropped_tokens: int = 0
    notes: tuple[str, ...] = ()
    self_attention: bool = False
    readout: str = ""

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise through object.__setattr__ once, then validate.
        set_ = object.__setattr__
        set_(self, "labels", tuple(self.labels))
        set_(self, "source_tokens", tuple(self.source_tokens))
        set_(self, "target_tokens", tuple(self.target_tokens))
        set_(self, "notes", tuple(self.notes))
        set_(self, "probs", _owned(self.probs))
        set_(self, "attentions", _owned(self.attentions, keep_float16=True))
        if not self.source_special:
            set_(self, "source_special", (False,) * len(self.source_tokens))
        if not self.target_special:
            set_(self, "target_special", (False,) * len(self.target_tokens))
        set_(self, "source_special", tuple(bool(s) for s in self.source_special))
        set_(self, "target_special", tuple(bool(s) for s in self.target_special))
        self._validate()

    def _validate(self) -> None:
        att = self.attentions
        if att.ndim != 4:
            raise ContractError(f"{self.model}: attentions must be 4-D (layers, heads, target, source), got shape {att.shape}")
        layers, heads, tgt, src = att.shape
        if layers < 1 or heads < 1:
            raise ContractError(f"{self.model}: attentions need at least one layer and one head, got shape {att.shape}")
        if src != len(self.source_tokens) or tgt != len(self.target_tokens):
            raise ContractError(
                f"{self.model}: attention shape {att.shape} does not match {len(self.target_tokens)} target and {len(self.source_tokens)} source tokens"
            )
        if len(self.source_special) != src or len(self.target_special) != tgt:
            raise ContractError(f"{self.model}: special-token flags do not match the token lists")
        if not np.all(np.isfinite(att)) or att.min(initial=0.0) < 0.0 or att.max(initial=0.0) > 1.0 + ROW_SUM_TOLERANCE:
            raise ContractError(f"{self.model}: attention weights must be finite and in [0, 1]")
        if src and tgt:
            row_sums = att.sum(axis=-1, dtype=np.float64)
            worst = float(np.abs(row_sums - 1.0).max())
            # Rounding each weight to float16 moves a row's sum by at most 2^-11 of it: once when
            # the cache stores the model's weights, once more when word pieces are merged from them.
            if worst > ROW_SUM_TOLERANCE + (2 * FLOAT16_ROUNDING if att.dtype == np.float16 else 0.0):
                raise ContractError(f"{self.model}: attention rows must sum to 1, worst row is off by {worst:.2e}")
        if self.probs.shape != (len(self.labels),):
            raise ContractError(f"{self.model}: probs shape {self.probs.shape} does not match {len(self.labels)} labels")
        if self.labels and (self.probs.min() < 0.0 or abs(float(self.probs.sum()) - 1.0) > PROB_SUM_TOLERANCE):
            raise ContractError(f"{self.model}: class probabilities must be non-negative and sum to 1")
        if self.self_attention and (self.source_tokens != self.target_tokens or self.is_seq2seq):
            raise ContractError(f"{self.model}: self-attention needs the same tokens as queries and keys")
        if self.readout not in READOUTS:
            raise ContractError(f"{self.model}: readout must be one of {READOUTS}, got {self.readout!r}")
        if bool(self.labels) != bool(self.readout):
            raise ContractError(f"{self.model}: a classifier names the attention row it reads, a text generator none")
        if self.readout == "pooling" and tgt != 1:
            raise ContractError(f"{self.model}: a pooling readout has exactly one query row, got {tgt}")
        if self.dropped_tokens < 0:
            raise ContractError(f"{self.model}: dropped_tokens cannot be negative")

    @property
    def num_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def is_seq2seq(self) -> bool:
        return self.output is not None

    def readout_row(self, matrix: np.ndarray) -> np.ndarray:
        """The row of a (..., queries, source) matrix that the classifier reads."""
        matrix = np.asarray(matrix)
        if self.readout == "mean":
            mean: np.ndarray = matrix.mean(axis=-2)
            return mean
        if self.readout in ("first", "pooling"):
            return matrix[..., 0, :]
        raise ContractError(f"{self.model} generates text: no attention row is read by a classifier")

    @property
    def predicted_label(self) -> str | None:
        if not self.labels:
            return None
        return self.labels[int(np.argmax(self.probs))]

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI's ``predict --json`` record (attention values stay out: they can be huge)."""
        return {
            "model": self.model,
            "labels": list(self.labels),
            "probs": [round(float(p), 6) for p in self.probs],
            "source_tokens": list(self.source_tokens),
            "target_tokens": list(self.target_tokens),
            "attention_shape": [int(n) for n in self.attentions.shape],
            "output": self.output,
            "self_attention": self.self_attention,
            "readout": self.readout,
        }
