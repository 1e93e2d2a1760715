"""The Prediction contract validates itself: a broken model wrapper fails loudly, not in a plot."""

import numpy as np
import pytest

from models.base import MAX_INPUT_CHARS, InputError, check_text
from models.contract import ContractError, Prediction


def uniform_prediction(**overrides):
    tokens = ("a", "b", "c")
    fields = dict(
        model="test",
        labels=("x", "y"),
        probs=np.array([0.25, 0.75]),
        source_tokens=tokens,
        target_tokens=tokens,
        attentions=np.full((2, 3, 3, 3), 1 / 3),
        self_attention=True,
        readout="first",
    )
    fields.update(overrides)
    return Prediction(**fields)


def test_valid_prediction_is_normalised_and_frozen():
    prediction = uniform_prediction()
    assert prediction.attentions.dtype == np.float32
    assert (prediction.num_layers, prediction.num_heads) == (2, 3)
    assert prediction.predicted_label == "y"
    assert prediction.source_special == (False, False, False)
    with pytest.raises(AttributeError):
        prediction.model = "other"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(attentions=np.full((3, 3, 3), 1 / 3)), "4-D"),
        (dict(attentions=np.full((1, 1, 2, 3), 1 / 3)), "does not match"),
        (dict(attentions=np.full((1, 1, 3, 3), 0.5)), "sum to 1"),
        (dict(attentions=np.full((1, 1, 3, 3), np.nan)), "finite"),
        (dict(probs=np.array([0.5, 0.6])), "sum to 1"),
        (dict(probs=np.array([1.0])), "does not match"),
        (dict(source_special=(True,)), "special-token"),
        (dict(dropped_tokens=-1), "negative"),
        (dict(target_tokens=("a", "b", "d")), "same tokens"),
        (dict(readout="last"), "readout must be one of"),
        (dict(readout=""), "names the attention row"),
        (dict(readout="pooling"), "exactly one query row"),
    ],
)
def test_broken_predictions_are_rejected(overrides, message):
    with pytest.raises(ContractError, match=message):
        uniform_prediction(**overrides)


def test_seq2seq_prediction_has_no_probabilities_and_rectangular_attention():
    prediction = Prediction(
        model="dates",
        labels=(),
        probs=np.zeros(0),
        source_tokens=tuple("3 mar"),
        target_tokens=("0", "3", "</s>"),
        attentions=np.full((1, 1, 3, 5), 0.2),
        output="03",
    )
    assert prediction.is_seq2seq and prediction.predicted_label is None
    assert prediction.to_json_dict()["attention_shape"] == [1, 1, 3, 5]


def test_json_record_has_the_cli_keys():
    record = uniform_prediction().to_json_dict()
    assert set(record) == {"model", "labels", "probs", "source_tokens", "target_tokens", "attention_shape", "output", "self_attention", "readout"}
    assert (record["self_attention"], record["readout"]) == (True, "first")
    assert record["attention_shape"] == [2, 3, 3, 3]


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_refused_with_a_hint(text):
    with pytest.raises(InputError, match="empty"):
        check_text(text)


def test_huge_text_is_refused_with_the_limit():
    with pytest.raises(InputError, match="20,000"):
        check_text("a" * (MAX_INPUT_CHARS + 1))


def test_the_readout_row_is_the_one_the_classifier_reads():
    attentions = np.array([[[[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]]]])
    first = uniform_prediction(attentions=attentions)
    assert first.readout_row(attentions[0, 0]).tolist() == [0.5, 0.5, 0.0]
    mean = uniform_prediction(attentions=attentions, readout="mean")
    assert np.allclose(mean.readout_row(attentions[0, 0]), [0.25, 0.5833333, 0.1666667])
