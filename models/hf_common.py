"""What the Hugging Face families (``minilm``, ``hf_checkpoint``) share.

- Tokenising with the model's own tokenizer, keeping special tokens and counting what was cut.
- A forward pass compiled once per padded length: an eager MiniLM call on a short sentence
  takes several times longer than a compiled one (about 225 ms against 25-35 ms here, 2 shared
  cores). Padding every input to one of a few fixed lengths (``BUCKETS``) and every batch to a
  fixed size bounds the number of traces, which XLA needs (it compiles one program per shape).
- ``TransformerClassifier``: the AttentionModel built on those two, so a family only writes its
  forward pass.

TensorFlow and transformers are imported lazily: ``python -m models list`` must stay instant.
"""

from __future__ import annotations

import functools
import json
import threading
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.base import AttentionModel, InputError, check_text
from models.contract import Prediction
from models.maths.tokens import BYTE_BPE, SENTENCEPIECE, WORDPIECE, WORDS

# AG News texts are 18-351 wordpieces, median about 50: finer steps below 128 save most padding.
BUCKETS = (16, 32, 48, 64, 96, 128, 256, 512)
# Rows per batch on the batched (probabilities or features) path, fewer for long buckets so a
# lone 300-token text does not run with 31 filler rows of 512. The attention path runs one text
# at a time because each text's attention has its own shape.
BATCH_SIZE = 32
TOKENS_PER_BATCH = 2048
# Texts per predict_probs call when evaluating: every call ends each bucket with a partly filled
# batch, so few large calls waste less than evaluate_classifier's default of 256.
EVALUATION_CHUNK = 1024


@dataclass(frozen=True)
class Tokenized:
    """One text as the model reads it: ids and tokens with special markers, after truncation."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    dropped: int

    def __len__(self) -> int:
        return len(self.ids)


def tokenize_texts(tokenizer, texts: Sequence[str], max_tokens: int) -> list[Tokenized]:
    """Tokenise ``texts`` (special tokens added), cutting each to ``max_tokens`` from the end."""
    texts = list(texts)
    kept = tokenizer(texts, truncation=True, max_length=max_tokens, return_special_tokens_mask=True)
    # A second pass without truncation is the only way fast tokenizers report what was cut.
    full_lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    specials_added = tokenizer.num_special_tokens_to_add(pair=False)
    rows = []
    for ids, mask, full in zip(kept["input_ids"], kept["special_tokens_mask"], full_lengths):
        rows.append(
            Tokenized(
                ids=tuple(ids),
                tokens=tuple(tokenizer.convert_ids_to_tokens(ids)),
                special=tuple(bool(flag) for flag in mask),
                dropped=max(0, full + specials_added - len(ids)),
            )
        )
    return rows


def subword_scheme(tokenizer) -> str:
    """How ``tokenizer`` marks word pieces (see models.maths.tokens), read from its definition."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (pure Python) tokenizer: no reliable way to tell, merge nothing
        return WORDS
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    if model.get("type") == "WordPiece" and model.get("continuing_subword_prefix") == "##":
        return WORDPIECE
    pieces = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")], ensure_ascii=False)
    if '"ByteLevel"' in pieces:
        return BYTE_BPE
    if '"Metaspace"' in pieces or "▁" in pieces:
        return SENTENCEPIECE
    return WORDS


def buckets_up_to(max_tokens: int) -> tuple[int, ...]:
    return (*tuple(b for b in BUCKETS if b < max_tokens), max_tokens)


