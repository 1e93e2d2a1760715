"""The lesson's Keras transformer through the common interface, with its shipped weights."""

import json
import shutil

import numpy as np
import pytest

from models import keras_transformer, registry
from models.base import AssetError, InputError
from models.text import encode

SENTENCES = [
    "Oil prices climb to record high as investors worry about supply",
    "Federer beats Nadal to reach the final",
    "NASA probe sends back images from Mars",
]


@pytest.fixture(scope="module")
def model():
    return registry.load("keras-transformer")


def test_predictions_follow_the_contract(model):
    for prediction in model.predict_batch(SENTENCES):
        layers, heads, target, source = prediction.attentions.shape
        assert (layers, heads) == (1, 2)
        assert target == source == len(prediction.source_tokens) == len(prediction.target_tokens)
        assert prediction.source_tokens == prediction.target_tokens
        np.testing.assert_allclose(prediction.attentions.sum(axis=-1), 1.0, atol=1e-5)
        assert prediction.labels == ("World", "Sports", "Business", "Sci/Tech")
        assert abs(prediction.probs.sum() - 1.0) < 1e-5


def test_the_classifier_gets_the_easy_examples_right(model):
    assert [p.predicted_label for p in model.predict_batch(SENTENCES)] == ["Business", "Sports", "Sci/Tech"]


def test_padding_receives_no_attention(model):
    ids, kept, _ = encode(model.vocab, ["stocks fell sharply"], model.max_tokens)
    padded = np.pad(ids, ((0, 0), (0, 20)))
    _, scores = (np.asarray(t) for t in model.inspector(padded, training=False))
    n = len(kept[0])
    assert np.all(scores[0, :, :n, n:] == 0.0)
    np.testing.assert_allclose(scores[0, :, :n, :n].sum(axis=-1), 1.0, atol=1e-6)


def test_prediction_does_not_depend_on_the_batch_it_is_padded_in(model):
    alone = model.predict(SENTENCES[1])
    in_batch = model.predict_batch([SENTENCES[1], " ".join(["long"] * 100)])[0]
    np.testing.assert_allclose(alone.attentions, in_batch.attentions, atol=1e-5)
    np.testing.assert_allclose(alone.probs, in_batch.probs, atol=1e-5)


def test_fast_probability_path_matches_predict(model):
    np.testing.assert_allclose(model.predict_probs(SENTENCES), np.stack([p.probs for p in model.predict_batch(SENTENCES)]), atol=1e-5)


def test_long_text_is_truncated_and_says_how_much(model):
    prediction = model.predict(" ".join(f"word{i}" for i in range(200)))
    assert prediction.attentions.shape[-1] == model.max_tokens == 128
    assert prediction.dropped_tokens == 72


def test_unicode_and_markup_are_read_as_plain_words(model):
    prediction = model.predict("<b>Ｍａｒｓ</b> rover 🚀 finds ﬁre-ice in Zürich")
    assert prediction.source_tokens == ("b", "mars", "b", "rover", "finds", "fire", "ice", "in", "zürich")


def test_text_without_words_is_refused(model):
    with pytest.raises(InputError, match="no words"):
        model.predict("🚀 !!! ???")


def test_missing_or_corrupt_weights_name_the_file_and_the_command(tmp_path):
    asset_dir = tmp_path / "keras-transformer"
    shutil.copytree(registry.entry("keras-transformer").asset_dir, asset_dir)
    (asset_dir / "weights.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(AssetError, match=r"weights\.weights\.h5 could not be loaded.*python -m models train keras-transformer"):
        keras_transformer.load("keras-transformer", asset_dir)
    (asset_dir / "vocab.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(AssetError, match=r"vocab\.json is unreadable"):
        keras_transformer.load("keras-transformer", asset_dir)
    (asset_dir / "config.json").unlink()
    with pytest.raises(AssetError, match=r"config\.json is missing"):
        keras_transformer.load("keras-transformer", asset_dir)


def test_training_runs_end_to_end_on_a_tiny_slice(tiny_ag_news, tmp_path):
    summary = keras_transformer.train("keras-transformer", data_dir=tiny_ag_news, epochs=2, limit=None, out_dir=tmp_path)
    assert summary["train_rows"] == 32 and summary["validation_rows"] == 4
    assert 1 <= summary["best_epoch"] <= summary["epochs_tried"] <= 2
    trained = keras_transformer.load("keras-transformer", tmp_path)
    assert json.loads((tmp_path / "vocab.json").read_text())[:2] == ["[PAD]", "[UNK]"]
    assert trained.predict("the striker scored").attentions.shape == (1, 2, 3, 3)


def test_shipped_metrics_are_reproduced_by_evaluation(model):
    shipped = json.loads((registry.entry("keras-transformer").asset_dir / "metrics.json").read_text())
    report = keras_transformer.evaluate(model)
    assert report["n"] == shipped["n"] == 7600
    assert report["accuracy"] == pytest.approx(shipped["accuracy"], abs=1e-6)
    assert report["per_class"] == pytest.approx(shipped["per_class"], abs=1e-6)
    # A floor far above chance (0.25) so that a broken retrain cannot ship; the figure itself is in the README.
    assert report["accuracy"] >= 0.80
