"""What the Hugging Face families (``minilm``, ``hf_checkpoint``) share.

- Tokenising with the model's own tokenizer, keeping special tokens and counting what was cut.
- A forward pass compiled once per padded length: an eager MiniLM call on a short sentence
  takes several times longer than a compiled one (about 225 ms against 25-35 ms here, 2 shared
  cores). Padding every input to one of a few fixed lengths (``BUCKETS``) and every batch to a
  fixed size bounds the number of traces, which XLA needs (it compiles one program per shape).
- ``TransformerClassifier``: the AttentionModel built on those two, so a family only writes its
  forward pass, as two hooks that ``models.explain`` also uses (embedding step, forward from
  embeddings with a per-call head mask).
- ``bert_style_encoder``: a BERT-style encoder run layer by layer, so heads can be switched off
  per call without touching the shared weights.

TensorFlow and transformers are imported lazily: ``python -m models list`` must stay instant.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.base import AttentionModel, InputError, LensError, check_text
from models.contract import Prediction
from models.maths.tokens import BYTE_BPE, SENTENCEPIECE, WORDPIECE, WORDS

# The app runs transformers' TensorFlow classes and never imports torch. transformers imports torch
# whenever it finds it installed (a machine shared with PyTorch projects), which costs memory and
# start-up time for nothing; USE_TF=1 makes it look no further. Every family that imports
# transformers imports this module first (tests/test_anchor.py checks the app never imports torch).
os.environ.setdefault("USE_TF", "1")

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
    """``function(ids, mask, *extras)`` compiled once per (padded length, batch size).

    ``function`` takes int32 ids and attention mask of shape (batch, length), then one float32
    tensor (batch, *shape) per entry of ``extra_shapes`` (per-row inputs such as a head mask),
    and returns a tensor or a tuple of tensors whose first axis is the batch. Rows are padded
    with ``pad_id`` and masked, so padding never receives attention.
    """

    def __init__(self, function: Callable, max_tokens: int, jit_compile: bool, pad_id: int, extra_shapes: Sequence[tuple[int, ...]] = ()):
        self.function = function
        self.pad_id = pad_id
        self.buckets = buckets_up_to(max_tokens)
        self.jit_compile = jit_compile
        self.extra_shapes = tuple(tuple(shape) for shape in extra_shapes)
        self._compiled: dict[tuple[int, int], Callable] = {}
        # Sessions run in threads: two first calls at one shape must not both trace it.
        self._compile_lock = threading.Lock()

    def bucket(self, length: int) -> int:
        return next(b for b in self.buckets if b >= length)

    @staticmethod
    def rows_per_batch(length: int, batch_size: int) -> int:
        return max(1, min(batch_size, TOKENS_PER_BATCH // length))

    @staticmethod
    def padded_rows(rows: int, limit: int) -> int:
        """The batch size a batch of ``rows`` real rows runs at: the next power of two, at most ``limit``.

        A few rows (a short list of texts, or rows of one length among many) would otherwise run
        with dozens of filler rows; powers of two keep the number of traces per length small.
        """
        return min(limit, 1 << max(0, rows - 1).bit_length())

    def plan(self, lengths: Sequence[int], batch_size: int = BATCH_SIZE) -> list[tuple[int, int, list[int]]]:
        """How ``__call__`` batches rows of these lengths: (padded length, batch size, row indices) per call.

        Sorting by length fills each batch with rows of one bucket.
        """
        batches: list[tuple[int, list[int]]] = []
        for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            length = self.bucket(max(1, lengths[index]))
            if batches and batches[-1][0] == length and len(batches[-1][1]) < self.rows_per_batch(length, batch_size):
                batches[-1][1].append(index)
            else:
                batches.append((length, [index]))
        return [(length, self.padded_rows(len(members), self.rows_per_batch(length, batch_size)), members) for length, members in batches]

    def batch_sizes(self, length: int, batch_size: int = BATCH_SIZE) -> tuple[int, ...]:
        """Every batch size ``__call__`` may run rows of padded ``length`` at: the powers of two up to its limit."""
        limit = self.rows_per_batch(length, batch_size)
        return tuple(sorted({self.padded_rows(rows, limit) for rows in range(1, limit + 1)}))

    def warm(self, length: int, batch: int) -> None:
        """Trace the function at (``length``, ``batch``) and run it once on filler rows, ahead of a user's first call."""
        ids = np.full((batch, length), self.pad_id, dtype=np.int32)
        mask = np.zeros((batch, length), dtype=np.int32)
        mask[:, 0] = 1
        extras = [np.ones((batch, *shape), dtype=np.float32) for shape in self.extra_shapes]
        self._compiled_for(length, batch)(ids, mask, *extras)

    def _compiled_for(self, length: int, batch: int) -> Callable:
        key = (length, batch)
        with self._compile_lock:
            return self._compiled.get(key) or self._compile(key)

    def _compile(self, key: tuple[int, int]) -> Callable:
        import tensorflow as tf

        length, batch = key
        spec = tf.TensorSpec([batch, length], tf.int32)
        extras = [tf.TensorSpec([batch, *shape], tf.float32) for shape in self.extra_shapes]
        # Each shape is traced once by design. TF's retracing detector counts traces per
        # function *code*, so one wrapper per shape keeps it from warning about that.
        self._compiled[key] = tf.function(functools.partial(self.function), input_signature=[spec, spec, *extras], jit_compile=self.jit_compile)
        return self._compiled[key]

    def __call__(
        self,
        rows: Sequence[Sequence[int]],
        batch_size: int = BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
        extras: Sequence[Sequence[np.ndarray]] = (),
    ) -> list[tuple[np.ndarray, ...]]:
        """Outputs for each row of ids, in input order; each output keeps its padded length.

        ``extras[k][i]`` is row i's value of the k-th extra input. A row may be empty: the model
        then sees no token at all.
        """
        results: list[tuple[np.ndarray, ...]] = [()] * len(rows)  # every row's place is filled below
        for length, size, members in self.plan([len(row) for row in rows], batch_size):
            ids = np.full((size, length), self.pad_id, dtype=np.int32)
            mask = np.zeros((size, length), dtype=np.int32)
            mask[len(members) :, 0] = 1  # filler rows see one token, so their softmax never divides by zero
            inputs = [np.zeros((size, *shape), dtype=np.float32) for shape in self.extra_shapes]
            for slot, index in enumerate(members):
                ids[slot, : len(rows[index])] = rows[index]
                mask[slot, : len(rows[index])] = 1
                for values, column in zip(inputs, extras):
                    values[slot] = column[index]
            outputs = self._compiled_for(length, size)(ids, mask, *inputs)
            outputs = tuple(np.asarray(o) for o in (outputs if isinstance(outputs, (tuple, list)) else (outputs,)))
            for slot, index in enumerate(members):
                results[index] = tuple(o[slot] for o in outputs)
            if progress is not None:
                progress(len(members))
        return results


