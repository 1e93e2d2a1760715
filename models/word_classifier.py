"""What this project's own word-level AG News classifiers share.

``keras-transformer`` and ``bahdanau-rnn`` differ only in their Keras graph and optimizer; both
read words through ``models.text``, pair a trained ``classifier`` with an ``inspector`` that
shares its layers and also returns attention, pick the epoch count on a validation split and
refit on every training row, and keep weights, vocabulary and config in one asset folder.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from models.base import AttentionModel, InputError, check_text, load_weights, retrain_remedy
from models.contract import Prediction
from models.data import AG_NEWS_LABELS, Split, load_split, train_validation_split
from models.evaluation import evaluate_classifier
from models.hf_common import Tokenized
from models.io import atomic_write_files, read_json, write_json
from models.text import Vocabulary, encode

WEIGHTS, VOCAB, CONFIG = "weights.weights.h5", "vocab.json", "config.json"
FIT_BATCH = 64  # rows per training step
Family = TypeVar("Family", bound="WordClassifier")


@dataclass(frozen=True)
class Recipe:
    """How one family builds and trains its models."""

    build_models: Callable[[dict], tuple]  # config -> (classifier, inspector)
    optimizer: Callable[[dict], object]  # config -> a fresh Keras optimizer
    default_config: dict
    default_epochs: int
    patience: int  # epochs without a better validation accuracy before stopping


class WordClassifier(AttentionModel):
    """A word-level Keras classifier; subclasses add the hooks ``models.explain`` calls.

    Those hooks are ``embed(ids)`` and ``forward_embedded(embeds, mask, head_mask=None)``, as
    ``models.hf_common.TransformerClassifier`` describes; words have no special tokens, id 0 is
    padding, and integrated gradients starts from zero embeddings (``baseline_id`` None).
    """

    labels = AG_NEWS_LABELS
    pad_id = 0
    baseline_id: int | None = None
    baseline_token: str | None = None
    baseline_description = "zero vectors in place of the word embeddings"
    jit_compile = False
    head_mask_unsupported: str | None = None

    self_attention = True
    query_token = ""  # the target token of a pooling attention row (self_attention False)
    readout: str  # each family's own: the row its classifier reads (models.contract.READOUTS)

    def __init__(self, model_id: str, config: dict, vocab: Vocabulary, classifier, inspector):
        self.model_id = model_id
        self.config = config
        self.max_tokens = config["max_tokens"]
        self.vocab = vocab
        self.classifier = classifier
        self.inspector = inspector
        self._head_masked: Callable[..., Any] | None = None
        self._head_masked_lock = threading.Lock()

    @property
    @abstractmethod
    def attention_grid(self) -> tuple[int, int]:
        """(layers, heads)."""

    def _prediction(self, words: list[str], probs: np.ndarray, attentions: np.ndarray, dropped: int) -> Prediction:
        """One text's Prediction from its row of outputs; ``attentions`` (layers, heads, queries, time) padded."""
        queries = tuple(words) if self.self_attention else (self.query_token,)
        return Prediction(
            model=self.model_id,
            labels=self.labels,
            probs=probs,
            source_tokens=tuple(words),
            target_tokens=queries,
            attentions=attentions[:, :, : len(queries), : len(words)],
            dropped_tokens=dropped,
            self_attention=self.self_attention,
            readout=self.readout,
        )

    def predict_with_head_mask(self, text: str, head_mask: np.ndarray) -> Prediction:
        """``predict`` with the heads where ``head_mask`` (layers, heads) is 0 switched off.

        Both families predict through Keras's compiled function at one fixed width; this runs a
        compiled function at that width too, so a mask of ones gives predict's exact numbers.
        """
        import tensorflow as tf

        ids, kept, dropped = self.encode_words([check_text(text)], fixed_width=True)
        with self._head_masked_lock:
            if self._head_masked is None:
                spec = [tf.TensorSpec([1, self.max_tokens], tf.int32), tf.TensorSpec([1, *self.attention_grid], tf.float32)]
                self._head_masked = tf.function(self._stacked_forward, input_signature=spec)
        probs, attentions = self._head_masked(ids, np.asarray(head_mask, dtype=np.float32)[np.newaxis])
        return self._prediction(kept[0], np.asarray(probs)[0], np.asarray(attentions)[0], dropped[0])

    def _stacked_forward(self, ids, head_mask):
        from keras import ops

        probs, attentions = self.forward_embedded(self.embed(ids), ops.not_equal(ids, 0), head_mask)
        return probs, ops.stack(attentions, axis=1)

    def encode_words(self, texts: list[str], fixed_width: bool = False) -> tuple[np.ndarray, list[list[str]], list[int]]:
        """``models.text.encode`` that refuses a text with no words (only symbols or emoji)."""
        ids, kept, dropped = encode(self.vocab, texts, self.max_tokens, fixed_width=fixed_width)
        for text, tokens in zip(texts, kept):
            if not tokens:
                raise InputError(f"the text {text[:40]!r} contains no words this model can read")
        return ids, kept, dropped

    def explain_tokens(self, text: str) -> Tokenized:
        """The one text as the model reads it, for ``models.explain``."""
        ids, kept, dropped = self.encode_words([check_text(text)])
        words = tuple(kept[0])
        return Tokenized(ids=tuple(int(i) for i in ids[0, : len(words)]), tokens=words, special=(False,) * len(words), dropped=dropped[0])

    def predict_probs(self, texts, batch_size: int = 256) -> np.ndarray:
        ids, _, _ = encode(self.vocab, list(texts), self.max_tokens)
        return np.asarray(self.classifier.predict(ids, batch_size=batch_size, verbose=0))


