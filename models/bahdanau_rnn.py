"""An RNN news classifier with Bahdanau (additive) attention pooling (model id ``bahdanau-rnn``).

Words -> embedding -> dropout -> bidirectional GRU (or LSTM) -> additive attention with one learned query,
``e_j = v_a^T tanh(U_a h_j + b)`` (models.additive_attention) -> softmax weights alpha_j over the
real words (padding masked) -> context ``c = sum_j alpha_j h_j`` -> dropout -> Dense(4, softmax).

The encoder annotations ``h_j = [forward h_j; backward h_j]`` are those of Bahdanau et al. (2015,
sec. 3.2); with no decoder there is no ``s_{i-1}``, so the query is learned instead, as in the
attention pooling of Raffel & Ellis (2015) and Yang et al. (2016). The single row of weights is
exactly what the classifier pools with, so the app shows it as a one-row alignment strip
(target token ``[query]``) over the words.

Words, vocabulary and truncation are those of the keras-transformer (models.text), and so is
training: the epoch count is chosen by early stopping on the same validation split, then the
model is refit on all training rows for that many epochs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models import word_classifier
from models.contract import Prediction
from models.data import AG_NEWS_LABELS
from models.word_classifier import WordClassifier

QUERY_TOKEN = "[query]"
RNN_LAYERS = ("gru", "lstm")
DEFAULT_CONFIG = {
    "max_tokens": 128,
    "vocab_size": 20000,
    "min_count": 2,
    "embed_dim": 64,
    "rnn": "gru",
    "rnn_units": 64,
    "attention_units": 64,
    "dropout": 0.3,
    "learning_rate": 2e-3,
}
DEFAULT_EPOCHS = 10


def build_models(config: dict):
    """Return (classifier, inspector): the same layers, the second also outputting attention.

    The classifier maps padded ids (batch, time) to class probabilities and is what gets
    trained; the inspector shares its weights and returns (probs, weights) with weights shaped
    (batch, 1, time), zero on padding.
    """
    import keras
    from keras import layers, ops

    from models.additive_attention import AdditiveAttention

    if config["rnn"] not in RNN_LAYERS:
        raise ValueError(f"config rnn must be one of {RNN_LAYERS}, got {config['rnn']!r}")
    rnn = layers.GRU if config["rnn"] == "gru" else layers.LSTM
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    mask = layers.Lambda(lambda x: ops.not_equal(x, 0), name="mask")(ids)
    x = layers.Embedding(config["vocab_size"], config["embed_dim"], name="embedding")(ids)
    x = layers.Dropout(config["dropout"])(x)
    annotations = layers.Bidirectional(rnn(config["rnn_units"], return_sequences=True), name="encoder")(x, mask=mask)
    context, weights = AdditiveAttention(config["attention_units"], name="attention")(annotations, mask=mask)
    x = layers.Dropout(config["dropout"])(context[:, 0])
    probs = layers.Dense(len(AG_NEWS_LABELS), activation="softmax", name="probs")(x)
    return keras.Model(ids, probs, name="bahdanau_rnn"), keras.Model(ids, [probs, weights], name="bahdanau_rnn_inspector")


class BahdanauRNN(WordClassifier):
    """One pooling attention row: it has no heads to switch off, only uniform attention instead."""

    readout = "pooling"
    self_attention = False
    ablation_mode = "uniform"
    query_token = QUERY_TOKEN

    @property
    def attention_grid(self) -> tuple[int, int]:
        return 1, 1

    def embed(self, ids):
        return self.inspector.get_layer("embedding")(ids)

    def forward_embedded(self, embeds, mask, head_mask=None):
        """The inspector's computation from word embeddings (dropout is off at inference).

        ``head_mask`` (batch, 1, 1) of 0 replaces the attention weights by 1/T over the words
        (``AdditiveAttention.blend_with_uniform``); the returned attention is what was used.
        """
        from keras import ops

        mask = ops.cast(mask, "bool")
        annotations = self.inspector.get_layer("encoder")(embeds, mask=mask, training=False)
        learned = None if head_mask is None else head_mask[:, 0, 0]
        context, weights = self.inspector.get_layer("attention")(annotations, mask=mask, learned=learned)
        return self.inspector.get_layer("probs")(context[:, 0]), [weights[:, None]]

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        ids, kept, dropped = self.encode_words(texts, fixed_width=True)
        # Compiled once for the one fixed shape: an eager call steps the RNN in Python, far slower.
        probs, weights = self.inspector.predict_on_batch(ids)
        return [self._prediction(tokens, probs[row], weights[row][np.newaxis, np.newaxis], dropped[row]) for row, tokens in enumerate(kept)]


def _optimizer(config: dict):
    import keras

    return keras.optimizers.Adam(config["learning_rate"])


RECIPE = word_classifier.Recipe(build_models, _optimizer, DEFAULT_CONFIG, DEFAULT_EPOCHS, patience=2)


def load(model_id: str, asset_dir: Path) -> BahdanauRNN:
    return word_classifier.load(RECIPE, BahdanauRNN, model_id, asset_dir)


def train(model_id: str, **options) -> dict:
    """Train as ``models.word_classifier.train`` describes; options as the registry documents."""
    return word_classifier.train(RECIPE, model_id, **options)


evaluate = word_classifier.evaluate
