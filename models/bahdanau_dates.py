"""Bahdanau et al. (2015)'s encoder-decoder with attention, at character level, rewriting
written dates as ISO dates: "3. März 2015" -> "2015-03-03" (model id ``bahdanau-dates``).

Architecture, following the paper (sec. 3 and appendix A) at toy size:

- Encoder: character embedding -> bidirectional GRU; the annotation of character j is
  ``h_j = [forward h_j; backward h_j]`` (sec. 3.2). Padding is masked throughout.
- Decoder initial state ``s_0 = tanh(W_s backward h_1)`` (appendix A.2.2).
- Output step i: ``c_i, alpha_i = AdditiveAttention(h, s_{i-1})`` (eqs. 5-6, models.additive_attention),
  ``s_i = GRU(s_{i-1}, [E y_{i-1}; c_i])``, ``p(y_i) = softmax(W_o [s_i; c_i; E y_{i-1}])``.

Deviations, each for a small classroom model: one softmax layer instead of the paper's maxout
deep output; Adam instead of Adadelta (the gradient norm is still clipped at 1, appendix B.2);
greedy decoding instead of beam search; the decoder is unrolled for exactly
``TARGET_STEPS`` = 11 steps (``YYYY-MM-DD`` and the end marker ``</s>``), the only output length
the task has. Training uses teacher forcing (the true previous character is fed back); greedy
decoding feeds back the model's own choice. Every alpha_i is recorded, one row of the alignment
matrix per generated character, as in the paper's Fig. 3.

Data: ``models.dates_data`` generates the training, validation and test dates in code (formats
and conventions documented there). Validation and test dates have their own fixed seeds, and any
text among them is removed from the training examples, so both measure unseen dates.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from pathlib import Path

import numpy as np

from models.base import AttentionModel, load_weights, retrain_remedy
from models.contract import Prediction
from models.dates_data import FORMATS, Example, check_date, make_examples, valid_iso
from models.evaluation import in_batches
from models.io import read_json
from models.text import PAD, UNK, Vocabulary, encode

START, END = "<s>", "</s>"
TARGET_TOKENS = (START, END, "-", *"0123456789")
TARGET_IDS = {token: index for index, token in enumerate(TARGET_TOKENS)}
TARGET_STEPS = len("YYYY-MM-DD") + 1
SPACE_SHOWN_AS = "␣"  # an attention column labelled " " would look empty
DEFAULT_CONFIG = {
    "max_source_chars": 64,
    "embed_dim": 32,
    "target_embed_dim": 16,
    "encoder_units": 64,
    "attention_units": 64,
    "decoder_units": 128,
    "learning_rate": 2e-3,
}
# One epoch of 40,000 dates already gets almost all validation dates right; three make sure.
DEFAULT_TRAIN_EXAMPLES = 40_000
DEFAULT_EPOCHS = 3
VALIDATION_EXAMPLES, TEST_EXAMPLES = 2_000, 2_000
VALIDATION_SEED, TEST_SEED = 1, 2
WEIGHTS, VOCAB, CONFIG = "weights.weights.h5", "vocab.json", "config.json"


def normalize(text: str) -> str:
    """NFKC (full-width digits become digits) with runs of white space as single spaces, as trained."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def build_models(config: dict):
    """Return (trainer, decoder), sharing all layers.

    The trainer maps (source ids (batch, S), previous target ids (batch, TARGET_STEPS)) to
    next-character probabilities (batch, TARGET_STEPS, len(TARGET_TOKENS)) by teacher forcing.
    The decoder maps source ids alone to greedily generated target ids (batch, TARGET_STEPS) and
    the attention weights (batch, TARGET_STEPS, S), zero on padding.
    """
    import keras
    from keras import layers, ops

    from models.additive_attention import AdditiveAttention

    source = keras.Input(shape=(None,), dtype="int32", name="source")
    mask = layers.Lambda(lambda ids: ops.not_equal(ids, 0), name="mask")(source)
    embedded = layers.Embedding(config["source_vocab_size"], config["embed_dim"], name="source_embedding")(source)
    encoder = layers.Bidirectional(layers.GRU(config["encoder_units"], return_sequences=True, return_state=True), name="encoder")
    annotations, _, backward_last = encoder(embedded, mask=mask)
    initial_state = layers.Dense(config["decoder_units"], activation="tanh", name="initial_state")(backward_last)

    attention = AdditiveAttention(config["attention_units"], name="attention")
    target_embedding = layers.Embedding(len(TARGET_TOKENS), config["target_embed_dim"], name="target_embedding")
    cell = layers.GRUCell(config["decoder_units"], name="decoder")
    readout = layers.Dense(len(TARGET_TOKENS), activation="softmax", name="readout")

    def step(previous_ids, state):
        previous = target_embedding(previous_ids)
        context, weights = attention(annotations, query=ops.expand_dims(state, 1), mask=mask)
        context = context[:, 0]
        state, _ = cell(ops.concatenate([previous, context], axis=-1), state)
        return readout(ops.concatenate([state, context, previous], axis=-1)), state, weights[:, 0]

    previous_ids = keras.Input(shape=(TARGET_STEPS,), dtype="int32", name="previous_ids")
    state, outputs = initial_state, []
    for i in range(TARGET_STEPS):
        probs, state, _ = step(previous_ids[:, i], state)
        outputs.append(probs)
    trainer = keras.Model([source, previous_ids], ops.stack(outputs, axis=1), name="bahdanau_dates_trainer")

    generated = ops.full_like(source[:, 0], TARGET_IDS[START])
    state, tokens, alignments = initial_state, [], []
    for _ in range(TARGET_STEPS):
        probs, state, weights = step(generated, state)
        generated = ops.cast(ops.argmax(probs, axis=-1), "int32")
        tokens.append(generated)
        alignments.append(weights)
    decoder = keras.Model(source, [ops.stack(tokens, axis=1), ops.stack(alignments, axis=1)], name="bahdanau_dates_decoder")
    return trainer, decoder


