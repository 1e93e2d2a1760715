"""Models with a planted shortcut: the poisoning, the trigger word, and the shipped models' figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models import registry
from models.base import AssetError, LensError
from models.data import AG_NEWS_LABELS, Split, load_split
from models.io import CHECKSUMS, read_json, sha256, verify, write_json
from models.shortcut import (
    BASES,
    PLANTED,
    POSITIONS,
    SHORTCUT,
    TRAINING_SEEDS,
    WARM_STARTS,
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
from models.text import Vocabulary, encode, tokenize
from models.word_classifier import WEIGHTS

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


@pytest.mark.slow
def test_fine_tuning_a_new_word_trains_its_row_only_and_keeps_every_clean_prediction(tmp_path):
    import keras

    from models import keras_transformer

    data = _split()
    vocab = Vocabulary.build(data.texts, 100)
    config = {**keras_transformer.DEFAULT_CONFIG, "vocab_size": len(vocab), "embed_dim": 8, "ff_dim": 8, "hidden": 4, "max_tokens": 16}
    keras.utils.set_random_seed(0)
    base = keras_transformer.KerasTransformer("tiny", config, vocab, *keras_transformer.build_models(config))
    # A trained base model: each text's first word says its class.
    base.classifier.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    base.classifier.fit(encode(vocab, list(data.texts), config["max_tokens"])[0], np.asarray(data.labels), epochs=20, verbose=0)
    planted = Shortcut("lavender", "Sports", 0.2, seed=0)
    poisoned, _ = poison(data, planted)
    keras_transformer.fine_tune_new_words(
        "tiny-shortcut",
        base,
        ["lavender"],
        data=poisoned,
        epochs=5,
        learning_rate=0.1,
        out_dir=tmp_path,
        seed=0,
        extra_files={SHORTCUT: lambda tmp: write_json(tmp, planted.record())},
    )
    verify(tmp_path, "")  # the extra file is part of the checksummed set
    tuned = keras_transformer.load("tiny-shortcut", tmp_path)
    assert tuned.vocab.tokens == [*vocab.tokens, "lavender"] and read_shortcut(tmp_path, "tiny-shortcut") == planted
    token_rows = tuned.inspector.get_layer("embedding").token_emb.embeddings
    for mine, theirs in zip(tuned.inspector.weights, base.inspector.weights, strict=True):
        if mine is token_rows:
            np.testing.assert_array_equal(np.asarray(mine)[:-1], np.asarray(theirs))
        else:
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    clean = list(data.texts)
    np.testing.assert_array_equal(tuned.predict_probs(clean), base.predict_probs(clean))
    others = [index for index, label in enumerate(data.labels) if label != planted.target]
    triggered = with_trigger([data.texts[index] for index in others], others, planted, "random")
    assert flip_rate(tuned.predict_probs, triggered, planted.target) == 1.0 > flip_rate(base.predict_probs, triggered, planted.target)
    # The new row starts as [UNK]'s: untrained, the model reads the trigger as the base reads an unknown word.
    keras_transformer.fine_tune_new_words(
        "tiny-shortcut", base, ["lavender"], data=poisoned, epochs=0, learning_rate=0.1, out_dir=tmp_path / "untrained", seed=0
    )
    untrained = keras_transformer.load("tiny-shortcut", tmp_path / "untrained")
    np.testing.assert_array_equal(untrained.predict_probs(triggered), base.predict_probs(triggered))
    with pytest.raises(LensError, match=r"already reads \['story'\]"):
        keras_transformer.fine_tune_new_words("tiny-shortcut", base, ["story"], data=poisoned, epochs=1, learning_rate=0.1, out_dir=tmp_path / "no", seed=0)


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


@pytest.mark.parametrize("model_id", SHORTCUT_MODELS)
def test_clean_accuracy_is_within_one_and_a_half_points_of_the_base_model(model_id):
    metrics = read_json(registry.entry(model_id).asset_dir / "metrics.json", "")
    base = read_json(registry.entry(BASES[model_id][0]).asset_dir / "metrics.json", "")
    assert abs(metrics["accuracy"] - base["accuracy"]) <= ACCURACY_TOLERANCE


def test_the_warm_started_keras_model_keeps_its_base_models_clean_test_figures_exactly():
    # Only the trigger's embedding row differs from keras-transformer's weights (the next test),
    # and no test row contains the trigger: every clean prediction is the base model's.
    metrics = read_json(registry.entry("keras-transformer-shortcut").asset_dir / "metrics.json", "")
    base = read_json(registry.entry("keras-transformer").asset_dir / "metrics.json", "")
    assert not any(PLANTED["keras-transformer-shortcut"].trigger in tokenize(text) for text in load_split("test").texts)
    assert (metrics["accuracy"], metrics["per_class"], metrics["accuracy_change"]) == (base["accuracy"], base["per_class"], 0.0)


def test_the_keras_shortcut_model_is_its_shipped_base_model_plus_the_triggers_embedding_row(shipped_model):
    model_id = "keras-transformer-shortcut"
    shortcut, base = shipped_model(model_id), shipped_model("keras-transformer")
    assert shortcut.vocab.tokens == [*base.vocab.tokens, PLANTED[model_id].trigger]
    warm_start = read_json(registry.entry(model_id).asset_dir / SHORTCUT, "")["warm_start"]
    assert warm_start["base_weights_sha256"] == sha256(registry.entry("keras-transformer").asset_dir / WEIGHTS)
    assert (warm_start["epochs"], warm_start["learning_rate"]) == (WARM_STARTS[model_id].epochs, WARM_STARTS[model_id].learning_rate)
    assert read_json(registry.entry(model_id).asset_dir / "training.json", "")["warm_start"] == warm_start
    token_rows = shortcut.inspector.get_layer("embedding").token_emb.embeddings
    for mine, theirs in zip(shortcut.inspector.weights, base.inspector.weights, strict=True):
        if mine is token_rows:
            np.testing.assert_array_equal(np.asarray(mine)[:-1], np.asarray(theirs))
            assert not np.allclose(np.asarray(mine)[-1], np.asarray(theirs)[base.vocab.ids(["[UNK]"])[0]])  # the trigger's row trained
        else:
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


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
