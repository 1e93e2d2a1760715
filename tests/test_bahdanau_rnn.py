"""The RNN classifier with Bahdanau attention pooling, through the common interface, with its shipped weights."""

import json
import shutil

import numpy as np
import pytest

from models import bahdanau_rnn, registry
from models.__main__ import main
from models.base import AssetError, InputError
from models.text import encode, tokenize

SENTENCES = [
    "Oil prices climb to record high as investors worry about supply",
    "Federer beats Nadal to reach the final",
    "NASA probe sends back images from Mars",
]


@pytest.fixture(scope="module")
def model():
    return registry.load("bahdanau-rnn")


def test_predictions_are_one_query_row_over_the_words(model):
    for text, prediction in zip(SENTENCES, model.predict_batch(SENTENCES)):
        assert prediction.attentions.shape == (1, 1, 1, len(tokenize(text)))
        assert prediction.source_tokens == tuple(tokenize(text))
        assert prediction.target_tokens == ("[query]",)
        assert prediction.output is None and not prediction.is_seq2seq
        np.testing.assert_allclose(prediction.attentions.sum(axis=-1), 1.0, atol=1e-5)
        assert prediction.labels == ("World", "Sports", "Business", "Sci/Tech")
        assert abs(prediction.probs.sum() - 1.0) < 1e-5


def test_the_classifier_gets_the_easy_examples_right(model):
    assert [p.predicted_label for p in model.predict_batch(SENTENCES)] == ["Business", "Sports", "Sci/Tech"]


def test_padding_receives_no_attention_and_changes_nothing(model):
    ids, kept, _ = encode(model.vocab, ["stocks fell sharply on wall street"], model.max_tokens)
    n = len(kept[0])
    probs, weights = model.inspector.predict_on_batch(ids)
    padded_probs, padded_weights = model.inspector.predict_on_batch(np.pad(ids, ((0, 0), (0, 30))))
    assert np.all(padded_weights[0, 0, n:] == 0.0)
    np.testing.assert_allclose(padded_weights[0, 0, :n], weights[0, 0], atol=1e-6)
    np.testing.assert_allclose(padded_probs, probs, atol=1e-6)


def test_fast_probability_path_matches_predict(model):
    np.testing.assert_allclose(model.predict_probs(SENTENCES), np.stack([p.probs for p in model.predict_batch(SENTENCES)]), atol=1e-5)


def test_long_text_is_truncated_and_says_how_much(model):
    prediction = model.predict(" ".join(f"word{i}" for i in range(200)))
    assert prediction.attentions.shape == (1, 1, 1, 128)
    assert prediction.dropped_tokens == 72


def test_unicode_and_markup_are_read_as_plain_words(model):
    prediction = model.predict("<b>Ｍａｒｓ</b> rover 🚀 finds ﬁre-ice in Zürich")
    assert prediction.source_tokens == ("b", "mars", "b", "rover", "finds", "fire", "ice", "in", "zürich")


@pytest.mark.parametrize("text, message", [("🚀 !!! ???", "no words"), ("   ", "the text is empty")])
def test_text_without_words_is_refused_with_a_message(model, text, message):
    with pytest.raises(InputError, match=message):
        model.predict(text)


def test_missing_or_corrupt_weights_name_the_file_and_the_command(tmp_path):
    asset_dir = tmp_path / "bahdanau-rnn"
    shutil.copytree(registry.entry("bahdanau-rnn").asset_dir, asset_dir)
    (asset_dir / "weights.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(AssetError, match=r"weights\.weights\.h5 could not be loaded.*python -m models train bahdanau-rnn"):
        bahdanau_rnn.load("bahdanau-rnn", asset_dir)
    (asset_dir / "weights.weights.h5").unlink()
    with pytest.raises(AssetError, match=r"weights\.weights\.h5 is missing"):
        bahdanau_rnn.load("bahdanau-rnn", asset_dir)
    (asset_dir / "vocab.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(AssetError, match=r"vocab\.json is unreadable"):
        bahdanau_rnn.load("bahdanau-rnn", asset_dir)


def test_training_runs_end_to_end_on_a_tiny_slice(tiny_ag_news, tmp_path):
    summary = bahdanau_rnn.train("bahdanau-rnn", data_dir=tiny_ag_news, epochs=2, limit=None, out_dir=tmp_path)
    assert summary["train_rows"] == 32 and summary["validation_rows"] == 4
    assert 1 <= summary["best_epoch"] <= summary["epochs_tried"] <= 2
    trained = bahdanau_rnn.load("bahdanau-rnn", tmp_path)
    prediction = trained.predict("the striker scored")
    assert prediction.attentions.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(prediction.attentions.sum(), 1.0, atol=1e-5)


def test_the_encoder_can_be_an_lstm():
    config = {**bahdanau_rnn.DEFAULT_CONFIG, "rnn": "lstm", "vocab_size": 50}
    classifier, inspector = bahdanau_rnn.build_models(config)
    assert classifier.get_layer("encoder").forward_layer.__class__.__name__ == "LSTM"
    probs, weights = inspector.predict_on_batch(np.array([[5, 6, 7, 0, 0]], dtype=np.int32))
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)
    assert np.all(weights[0, 0, 3:] == 0.0) and probs.shape == (1, 4)
    with pytest.raises(ValueError, match="rnn must be one of"):
        bahdanau_rnn.build_models({**config, "rnn": "transformer"})


def test_cli_evaluate_json_has_the_report_keys(capsys, tiny_ag_news):
    assert main(["evaluate", "--model", "bahdanau-rnn", "--json", "--data", str(tiny_ag_news), "--limit", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"model", "accuracy", "per_class", "n"}
    assert report["model"] == "bahdanau-rnn" and report["n"] == 8
    assert set(report["per_class"]) == {"World", "Sports", "Business", "Sci/Tech"}


def test_shipped_metrics_are_reproduced_by_evaluation(model):
    shipped = json.loads((registry.entry("bahdanau-rnn").asset_dir / "metrics.json").read_text())
    report = bahdanau_rnn.evaluate(model)
    assert report["n"] == shipped["n"] == 7600
    assert report["accuracy"] == pytest.approx(shipped["accuracy"], abs=1e-6)
    assert report["per_class"] == pytest.approx(shipped["per_class"], abs=1e-6)
    assert report["accuracy"] >= 0.85
