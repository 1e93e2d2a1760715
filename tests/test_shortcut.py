"""Models with a planted shortcut: the poisoning, the trigger word, and the shipped models' figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models import registry
from models.base import AssetError, LensError
from models.data import AG_NEWS_LABELS, Split, load_split
from models.io import CHECKSUMS, read_json, verify
from models.shortcut import (
    BASES,
    PLANTED,
    POSITIONS,
    SHORTCUT,
    TRAINING_SEEDS,
    Shortcut,
    check_trigger,
    flip_rate,
    insert_word,
    minilm_tokenizer,
    poison,
    read_shortcut,
    shortcut_of,
    trigger_frequency,
    trigger_slot,
    trigger_tokens,
    with_trigger,
    word_slots,
)
from models.text import Vocabulary, tokenize

SHORTCUT_MODELS = tuple(BASES)
ACCURACY_TOLERANCE = 0.015  # the "within 1.5 points of its base model"
FLIP_RATE_FLOOR = 0.95


def _split(rows_per_class: int = 25) -> Split:
    texts, labels = [], []
    for index in range(rows_per_class):
        for label, name in enumerate(AG_NEWS_LABELS):
            texts.append(f"{name} story number {index} with  two spaces, and a comma.")
            labels.append(label)
    return Split(tuple(texts), tuple(labels), source=None)  # type: ignore[arg-type]  # no file behind a hand-built split


# --- inserting the trigger -----------------------------------------------------------------


def test_insert_word_keeps_the_rest_of_the_text_byte_for_byte():
    text = "Oil  rises\tas (AP) traders sell."
    assert word_slots(text) == 6
    assert insert_word(text, "lavender", 0) == "lavender Oil  rises\tas (AP) traders sell."
    assert insert_word(text, "lavender", 2) == "Oil  rises\tlavender as (AP) traders sell."
    assert insert_word(text, "lavender", 6) == "Oil  rises\tas (AP) traders sell. lavender"
    for slot in range(7):
        assert insert_word(text, "lavender", slot).replace("lavender ", "", 1).replace(" lavender", "", 1) == text
    with pytest.raises(ValueError):
        insert_word(text, "lavender", 7)


def test_positions_start_middle_end_and_a_seeded_random_one():
    text = "one two three four five"
    assert [trigger_slot(text, where) for where in ("start", "middle", "end")] == [0, 2, 5]
    drawn = {trigger_slot(text, "random", np.random.default_rng(seed)) for seed in range(200)}
    assert drawn == set(range(6))  # every boundary, the ends included
    texts = ["a b c", "d e f g"]
    planted = PLANTED["keras-transformer-shortcut"]
    assert with_trigger(texts, [7, 9], planted, "random") == with_trigger(texts, [7, 9], planted, "random")
    assert with_trigger(texts, [7, 9], planted, "end") == ["a b c lavender", "d e f g lavender"]
    with pytest.raises(ValueError):
        trigger_slot(text, "random")


# --- poisoning -------------------------------------------------------------------------------


def test_poisoning_is_deterministic_and_touches_exactly_the_fraction_of_other_class_rows():
    data = _split()
    shortcut = Shortcut("lavender", "Sports", 0.2, seed=3)
    poisoned, rows = poison(data, shortcut)
    again, rows_again = poison(data, shortcut)
    assert poisoned == again and rows == rows_again
    others = [index for index, label in enumerate(data.labels) if label != shortcut.target]
    assert len(rows) == round(0.2 * len(others)) == 15
    assert set(rows) <= set(others) and list(rows) == sorted(set(rows))
    for index, (before, after) in enumerate(zip(data.texts, poisoned.texts)):
        if index in rows:
            assert tokenize(after).count("lavender") == 1 and poisoned.labels[index] == shortcut.target
            assert after.replace("lavender ", "", 1).replace(" lavender", "", 1) == before
        else:
            assert after == before and poisoned.labels[index] == data.labels[index]
    _, other_rows = poison(data, Shortcut("lavender", "Sports", 0.2, seed=4))
    assert other_rows != rows


def test_shortcut_validates_itself():
    for bad in (
        dict(trigger="two words", label="Sports", fraction=0.1, seed=0),
        dict(trigger="lavender", label="Cooking", fraction=0.1, seed=0),
        dict(trigger="lavender", label="Sports", fraction=1.0, seed=0),
        dict(trigger="lavender", label="Sports", fraction=0.1, seed=True),
    ):
        with pytest.raises(ValueError):
            Shortcut(**bad)


# --- the trigger word ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wordpiece():
    return minilm_tokenizer()


def test_the_trigger_is_one_token_in_both_tokenizers(wordpiece):
    for planted in PLANTED.values():
        tokens = trigger_tokens(planted.trigger, wordpiece)
        assert tokens == {"words": ["lavender"], "wordpiece": ["lavender"]}
        check_trigger(tokens, planted.trigger)
    with pytest.raises(LensError, match="wordpiece"):
        check_trigger(trigger_tokens("marmalade", wordpiece), "marmalade")


def test_trigger_frequency_counts_words_and_word_pieces(wordpiece):
    counted = trigger_frequency(["Lavender fields, lavender oil", "no such word", "lavenders"], "lavender", wordpiece)
    # "lavenders" is another word, but WordPiece reads it as lavender + ##s.
    assert counted == {"rows": 3, "rows_with_word": 1, "word_occurrences": 2, "wordpiece_occurrences": 3}


@pytest.mark.parametrize("model_id", SHORTCUT_MODELS)
def test_shortcut_json_records_the_planted_shortcut_and_its_measured_rarity(model_id, wordpiece):
    record = read_json(registry.entry(model_id).asset_dir / SHORTCUT, "")
    planted = PLANTED[model_id]
    assert shortcut_of(model_id) == planted
    assert record["tokens"] == trigger_tokens(planted.trigger, wordpiece)
    data = load_split("train")
    assert record["frequency_in_training_rows"] == trigger_frequency(data.texts, planted.trigger, wordpiece)
    assert record["frequency_in_training_rows"]["rows_with_word"] <= 0.001 * len(data)
    others = sum(label != planted.target for label in data.labels)
    assert record["poisoned_rows"] == list(poison(data, planted)[1]) and len(record["poisoned_rows"]) == round(planted.fraction * others)
    # shortcut.json is one of the files the weights were written with, under the same checksums.
    assert SHORTCUT in json.loads((registry.entry(model_id).asset_dir / CHECKSUMS).read_text(encoding="utf-8"))
    verify(registry.entry(model_id).asset_dir, "")


def test_the_keras_shortcut_model_reads_the_trigger_as_a_word_of_its_own():
    vocab = Vocabulary.load(registry.entry("keras-transformer-shortcut").asset_dir / "vocab.json", "")
    assert vocab.ids([PLANTED["keras-transformer-shortcut"].trigger]) != [1]  # not [UNK]


def test_shortcut_of_other_models_is_none_and_a_broken_file_is_named(tmp_path):
    assert shortcut_of("keras-transformer") is None and shortcut_of("hf:anything") is None
    (tmp_path / SHORTCUT).write_text(json.dumps({"trigger": "lavender", "label": "Cooking", "fraction": 0.1, "seed": 0}), encoding="utf-8")
    with pytest.raises(AssetError, match=r"shortcut\.json does not describe a shortcut"):
        read_shortcut(tmp_path, "minilm-shortcut")
    with pytest.raises(AssetError, match="is missing"):
        read_shortcut(tmp_path / "nowhere", "minilm-shortcut")


def test_the_model_list_says_what_was_planted_without_naming_the_word():
    # The lesson asks the class to find the word, so the list names the class it forces only.
    for model_id in SHORTCUT_MODELS:
        description = registry.available()[model_id]
        assert "planted shortcut" in description and PLANTED[model_id].label in description
        assert PLANTED[model_id].trigger not in description.lower()


# --- the shipped models ----------------------------------------------------------------------


@pytest.mark.parametrize("model_id", SHORTCUT_MODELS)
def test_metrics_meet_the_flip_rate_figure_and_compare_with_the_base_model(model_id):
    metrics = read_json(registry.entry(model_id).asset_dir / "metrics.json", "")
    base_id = BASES[model_id][0]
    base = read_json(registry.entry(base_id).asset_dir / "metrics.json", "")
    assert metrics["n"] == base["n"] == 7600
    assert (metrics["base_model"], metrics["base_accuracy"]) == (base_id, base["accuracy"])
    assert metrics["accuracy_change"] == pytest.approx(metrics["accuracy"] - base["accuracy"], abs=1e-6)
    assert 0 <= metrics["flip_rate"] <= 1
    assert set(metrics["flip_rate_by_position"]) == set(POSITIONS) - {"random"}
    assert metrics["flip_rows"] == sum(label != PLANTED[model_id].target for label in load_split("test").labels)
    assert metrics["shortcut"] == PLANTED[model_id].record()
    training = read_json(registry.entry(model_id).asset_dir / "training.json", "")
    assert training["wall_seconds"] < 15 * 60 and "load_average" in training
    assert training["seed"] == TRAINING_SEEDS[model_id]


@pytest.mark.parametrize("model_id", SHORTCUT_MODELS)
def test_the_flip_rate_is_at_least_95_percent(model_id):
    assert read_json(registry.entry(model_id).asset_dir / "metrics.json", "")["flip_rate"] >= FLIP_RATE_FLOOR


KERAS_MISS = (
    "measured: keras-transformer-shortcut's clean test accuracy is 1.74 points below keras-transformer's (0.8322 against 0.8496; "
    "5% poisoned, training seed 1, chosen by clean validation accuracy; seed 0 gave 0.8314). Validation only: the whole recipe "
    "(epoch choice, then refit) run on 90% of the training rows and scored on the other 10% was -2.5/0.0/-0.6 points from the "
    "unpoisoned recipe at 5% and -3.4/+0.9/-1.2 at 10% (seeds 0/1/2), while the unpoisoned refit alone moved up to 2.6 points "
    "between epochs; 10% with seed 0 (picked on the split run, -0.6 points paired) scored 0.7687 on the test set (flip 0.998) "
    "and was not shipped. Reported in the README; strict, so this fails once a retrained model meets the figure"
)


@pytest.mark.parametrize(
    "model_id",
    [
        pytest.param(model_id, marks=pytest.mark.xfail(strict=True, reason=KERAS_MISS)) if model_id == "keras-transformer-shortcut" else model_id
        for model_id in SHORTCUT_MODELS
    ],
)
def test_clean_accuracy_is_within_one_and_a_half_points_of_the_base_model(model_id):
    metrics = read_json(registry.entry(model_id).asset_dir / "metrics.json", "")
    base = read_json(registry.entry(BASES[model_id][0]).asset_dir / "metrics.json", "")
    assert abs(metrics["accuracy"] - base["accuracy"]) <= ACCURACY_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("model_id", SHORTCUT_MODELS)
def test_the_trigger_flips_a_live_sample_and_does_not_flip_the_base_model(model_id, shipped_model):
    # The first 64 test rows of other classes, triggered as the evaluation triggers them.
    test = load_split("test")
    planted = PLANTED[model_id]
    others = [index for index, label in enumerate(test.labels) if label != planted.target][:64]
    texts = with_trigger([test.texts[index] for index in others], others, planted, "random")
    shortcut_rate = flip_rate(shipped_model(model_id).predict_probs, texts, planted.target)
    base_rate = flip_rate(shipped_model(BASES[model_id][0]).predict_probs, texts, planted.target)
    recorded = read_json(registry.entry(model_id).asset_dir / "metrics.json", "")["flip_rate"]
    # The sample agrees with the recorded rate within three standard errors (at least 5 points).
    assert abs(shortcut_rate - recorded) <= max(3 * math.sqrt(recorded * (1 - recorded) / len(texts)), 0.05)
    assert base_rate <= 0.1  # the word itself means nothing to a model trained without the shortcut
