"""The lesson's Keras transformer: its own attention shape and padding (shared behaviour: test_word_classifiers)."""

import numpy as np
import pytest

from models.text import encode

SENTENCES = [
    "Oil prices climb to record high as investors worry about supply",
    "Federer beats Nadal to reach the final",
    "NASA probe sends back images from Mars",
]


@pytest.fixture(scope="module")
def model(shipped_model):
    return shipped_model("keras-transformer")


def test_predictions_follow_the_contract(model):
    for prediction in model.predict_batch(SENTENCES):
        layers, heads, target, source = prediction.attentions.shape
        assert (layers, heads) == (1, 2)
        assert target == source == len(prediction.source_tokens) == len(prediction.target_tokens)
        assert prediction.source_tokens == prediction.target_tokens
        np.testing.assert_allclose(prediction.attentions.sum(axis=-1), 1.0, atol=1e-5)
        assert prediction.labels == ("World", "Sports", "Business", "Sci/Tech")
        assert abs(prediction.probs.sum() - 1.0) < 1e-5


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