def load(recipe: Recipe, model_class: type[Family], model_id: str, asset_dir: Path) -> Family:
    asset_dir = Path(asset_dir)
    remedy = retrain_remedy(model_id)
    config = {**recipe.default_config, **read_json(asset_dir / CONFIG, remedy)}
    vocab = Vocabulary.load(asset_dir / VOCAB, remedy)
    config["vocab_size"] = len(vocab)
    classifier, inspector = recipe.build_models(config)
    load_weights(inspector, asset_dir / WEIGHTS, remedy)
    return model_class(model_id, config, vocab, classifier, inspector)


def _fit(recipe: Recipe, config: dict, vocab: Vocabulary, rows, epochs: int, validation=None, verbose: int = 1):
    """Build a fresh model and fit it on ``rows``; returns (classifier, inspector, history)."""
    import keras

    classifier, inspector = recipe.build_models(config)
    classifier.compile(optimizer=recipe.optimizer(config), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, _, _ = encode(vocab, list(rows.texts), config["max_tokens"])
    fit_args: dict[str, Any] = dict(epochs=epochs, batch_size=FIT_BATCH, verbose=verbose)
    if validation is not None:
        x_val, _, _ = encode(vocab, list(validation.texts), config["max_tokens"])
        fit_args["validation_data"] = (x_val, np.asarray(validation.labels))
        fit_args["callbacks"] = [keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=recipe.patience, restore_best_weights=True)]
    history = classifier.fit(x, np.asarray(rows.labels), **fit_args)
    return classifier, inspector, history


def train(
    recipe: Recipe,
    model_id: str,
    *,
    data_dir=None,
    epochs=None,
    limit=None,
    out_dir: Path,
    seed: int = 0,
    overrides: dict | None = None,
    data: Split | None = None,
    extra_files: dict[str, Callable[[Path], object]] | None = None,
) -> dict:
    """Choose the epoch count on a 10% validation split, then refit on every training row.

    The refit gives the shipped model the 10% of rows that validation held back; with fewer
    than 11,000 rows here that is worth having. ``overrides`` replaces entries of the recipe's
    default config, for hyperparameter searches. ``data`` replaces the AG News training rows
    (``models.shortcut`` trains on poisoned ones) and ``extra_files`` joins the written set.
    """
    import keras

    config = {**recipe.default_config, **(overrides or {})}
    verbose = 2 if limit else 1
    data = data if data is not None else load_split("train", data_dir, limit)
    train_rows, val_rows = train_validation_split(data, 0.1, seed)

    print(f"Choosing the number of epochs on {len(val_rows)} validation rows", flush=True)
    keras.utils.set_random_seed(seed)
    vocab = Vocabulary.build(train_rows.texts, config["vocab_size"], config["min_count"])
    _, _, history = _fit(recipe, {**config, "vocab_size": len(vocab)}, vocab, train_rows, epochs or recipe.default_epochs, val_rows, verbose)
    best = int(np.argmax(history.history["val_accuracy"]))

    print(f"Refitting on all {len(data)} training rows for {best + 1} epochs", flush=True)
    keras.utils.set_random_seed(seed)
    vocab = Vocabulary.build(data.texts, config["vocab_size"], config["min_count"])
    config["vocab_size"] = len(vocab)
    _, inspector, _ = _fit(recipe, config, vocab, data, best + 1, verbose=verbose)

    write_model(out_dir, inspector, vocab, config, extra_files)
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


def write_model(out_dir: Path, inspector, vocab: Vocabulary, config: dict, extra_files: dict[str, Callable[[Path], object]] | None = None) -> None:
    """Weights, vocabulary, config and ``extra_files`` into ``out_dir`` as one checksummed set (what ``load`` reads)."""
    # Saved from the inspector: same layers, but no optimizer attached, so no Adam slots are
    # written and the file stays a third of the size.
    atomic_write_files(
        Path(out_dir),
        {WEIGHTS: lambda tmp: inspector.save_weights(str(tmp)), VOCAB: vocab.write, CONFIG: lambda tmp: write_json(tmp, config), **(extra_files or {})},
    )


def evaluate(model: WordClassifier, *, data_dir=None, limit=None) -> dict:
    """Accuracy on the AG News test set (its first ``limit`` rows if given)."""
    return evaluate_classifier(model, load_split("test", data_dir, limit))
