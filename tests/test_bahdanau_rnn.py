"""The RNN classifier with Bahdanau attention pooling, through the common interface, with its shipped weights."""

import json

import numpy as np
import pytest

from models import bahdanau_rnn, registry
from models.__main__ import main
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


def test_padding_receives_no_attention_and_changes_nothing(model):
    ids, kept, _ = encode(model.vocab, ["stocks fell sharply on wall street"], model.max_tokens)
    n = len(kept[0])
    probs, weights = model.inspector.predict_on_batch(ids)
    padded_probs, padded_weights = model.inspector.predict_on_batch(np.pad(ids, ((0, 0), (0, 30))))
    assert np.all(padded_weights[0, 0, n:] == 0.0)
    np.testing.assert_allclose(padded_weights[0, 0, :n], weights[0, 0], atol=1e-6)
    np.testing.assert_allclose(padded_probs, probs, atol=1e-6)


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
