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
- Sequence length is 128 words, not 256 (AG News texts average about 40 words; longer inputs
  are truncated with a notice), and positions beyond the text are never embedded.
- The block returns its attention scores (MultiHeadAttention(return_attention_scores=True)).
- The epoch count is chosen by early stopping on a validation split of the training rows, then
  the model is refit on all training rows for that many epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.base import AssetError, AttentionModel
from models.contract import Prediction
from models.data import AG_NEWS_LABELS, load_split, train_validation_split
from models.evaluation import evaluate_classifier
from models.io import read_json
from models.text import Vocabulary, encode

MODEL_ID = "keras-transformer"
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
WEIGHTS, VOCAB, CONFIG = "weights.weights.h5", "vocab.json", "config.json"


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
            out1 = self.layernorm1(inputs + self.dropout1(attended, training=training))
            ffn = self.ffn_out(self.ffn_hidden(out1))
            return self.layernorm2(out1 + self.dropout2(ffn, training=training)), scores

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


class KerasTransformer(AttentionModel):
    kind = "classifier"
    labels = AG_NEWS_LABELS

    def __init__(self, model_id: str, config: dict, vocab: Vocabulary, classifier, inspector):
        self.model_id = model_id
        self.config = config
        self.max_tokens = config["max_tokens"]
        self.vocab = vocab
        self.classifier = classifier
        self.inspector = inspector

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        ids, kept, dropped = encode(self.vocab, texts, self.max_tokens)
        probs, scores = (np.asarray(t) for t in self.inspector(ids, training=False))
        predictions = []
        for row, tokens in enumerate(kept):
            if not tokens:
                # A text of only punctuation or symbols has no words for this model to read.
                from models.base import InputError

                raise InputError(f"the text {texts[row][:40]!r} contains no words this model can read")
            n = len(tokens)
            predictions.append(
                Prediction(
                    model=self.model_id,
                    labels=self.labels,
                    probs=probs[row],
                    source_tokens=tuple(tokens),
                    target_tokens=tuple(tokens),
                    attentions=scores[row, :, :n, :n][np.newaxis],
                    dropped_tokens=dropped[row],
                )
            )
        return predictions

    def predict_probs(self, texts, batch_size: int = 256) -> np.ndarray:
        ids, _, _ = encode(self.vocab, list(texts), self.max_tokens)
        return np.asarray(self.classifier.predict(ids, batch_size=batch_size, verbose=0))


def _remedy(model_id: str) -> str:
    return f"run `python -m models train {model_id}` to recreate it"


def load(model_id: str, asset_dir: Path) -> KerasTransformer:
    asset_dir = Path(asset_dir)
    config = {**DEFAULT_CONFIG, **read_json(asset_dir / CONFIG, _remedy(model_id))}
    vocab = Vocabulary.load(asset_dir / VOCAB, _remedy(model_id))
    config["vocab_size"] = len(vocab)
    classifier, inspector = build_models(config)
    weights = asset_dir / WEIGHTS
    if not weights.is_file():
        raise AssetError(weights, "is missing", _remedy(model_id))
    try:
        inspector.load_weights(weights)
    except Exception as exc:  # h5py/keras raise many types for truncated or foreign files
        raise AssetError(weights, f"could not be loaded ({exc.__class__.__name__}: {exc})", _remedy(model_id)) from None
    return KerasTransformer(model_id, config, vocab, classifier, inspector)


def _fit(config: dict, vocab: Vocabulary, rows, epochs: int, validation=None, verbose: int = 1):
    """Build a fresh model and fit it on ``rows``; returns (classifier, inspector, history)."""
    import keras

    classifier, inspector = build_models(config)
    optimizer = keras.optimizers.AdamW(config["learning_rate"], weight_decay=config["weight_decay"])
    classifier.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, _, _ = encode(vocab, list(rows.texts), config["max_tokens"])
    fit_args = dict(epochs=epochs, batch_size=64, verbose=verbose)
    if validation is not None:
        x_val, _, _ = encode(vocab, list(validation.texts), config["max_tokens"])
        fit_args["validation_data"] = (x_val, np.asarray(validation.labels))
        fit_args["callbacks"] = [keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=3, restore_best_weights=True)]
    history = classifier.fit(x, np.asarray(rows.labels), **fit_args)
    return classifier, inspector, history


def train(model_id: str, *, data_dir=None, epochs=None, limit=None, out_dir: Path, seed: int = 0, overrides: dict | None = None) -> dict:
    """Choose the epoch count on a 10% validation split, then refit on every training row.

    The refit gives the shipped model the 10% of rows that validation held back; with fewer
    than 11,000 rows here that is worth having. ``overrides`` replaces entries of
    DEFAULT_CONFIG, for hyperparameter searches.
    """
    import keras

    from models.io import atomic_write, atomic_write_json

    config = {**DEFAULT_CONFIG, **(overrides or {})}
    verbose = 2 if limit else 1
    data = load_split("train", data_dir, limit)
    train_rows, val_rows = train_validation_split(data, 0.1, seed)

    print(f"Choosing the number of epochs on {len(val_rows)} validation rows", flush=True)
    keras.utils.set_random_seed(seed)
    vocab = Vocabulary.build(train_rows.texts, config["vocab_size"], config["min_count"])
    _, _, history = _fit({**config, "vocab_size": len(vocab)}, vocab, train_rows, epochs or DEFAULT_EPOCHS, val_rows, verbose)
    best = int(np.argmax(history.history["val_accuracy"]))

    print(f"Refitting on all {len(data)} training rows for {best + 1} epochs", flush=True)
    keras.utils.set_random_seed(seed)
    vocab = Vocabulary.build(data.texts, config["vocab_size"], config["min_count"])
    config["vocab_size"] = len(vocab)
    _, inspector, _ = _fit(config, vocab, data, best + 1, verbose=verbose)

    out_dir = Path(out_dir)
    # Saved from the inspector: same layers, but no optimizer attached, so no Adam slots are
    # written and the file stays a third of the size.
    atomic_write(out_dir / WEIGHTS, lambda tmp: inspector.save_weights(str(tmp)))
    vocab.save(out_dir / VOCAB)
    atomic_write_json(out_dir / CONFIG, config)
    return {
        "model": model_id,
        "data": str(data.source),
        "train_rows": len(data),
        "validation_rows": len(val_rows),
        "epochs_tried": len(history.history["loss"]),
        "best_epoch": best + 1,
        "validation_accuracy": round(float(history.history["val_accuracy"][best]), 6),
        "seed": seed,
    }


def evaluate(model: KerasTransformer, *, data_dir=None, limit=None) -> dict:
    return evaluate_classifier(model, load_split("test", data_dir, limit))