class TransformerClassifier(AttentionModel):
    """A Hugging Face tokenizer and a TensorFlow forward pass that also returns attention.

    Subclasses implement two TensorFlow hooks, differentiable under ``tf.GradientTape`` (the
    inseq pattern: the model exposes only what attribution needs), which ``models.explain``
    calls too:

    - ``embed(ids)``: token embeddings (batch, length, width) of int32 ids (batch, length), the
      input that gradient attributions are taken on;
    - ``forward_embedded(embeds, mask, head_mask=None)``: class probabilities (batch, classes)
      and a list with each layer's attention (batch, heads, length, length), the very tensors the
      layer multiplies its values with. ``head_mask`` (batch, layers, heads) switches heads off
      for this call only (1 keeps a head, 0 removes its output); families that cannot do that
      set ``head_mask_unsupported`` to the reason.

    ``attention_grid`` is (layers, heads). The classifier reads the first token ([CLS] or <s>).
    """

    readout = "first"
    self_attention = True
    ablation_mode = "heads"
    head_mask_unsupported: str | None = None

    def __init__(self, model_id: str, labels: Sequence[str], tokenizer, max_tokens: int, jit_compile: bool):
        self.model_id = model_id
        self.labels = tuple(labels)
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.jit_compile = jit_compile
        self.subword_scheme = subword_scheme(tokenizer)
        # A fast tokenizer is a Rust object that raises "Already borrowed" when two threads use
        # it at once (it mutates its truncation settings per call); sessions are threads.
        self._tokenizer_lock = threading.Lock()
        self.pad_id = tokenizer.pad_token_id or 0
        # Integrated gradients starts from [PAD] embeddings at the ordinary tokens (models.explain).
        self.baseline_id: int | None = self.pad_id
        self.baseline_token: str | None = tokenizer.convert_ids_to_tokens(self.pad_id)
        self.baseline_description = f"the {self.baseline_token} embedding in place of every ordinary token's; special tokens and positions kept"
        self._with_attentions = BucketedFunction(self._forward_layers, max_tokens, jit_compile, self.pad_id)
        self._probs_only = BucketedFunction(lambda ids, mask: self.forward(ids, mask, with_attentions=False), max_tokens, jit_compile, self.pad_id)
        self._head_masked: BucketedFunction | None = None
        self._head_masked_lock = threading.Lock()

    @property
    @abstractmethod
    def attention_grid(self) -> tuple[int, int]:
        """(layers, heads)."""

    @abstractmethod
    def embed(self, ids):
        """Token embeddings (batch, length, width) of int32 ids (batch, length)."""

    @abstractmethod
    def forward_embedded(self, embeds, mask, head_mask=None):
        """(probs (batch, classes), [attention (batch, heads, length, length) per layer])."""

    def forward(self, ids, mask, with_attentions: bool):
        """TensorFlow forward pass on padded (batch, length) int32 ids and mask: probs, and the stacked attention if asked."""
        import tensorflow as tf

        probs, attentions = self.forward_embedded(self.embed(ids), mask)
        return (probs, tf.stack(attentions, axis=1)) if with_attentions else probs

    def _forward_layers(self, ids, mask):
        """``forward`` for ``predict``: probs, then each layer's attention as a tensor of its own.

        ``_prediction`` cuts each layer to the text's length and stacks them in one copy, where a
        ``tf.stack`` here copied all of them once more (at 512 tokens 72 MB; 8% of the forward
        pass in the TF profiler).
        """
        probs, attentions = self.forward_embedded(self.embed(ids), mask)
        return (probs, *attentions)

    def explain_tokens(self, text: str) -> Tokenized:
        """The one text as the model reads it, for ``models.explain``."""
        return self.tokenize([check_text(text)])[0]

    def tokenize(self, texts: Sequence[str]) -> list[Tokenized]:
        """The texts as the model reads them; safe to call from many threads at once."""
        with self._tokenizer_lock:
            rows = tokenize_texts(self.tokenizer, texts, self.max_tokens)
        for text, row in zip(texts, rows):
            if all(row.special):
                raise InputError(f"the text {text[:40]!r} contains nothing this model's tokenizer can read")
        return rows

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        # One text per call: batching texts of different lengths would pad every attention
        # matrix to the longest one, up to 6 x 12 x 512 x 512 floats each.
        return [self._prediction(row, *self._with_attentions([row.ids], batch_size=1)[0]) for row in self.tokenize(texts)]

    def predict_with_head_mask(self, text: str, head_mask: np.ndarray) -> Prediction:
        """``predict`` with the heads where ``head_mask`` (layers, heads) is 0 switched off.

        Runs at the shape ``predict`` runs at, so a mask of ones gives its exact numbers.
        """
        if self.head_mask_unsupported:
            raise LensError(self.head_mask_unsupported)
        with self._head_masked_lock:
            # Built on first use (the grid needs the loaded model): most sessions never switch a head off.
            if self._head_masked is None:
                self._head_masked = BucketedFunction(
                    lambda ids, mask, heads: self._forward_masked(ids, mask, heads),
                    self.max_tokens,
                    self.jit_compile,
                    self.pad_id,
                    extra_shapes=(self.attention_grid,),
                )
        row = self.explain_tokens(text)
        return self._prediction(row, *self._head_masked([row.ids], batch_size=1, extras=[[np.asarray(head_mask, dtype=np.float32)]])[0])

    def _forward_masked(self, ids, mask, head_mask):
        probs, attentions = self.forward_embedded(self.embed(ids), mask, head_mask)
        return (probs, *attentions)

    def _prediction(self, row: Tokenized, probs: np.ndarray, *layers: np.ndarray) -> Prediction:
        """``layers``: each layer's (heads, padded, padded) attention, cut to the text here in one copy."""
        n = len(row)
        attentions = np.stack([layer[:, :n, :n] for layer in layers])
        return Prediction(
            model=self.model_id,
            labels=self.labels,
            probs=probs,
            source_tokens=row.tokens,
            target_tokens=row.tokens,
            attentions=attentions,
            source_special=row.special,
            target_special=row.special,
            dropped_tokens=row.dropped,
            self_attention=True,
            readout=self.readout,
        )

    def predict_probs(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Probabilities without attention outputs, in fixed-size batches of similar lengths."""
        rows = self.tokenize([check_text(t) for t in texts])
        if not rows:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        outputs = self._probs_only([row.ids for row in rows], batch_size=batch_size)
        return np.stack([probs for (probs,) in outputs]).astype(np.float32)


def bert_style_encoder(main_layer, embeds, mask, head_mask=None):
    """Hidden states and attentions of a BERT-style encoder, run layer by layer from embeddings.

    ``main_layer`` is a transformers TF main layer with ``embeddings`` and ``encoder.layer``
    (BERT, RoBERTa, CamemBERT, XLM-RoBERTa, ELECTRA); this is its ``call`` for an encoder
    without cross-attention, one layer at a time. transformers raises NotImplementedError when
    TF BERT's main layer is given a ``head_mask``, so heads are switched off here instead:
    head h of layer l is removed by multiplying its slice of the attention output by
    ``head_mask[:, l, h]`` before the output projection ``attention.dense_output.dense``. As
    (x ⊙ m) W = x (diag(m) W), that is zeroing the head's kernel rows h·d..(h+1)·d for this call
    only, and the same output as transformers' own per-layer head mask (which multiplies the
    attention probabilities); the shared variables are never touched. The returned attention
    of a removed head is still what it computed (it no longer reaches the output).

    ``embeds`` (batch, length, width) are word embeddings (position and type embeddings are added
    here), ``mask`` (batch, length) int32 marks real tokens, ``head_mask`` (batch, layers, heads)
    or None. Returns (hidden_states: layers + 1 tensors, attentions: layers tensors (batch,
    heads, length, length)).
    """
    import tensorflow as tf

    hidden = main_layer.embeddings(input_ids=None, inputs_embeds=embeds, token_type_ids=tf.zeros_like(mask), training=False)
    if getattr(main_layer, "embeddings_project", None) is not None:  # ELECTRA with embeddings narrower than the encoder
        hidden = main_layer.embeddings_project(hidden)
    # As in the main layer: 0 added to the scores of real keys, -10000 to padding.
    extended = tf.multiply(
        tf.subtract(tf.constant(1.0, hidden.dtype), tf.cast(mask, hidden.dtype)[:, tf.newaxis, tf.newaxis, :]), tf.constant(-10000.0, hidden.dtype)
    )
    hidden_states, attentions = [hidden], []
    for index, layer in enumerate(main_layer.encoder.layer):
        hidden, probs = encoder_layer(layer, hidden, extended, None if head_mask is None else head_mask[:, index])
        hidden_states.append(hidden)
        attentions.append(probs)
    return hidden_states, attentions


def encoder_layer(layer, hidden, extended, head_mask=None):
    """One transformers TF BERT-style layer (``TFBertLayer`` and its copies), on its own weights.

    The same sums as the layer's ``call`` (tests/test_minilm.py and tests/test_hf_checkpoint.py
    compare with the plain models), written so that TensorFlow runs fewer, fused kernels: every
    dense layer is one 2-D ``MatMul`` + ``BiasAdd`` on (batch·length, width), which oneDNN fuses
    into one kernel, where Keras' ``Dense`` on 3-D input goes through ``Tensordot`` (reshapes
    around the product keep the bias add apart). In the TF profiler at 512 tokens the separate
    bias adds and the exact GELU's Erfc and Neg took 9% of the op time; the GELU now fuses into
    the product too (``_MklNativeFusedMatMul``). ``head_mask`` (batch, heads) scales each head's
    slice of the context.

    Returns (hidden (batch, length, width), attention probabilities (batch, heads, length, length)).
    """
    import tensorflow as tf

    attention = layer.attention.self_attention
    heads, size = attention.num_attention_heads, attention.attention_head_size
    shape = tf.shape(hidden)
    batch, length, width = shape[0], shape[1], hidden.shape[-1]
    rows = tf.reshape(hidden, [-1, width])

    def dense(x, keras_dense):
        return tf.nn.bias_add(tf.matmul(x, keras_dense.kernel), keras_dense.bias)

    def split_heads(x):
        return tf.transpose(tf.reshape(x, [batch, length, heads, size]), [0, 2, 1, 3])

    def layer_norm(x, keras_norm):
        # The Keras layer was built for (batch, length, width): it normalises the last axis only.
        return tf.reshape(keras_norm(tf.reshape(x, [batch, length, width])), [-1, width])

    query, key, value = (split_heads(dense(rows, part)) for part in (attention.query, attention.key, attention.value))
    scores = tf.divide(tf.matmul(query, key, transpose_b=True), tf.cast(attention.sqrt_att_head_size, hidden.dtype))
    # transformers' stable_softmax adds 1e-9 to the logits (a workaround for XLA on some CPUs); kept for equal numbers.
    probs = tf.nn.softmax(tf.add(scores, extended) + 1e-9, axis=-1)
    context = tf.matmul(probs, value)
    if head_mask is not None:
        context = context * head_mask[:, :, tf.newaxis, tf.newaxis]
    context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, width])
    attended = layer_norm(dense(context, layer.attention.dense_output.dense) + rows, layer.attention.dense_output.LayerNorm)
    inner = layer.intermediate.intermediate_act_fn(dense(attended, layer.intermediate.dense))
    output = layer_norm(dense(inner, layer.bert_output.dense) + attended, layer.bert_output.LayerNorm)
    return tf.reshape(output, [batch, length, width]), probs