def encode_targets(isos: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(previous ids, next ids), both (n, TARGET_STEPS): ``<s>2015-03-03`` and ``2015-03-03</s>``."""
    following = np.array([[TARGET_IDS[c] for c in iso] + [TARGET_IDS[END]] for iso in isos], dtype=np.int32)
    previous = np.concatenate([np.full((len(isos), 1), TARGET_IDS[START], dtype=np.int32), following[:, :-1]], axis=1)
    return previous, following


def _until_end(ids: np.ndarray) -> list[str]:
    """Generated tokens up to and including the first ``</s>`` (all of them if there is none)."""
    tokens = [TARGET_TOKENS[i] for i in ids]
    return tokens[: tokens.index(END) + 1] if END in tokens else tokens


def _as_text(tokens: list[str]) -> str:
    return "".join(token for token in tokens if token != END)


class BahdanauDates(AttentionModel):
    labels = ()

    def __init__(self, model_id: str, config: dict, vocab: Vocabulary, decoder):
        self.model_id = model_id
        self.config = config
        self.max_tokens = config["max_source_chars"]
        self.vocab = vocab
        self.decoder = decoder

    def _decode(self, texts: list[str]):
        normal = [normalize(text) for text in texts]
        ids, kept, dropped = encode(self.vocab, normal, self.max_tokens, split=list, fixed_width=True)
        # Compiled once per shape: calling the unrolled decoder eagerly costs seconds, this milliseconds.
        generated, weights = self.decoder.predict_on_batch(ids)
        return normal, kept, dropped, [_until_end(row) for row in generated], weights

    def rewrite(self, texts: list[str]) -> list[str]:
        """The generated strings only (what evaluation compares), without building Predictions."""
        return [_as_text(tokens) for tokens in self._decode(texts)[3]]

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        normal, kept, dropped, generated, weights = self._decode(texts)
        predictions = []
        for row, (chars, tokens) in enumerate(zip(kept, generated)):
            output = _as_text(tokens)
            predictions.append(
                Prediction(
                    model=self.model_id,
                    labels=(),
                    probs=np.zeros(0, dtype=np.float32),
                    source_tokens=tuple(SPACE_SHOWN_AS if c == " " else c for c in chars),
                    target_tokens=tuple(tokens),
                    attentions=weights[row, : len(tokens), : len(chars)][np.newaxis, np.newaxis],
                    output=output,
                    target_special=tuple(t == END for t in tokens),
                    dropped_tokens=dropped[row],
                    notes=notes_for(normal[row], output),
                )
            )
        return predictions


def notes_for(text: str, output: str) -> tuple[str, ...]:
    """What the user should read beside the output: is the input a date, is the output one?"""
    expected, problem = check_date(text)
    notes = []
    if problem:
        notes.append(
            f"This model only knows dates, and {problem}. It still rewrote the text as its best guess; "
            "the alignment shows which characters it looked at for each one it wrote."
        )
    if not valid_iso(output):
        notes.append(f"The output “{output}” is not a valid date.")
    elif expected and output != expected:
        notes.append(f"The model got this one wrong: the date is {expected}.")
    return tuple(notes)


def load(model_id: str, asset_dir: Path) -> BahdanauDates:
    asset_dir = Path(asset_dir)
    remedy = retrain_remedy(model_id)
    config = {**DEFAULT_CONFIG, **read_json(asset_dir / CONFIG, remedy)}
    vocab = Vocabulary.load(asset_dir / VOCAB, remedy)
    config["source_vocab_size"] = len(vocab)
    _, decoder = build_models(config)
    load_weights(decoder, asset_dir / WEIGHTS, remedy)
    return BahdanauDates(model_id, config, vocab, decoder)


def exact_matches(model: BahdanauDates, examples: list[Example]) -> list[bool]:
    """Whether the model rewrites each example exactly as its ISO date, in batches with progress."""
    outputs = [o for chunk in in_batches(model.model_id, [e.text for e in examples], model.rewrite) for o in chunk]
    return [output == example.iso for output, example in zip(outputs, examples)]


def training_examples(n: int, seed: int) -> list[Example]:
    """``n`` generated dates, less any text that is also a validation or test date."""
    held_out = {e.text for e in make_examples(VALIDATION_EXAMPLES, VALIDATION_SEED) + make_examples(TEST_EXAMPLES, TEST_SEED)}
    return [e for e in make_examples(n, seed) if e.text not in held_out]


def train(model_id: str, *, data_dir=None, epochs=None, limit=None, out_dir: Path, seed: int = 0, overrides: dict | None = None) -> dict:
    """Train on ``limit`` generated dates (default 40,000) and save to ``out_dir``.

    ``data_dir`` is not used: the data is generated. ``overrides`` replaces entries of
    DEFAULT_CONFIG, for hyperparameter searches.
    """
    import keras

    from models.io import atomic_write_files, write_json

    keras.utils.set_random_seed(seed)
    config = {**DEFAULT_CONFIG, **(overrides or {})}
    val_examples = make_examples(VALIDATION_EXAMPLES, VALIDATION_SEED)
    train_examples = training_examples(limit or DEFAULT_TRAIN_EXAMPLES, seed)
    vocab = Vocabulary([PAD, UNK, *sorted({c for e in train_examples for c in e.text})])
    config["source_vocab_size"] = len(vocab)

    def arrays(examples):
        source, _, _ = encode(vocab, [e.text for e in examples], config["max_source_chars"], split=list)
        previous, following = encode_targets([e.iso for e in examples])
        return (source, previous), following

    x_train, y_train = arrays(train_examples)
    x_val, y_val = arrays(val_examples)
    trainer, decoder = build_models(config)
    # Gradient norm clipped at 1 as in the paper (appendix B.2): without it the validation loss
    # jumped five-fold in the second epoch of one run, undoing the first.
    optimizer = keras.optimizers.Adam(config["learning_rate"], clipnorm=1.0)
    trainer.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = trainer.fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=epochs or DEFAULT_EPOCHS, batch_size=64, callbacks=[stop], verbose=2 if limit else 1
    )
    out_dir = Path(out_dir)
    # Saved from the decoder: same layers, but no optimizer attached, so no Adam slots are written.
    atomic_write_files(
        out_dir,
        {WEIGHTS: lambda tmp: decoder.save_weights(str(tmp)), VOCAB: vocab.write, CONFIG: lambda tmp: write_json(tmp, config)},
    )
    best = int(np.argmin(history.history["val_loss"]))
    return {
        "model": model_id,
        "train_examples": len(train_examples),
        "validation_examples": len(val_examples),
        "epochs_run": len(history.history["loss"]),
        "best_epoch": best + 1,
        "validation_loss": round(float(history.history["val_loss"][best]), 6),
        "validation_exact_match": round(float(np.mean(exact_matches(BahdanauDates(model_id, config, vocab, decoder), val_examples))), 6),
        "seed": seed,
    }


def evaluate(model: BahdanauDates, *, data_dir=None, limit=None) -> dict:
    """Exact-match accuracy on held-out generated dates (TEST_SEED), overall and per format."""
    examples = make_examples(limit or TEST_EXAMPLES, TEST_SEED)
    hits = exact_matches(model, examples)
    by_format = defaultdict(list)
    for hit, example in zip(hits, examples):
        by_format[example.format].append(hit)
    per_format = {fmt.name: round(float(np.mean(by_format[fmt.name])), 6) for fmt in FORMATS if by_format[fmt.name]}
    return {"accuracy": round(float(np.mean(hits)), 6), "per_class": per_format, "n": len(examples)}
