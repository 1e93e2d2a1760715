"""The lesson's small transformer classifier (model id ``keras-transformer``), in Keras 3.

Architecture as in the lesson (AI-for-Beginners, "Attention mechanisms and transformers"):
TokenAndPositionEmbedding -> one TransformerBlock (MultiHeadAttention with 2 heads, key_dim =
embed_dim = 32, feed-forward 32, dropout) -> average pooling -> Dense(20, relu) -> Dense(4).
The block follows the Keras example it cites (keras.io/examples/nlp/text_classification_with_transformer).

Deviations from the lesson, each needed to show honest attention:
- Padding mask: the lesson pads every text to 256 ids and lets every token attend to the
  padding. Here padding keys are masked out of the softmax and out of the average pooling, so
  attention rows over the real tokens sum to 1 and a text's prediction does not depend on how
  much padding its batch has.
- Tokenisation is a plain Python word tokenizer (models.text) with a saved vocabulary instead
  of TextVectorization, so the app can show the exact words each attention column belongs to.
- Sequence length is 128 words, not 256 (AG News texts average about 40 words, history from
  commit e681a1e; longer inputs are truncated with a notice), and positions beyond the text are never embedded.
- The block returns its attention scores (MultiHeadAttention(return_attention_scores=True)).
- The epoch count is chosen by early stopping on a validation split of the training rows, then
  the model is refit on all training rows for that many epochs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models import word_classifier
from models.base import LensError, check_text
from models.contract import Prediction
from models.data import AG_NEWS_LABELS, Split
from models.text import UNK, Vocabulary, encode
from models.word_classifier import WordClassifier

DEFAULT_CONFIG = {
    "max_tokens": 128,
    "vocab_size": 20000,
    "min_count": 2,
    "embed_dim": 32,
    "num_heads": 2,
    "ff_dim": 32,
    "hidden": 20,
    "dropout": 0.1,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
}
DEFAULT_EPOCHS = 12
LAYER_BATCH = 256  # rows per call of layer_representations


def _layers():
    """Keras layer classes, built on first use so that importing this module stays cheap."""
    import keras
    from keras import ops

    class TokenAndPositionEmbedding(keras.layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_emb = keras.layers.Embedding(vocab_size, embed_dim)
            self.pos_emb = keras.layers.Embedding(maxlen, embed_dim)

        def call(self, ids):
            positions = ops.arange(ops.shape(ids)[-1])
            return self.token_emb(ids) + self.pos_emb(positions)

    class TransformerBlock(keras.layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate, **kwargs):
            super().__init__(**kwargs)
            self.att = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim, name="attn")
            self.ffn_hidden = keras.layers.Dense(ff_dim, activation="relu")
            self.ffn_out = keras.layers.Dense(embed_dim)
            self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = keras.layers.Dropout(rate)
            self.dropout2 = keras.layers.Dropout(rate)

        def call(self, inputs, key_mask, training=False):
            # (batch, 1, source): every query may look at real keys only.
            attention_mask = ops.expand_dims(key_mask, axis=1)
            attended, scores = self.att(inputs, inputs, attention_mask=attention_mask, return_attention_scores=True, training=training)
            return self._feed_forward(inputs, attended, training), scores

        def _feed_forward(self, inputs, attended, training):
            out1 = self.layernorm1(inputs + self.dropout1(attended, training=training))
            ffn = self.ffn_out(self.ffn_hidden(out1))
            return self.layernorm2(out1 + self.dropout2(ffn, training=training))

        def with_head_mask(self, inputs, key_mask, head_mask):
            """``call`` at inference with head h's output scaled by ``head_mask[:, h]`` (batch, heads).

            The attention is recomputed from the MultiHeadAttention's own sublayers, per call, so
            the shared layer is never changed: ``_compute_attention`` gives each head's output
            (batch, time, heads, key_dim), which is scaled before the output projection. Zeroing a
            head's slice there is zeroing its slice of the output kernel for this call only.
            With a mask of ones the result is bit-identical to ``call`` (tested).
            """
            att = self.att
            attention_mask = ops.cast(ops.expand_dims(key_mask, axis=1), "bool")
            heads_out, scores = att._compute_attention(att.query_dense(inputs), att.key_dense(inputs), att.value_dense(inputs), attention_mask, False, True)
            if head_mask is not None:
                heads_out = heads_out * ops.cast(head_mask, heads_out.dtype)[:, None, :, None]
            return self._feed_forward(inputs, att.output_dense(heads_out), False), scores

    class MaskedAveragePooling(keras.layers.Layer):
        def call(self, sequence, key_mask):
            weights = ops.expand_dims(ops.cast(key_mask, sequence.dtype), -1)
            return ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)

    return TokenAndPositionEmbedding, TransformerBlock, MaskedAveragePooling


def build_models(config: dict):
    """Return (classifier, inspector): the same layers, the second also outputting attention.

    The classifier maps padded ids (batch, time) to class probabilities and is what gets
    trained and saved; the inspector shares its weights and returns (probs, scores) with scores
    shaped (batch, heads, time, time).
    """
    import keras
    from keras import ops

    TokenAndPositionEmbedding, TransformerBlock, MaskedAveragePooling = _layers()
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    key_mask = keras.layers.Lambda(lambda x: ops.not_equal(x, 0), name="key_mask")(ids)
    x = TokenAndPositionEmbedding(config["max_tokens"], config["vocab_size"], config["embed_dim"], name="embedding")(ids)
    x, scores = TransformerBlock(config["embed_dim"], config["num_heads"], config["ff_dim"], config["dropout"], name="transformer_block")(x, key_mask)
    x = MaskedAveragePooling(name="pool")(x, key_mask)
    x = keras.layers.Dropout(config["dropout"])(x)
    x = keras.layers.Dense(config["hidden"], activation="relu")(x)
    x = keras.layers.Dropout(config["dropout"])(x)
    probs = keras.layers.Dense(len(AG_NEWS_LABELS), activation="softmax", name="probs")(x)
    return keras.Model(ids, probs, name="keras_transformer"), keras.Model(ids, [probs, scores], name="keras_transformer_inspector")


class KerasTransformer(WordClassifier):
    """The classifier averages every word's output, so explanations read the mean attention row."""

    readout = "mean"
    self_attention = True
    ablation_mode = "heads"

    def __init__(self, model_id: str, config: dict, vocab, classifier, inspector):
        import tensorflow as tf

        super().__init__(model_id, config, vocab, classifier, inspector)
        # At predict's one fixed width, traced once for any number of rows (models.probes reads it).
        self._pooled_layers = tf.function(self._pool_every_layer, input_signature=[tf.TensorSpec([None, config["max_tokens"]], tf.int32)])

    @property
    def attention_grid(self) -> tuple[int, int]:
        return 1, self.config["num_heads"]

    def layer_representations(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(texts, 2, embed_dim): each text's embeddings and the block's output, each averaged over its words.

        The average is the head's own pooling layer, so the second row is exactly what the
        classifier's head reads; ``progress(rows_done)`` after each batch.
        """
        ids, _, _ = self.encode_words([check_text(text) for text in texts], fixed_width=True)
        batches = []
        for start in range(0, len(ids), LAYER_BATCH):
            batches.append(np.asarray(self._pooled_layers(ids[start : start + LAYER_BATCH])))
            if progress is not None:
                progress(len(batches[-1]))
        return np.concatenate(batches) if batches else np.zeros((0, 2, self.config["embed_dim"]), dtype=np.float32)

    def _pool_every_layer(self, ids):
        from keras import ops

        key_mask = ops.not_equal(ids, 0)
        embedded = self.inspector.get_layer("embedding")(ids)
        transformed, _ = self.inspector.get_layer("transformer_block")(embedded, key_mask, training=False)
        pool = self.inspector.get_layer("pool")
        return ops.stack([pool(embedded, key_mask), pool(transformed, key_mask)], axis=1)

    def embed(self, ids):
        """Word embeddings; positions are added in ``forward_embedded``."""
        return self.inspector.get_layer("embedding").token_emb(ids)

    def forward_embedded(self, embeds, mask, head_mask=None):
        """The inspector's computation from word embeddings, with heads switched off per call."""
        from keras import ops

        embedding = self.inspector.get_layer("embedding")
        x = embeds + embedding.pos_emb(ops.arange(ops.shape(embeds)[1]))
        key_mask = ops.cast(mask, "bool")
        x, scores = self.inspector.get_layer("transformer_block").with_head_mask(x, key_mask, None if head_mask is None else head_mask[:, 0])
        pool = self.inspector.get_layer("pool")
        x = pool(x, key_mask)
        # After pooling the graph is a chain: dropout, the unnamed hidden Dense, dropout, probs.
        for layer in self.inspector.layers[self.inspector.layers.index(pool) + 1 :]:
            x = layer(x, training=False)
        return x, [scores]

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        # One fixed width, so Keras's compiled predict function is traced once: an eager call of
        # the functional model cost about 40% of a page run's CPU under the 30-session load test.
        ids, kept, dropped = self.encode_words(texts, fixed_width=True)
        probs, scores = self.inspector.predict_on_batch(ids)
        return [self._prediction(tokens, probs[row], scores[row][np.newaxis], dropped[row]) for row, tokens in enumerate(kept)]


def _optimizer(config: dict):
    import keras

    return keras.optimizers.AdamW(config["learning_rate"], weight_decay=config["weight_decay"])


RECIPE = word_classifier.Recipe(build_models, _optimizer, DEFAULT_CONFIG, DEFAULT_EPOCHS, patience=3)


def load(model_id: str, asset_dir: Path) -> KerasTransformer:
    return word_classifier.load(RECIPE, KerasTransformer, model_id, asset_dir)


def train(model_id: str, **options) -> dict:
    """Train as ``models.word_classifier.train`` describes; options as the registry documents."""
    return word_classifier.train(RECIPE, model_id, **options)


def fine_tune_new_words(
    model_id: str,
    base: KerasTransformer,
    words: Sequence[str],
    *,
    data: Split,
    epochs: int,
    learning_rate: float,
    out_dir: Path,
    seed: int,
    extra_files: dict[str, Callable[[Path], object]] | None = None,
) -> dict:
    """``base`` with ``words`` added to its vocabulary, fine-tuned on ``data`` with only the new words' embeddings training.

    Each new word gets one embedding row, starting as [UNK]'s row (what ``base`` read for it);
    every other weight is copied from ``base`` and kept: the other layers are frozen, and the
    base's embedding rows are put back after every step (the optimizer applies the variable's
    constraint after each update). So on a text without the new words the model computes
    exactly what ``base`` computes. Written as ``train`` writes a model (``word_classifier.write_model``).
    """
    import keras
    from keras import ops

    already = [word for word in words if word in base.vocab.tokens]
    if already or len(set(words)) != len(words):
        raise LensError(f"the new words must be new to {base.model_id}'s vocabulary and distinct; it already reads {already}")
    unk = base.vocab.ids([UNK])[0]
    vocab = Vocabulary([*base.vocab.tokens, *words])
    config = {**base.config, "vocab_size": len(vocab)}
    keras.utils.set_random_seed(seed)  # the fine-tuning's shuffling and dropout
    classifier, inspector = build_models(config)
    embedding = inspector.get_layer("embedding")
    base_rows = np.asarray(base.inspector.get_layer("embedding").token_emb.embeddings)
    for old, new in zip(base.inspector.weights, inspector.weights, strict=True):
        value = np.asarray(old)
        if new is embedding.token_emb.embeddings:
            value = np.concatenate([value, np.repeat(value[unk : unk + 1], len(words), axis=0)])
        new.assign(value)

    class KeepBaseRows(keras.constraints.Constraint):
        def __call__(self, rows):
            return ops.concatenate([ops.convert_to_tensor(base_rows), rows[len(base_rows) :]], axis=0)

    for layer in classifier.layers:
        layer.trainable = layer is embedding
    embedding.pos_emb.trainable = False
    embedding.token_emb.embeddings.constraint = KeepBaseRows()
    classifier.compile(optimizer=_optimizer({**config, "learning_rate": learning_rate}), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, _, _ = encode(vocab, list(data.texts), config["max_tokens"])
    classifier.fit(x, np.asarray(data.labels), epochs=epochs, batch_size=word_classifier.FIT_BATCH, verbose=2)
    word_classifier.write_model(out_dir, inspector, vocab, config, extra_files)
    return {
        "model": model_id,
        "data": str(data.source),
        "train_rows": len(data),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "seed": seed,
    }


evaluate = word_classifier.evaluate
