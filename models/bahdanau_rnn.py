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

from models.base import AttentionModel, InputError, load_weights, retrain_remedy
from models.contract import Prediction
from models.data import AG_NEWS_LABELS, load_split, train_validation_split
from models.evaluation import evaluate_classifier
from models.io import read_json
from models.text import Vocabulary, encode

MODEL_ID = "bahdanau-rnn"
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
WEIGHTS, VOCAB, CONFIG = "weights.weights.h5", "vocab.json", "config.json"


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


class BahdanauRNN(AttentionModel):
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
        ids, kept, dropped = encode(self.vocab, texts, self.max_tokens, fixed_width=True)
        for text, tokens in zip(texts, kept):
            if not tokens:
                raise InputError(f"the text {text[:40]!r} contains no words this model can read")
        # Compiled once for the one fixed shape: an eager call steps the RNN in Python, far slower.
        probs, weights = self.inspector.predict_on_batch(ids)
        return [
            Prediction(
                model=self.model_id,
                labels=self.labels,
                probs=probs[row],
                source_tokens=tuple(tokens),
                target_tokens=(QUERY_TOKEN,),
                attentions=weights[row, :, : len(tokens)][np.newaxis, np.newaxis],
                dropped_tokens=dropped[row],
            )
            for row, tokens in enumerate(kept)
        ]

    def predict_probs(self, texts, batch_size: int = 256) -> np.ndarray:
        ids, _, _ = encode(self.vocab, list(texts), self.max_tokens)
        return np.asarray(self.classifier.predict(ids, batch_size=batch_size, verbose=0))


def load(model_id: str, asset_dir: Path) -> BahdanauRNN:
    asset_dir = Path(asset_dir)
    remedy = retrain_remedy(model_id)
    config = {**DEFAULT_CONFIG, **read_json(asset_dir / CONFIG, remedy)}
    vocab = Vocabulary.load(asset_dir / VOCAB, remedy)
    config["vocab_size"] = len(vocab)
    classifier, inspector = build_models(config)
    load_weights(inspector, asset_dir / WEIGHTS, remedy)
    return BahdanauRNN(model_id, config, vocab, classifier, inspector)


def _fit(config: dict, vocab: Vocabulary, rows, epochs: int, validation=None, verbose: int = 1):
    """Build a fresh model and fit it on ``rows``; returns (classifier, inspector, history)."""
    import keras

    classifier, inspector = build_models(config)
    classifier.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, _, _ = encode(vocab, list(rows.texts), config["max_tokens"])
    fit_args = dict(epochs=epochs, batch_size=64, verbose=verbose)
    if validation is not None:
        x_val, _, _ = encode(vocab, list(validation.texts), config["max_tokens"])
        fit_args["validation_data"] = (x_val, np.asarray(validation.labels))
        fit_args["callbacks"] = [keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=2, restore_best_weights=True)]
    history = classifier.fit(x, np.asarray(rows.labels), **fit_args)
    return classifier, inspector, history


def train(model_id: str, *, data_dir=None, epochs=None, limit=None, out_dir: Path, seed: int = 0, overrides: dict | None = None) -> dict:
    """Choose the epoch count on a 10% validation split, then refit on every training row.

    As for the keras-transformer: the refit gives the shipped model the rows validation held
    back, and both classifiers end up trained on the same rows. ``overrides`` replaces entries
    of DEFAULT_CONFIG, for hyperparameter searches.
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
    # Saved from the inspector: same layers, but no optimizer attached, so no Adam slots are written.
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


def evaluate(model: BahdanauRNN, *, data_dir=None, limit=None) -> dict:
    return evaluate_classifier(model, load_split("test", data_dir, limit))