class BucketedFunction:
    """``function(ids, mask)`` compiled once per (padded length, batch size).

    ``function`` takes int32 ids and attention mask of shape (batch, length) and returns a tensor
    or a tuple of tensors whose first axis is the batch. Rows are padded with ``pad_id`` and
    masked, so padding never receives attention.
    """

    def __init__(self, function: Callable, max_tokens: int, jit_compile: bool, pad_id: int):
        self.function = function
        self.pad_id = pad_id
        self.buckets = buckets_up_to(max_tokens)
        self.jit_compile = jit_compile
        self._compiled: dict[tuple[int, int], Callable] = {}
        # Sessions run in threads: two first calls at one shape must not both trace it.
        self._compile_lock = threading.Lock()

    def bucket(self, length: int) -> int:
        return next(b for b in self.buckets if b >= length)

    @staticmethod
    def rows_per_batch(length: int, batch_size: int) -> int:
        return max(1, min(batch_size, TOKENS_PER_BATCH // length))

    def _compiled_for(self, length: int, batch: int) -> Callable:
        key = (length, batch)
        with self._compile_lock:
            return self._compiled.get(key) or self._compile(key)

    def _compile(self, key: tuple[int, int]) -> Callable:
        import tensorflow as tf

        length, batch = key
        spec = tf.TensorSpec([batch, length], tf.int32)
        # Each shape is traced once by design. TF's retracing detector counts traces per
        # function *code*, so one wrapper per shape keeps it from warning about that.
        self._compiled[key] = tf.function(functools.partial(self.function), input_signature=[spec, spec], jit_compile=self.jit_compile)
        return self._compiled[key]

    def __call__(
        self, rows: Sequence[Sequence[int]], batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None
    ) -> list[tuple[np.ndarray, ...]]:
        """Outputs for each row of ids, in input order; each output keeps its padded length."""
        results: list[tuple[np.ndarray, ...] | None] = [None] * len(rows)
        # Sorting by length fills each batch with texts of one bucket.
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        batches: list[tuple[int, list[int]]] = []
        for index in order:
            length = self.bucket(len(rows[index]))
            if batches and batches[-1][0] == length and len(batches[-1][1]) < self.rows_per_batch(length, batch_size):
                batches[-1][1].append(index)
            else:
                batches.append((length, [index]))
        for length, members in batches:
            size = self.rows_per_batch(length, batch_size)
            ids = np.full((size, length), self.pad_id, dtype=np.int32)
            mask = np.zeros((size, length), dtype=np.int32)
            mask[:, 0] = 1  # filler rows see one token, so their softmax never divides by zero
            for slot, index in enumerate(members):
                ids[slot, : len(rows[index])] = rows[index]
                mask[slot, : len(rows[index])] = 1
            outputs = self._compiled_for(length, size)(ids, mask)
            outputs = tuple(np.asarray(o) for o in (outputs if isinstance(outputs, (tuple, list)) else (outputs,)))
            for slot, index in enumerate(members):
                results[index] = tuple(o[slot] for o in outputs)
            if progress is not None:
                progress(len(members))
        return results


class TransformerClassifier(AttentionModel):
    """A Hugging Face tokenizer and a TensorFlow forward pass that also returns attention.

    Subclasses implement ``forward(ids, mask, with_attentions)`` in TensorFlow, returning class
    probabilities (batch, classes) and, when asked, attentions stacked as (batch, layers, heads,
    length, length).
    """

    def __init__(self, model_id: str, labels: Sequence[str], tokenizer, max_tokens: int, jit_compile: bool):
        self.model_id = model_id
        self.labels = tuple(labels)
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.subword_scheme = subword_scheme(tokenizer)
        # A fast tokenizer is a Rust object that raises "Already borrowed" when two threads use
        # it at once (it mutates its truncation settings per call); sessions are threads.
        self._tokenizer_lock = threading.Lock()
        pad_id = tokenizer.pad_token_id or 0
        self._with_attentions = BucketedFunction(lambda ids, mask: self.forward(ids, mask, with_attentions=True), max_tokens, jit_compile, pad_id)
        self._probs_only = BucketedFunction(lambda ids, mask: self.forward(ids, mask, with_attentions=False), max_tokens, jit_compile, pad_id)

    @abstractmethod
    def forward(self, ids, mask, with_attentions: bool):
        """TensorFlow forward pass on padded (batch, length) int32 ids and mask."""

    def tokenize(self, texts: Sequence[str]) -> list[Tokenized]:
        """The texts as the model reads them; safe to call from many threads at once."""
        with self._tokenizer_lock:
            rows = tokenize_texts(self.tokenizer, texts, self.max_tokens)
        for text, row in zip(texts, rows):
            if all(row.special):
                raise InputError(f"the text {text[:40]!r} contains nothing this model's tokenizer can read")
        return rows

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        rows = self.tokenize(texts)
        predictions = []
        for row in rows:
            # One text per call: batching texts of different lengths would pad every attention
            # matrix to the longest one, up to 6 x 12 x 512 x 512 floats each.
            ((probs, attentions),) = self._with_attentions([row.ids], batch_size=1)
            n = len(row)
            predictions.append(
                Prediction(
                    model=self.model_id,
                    labels=self.labels,
                    probs=probs,
                    source_tokens=row.tokens,
                    target_tokens=row.tokens,
                    attentions=attentions[:, :, :n, :n],
                    source_special=row.special,
                    target_special=row.special,
                    dropped_tokens=row.dropped,
                )
            )
        return predictions

    def predict_probs(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Probabilities without attention outputs, in fixed-size batches of similar lengths."""
        rows = self.tokenize([check_text(t) for t in texts])
        if not rows:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        outputs = self._probs_only([row.ids for row in rows], batch_size=batch_size)
        return np.stack([probs for (probs,) in outputs]).astype(np.float32)
