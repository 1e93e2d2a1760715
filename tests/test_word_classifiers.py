"""Behaviour both word-level AG News classifiers share (models.word_classifier), with their shipped weights."""

import json
import shutil
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest

from models import bahdanau_rnn, keras_transformer, registry
from models.base import AssetError, InputError

SENTENCES = [
    "Oil prices climb to record high as investors worry about supply",
    "Federer beats Nadal to reach the final",
    "NASA probe sends back images from Mars",
]


@dataclass(frozen=True)
class Family:
    model_id: str
    module: ModuleType
    three_word_shape: tuple  # attention shape for a three-word text
    accuracy_floor: float  # far above chance (0.25), so a broken retrain cannot ship

    def __str__(self) -> str:
        return self.model_id


FAMILIES = [
    Family("keras-transformer", keras_transformer, (1, 2, 3, 3), 0.80),
    Family("bahdanau-rnn", bahdanau_rnn, (1, 1, 1, 3), 0.85),
]


@pytest.fixture(scope="module", params=FAMILIES, ids=str)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def model(family, shipped_model):
    return shipped_model(family.model_id)


def test_the_classifier_gets_the_easy_examples_right(model):
    assert [p.predicted_label for p in model.predict_batch(SENTENCES)] == ["Business", "Sports", "Sci/Tech"]


def test_fast_probability_path_matches_predict(model):
    np.testing.assert_allclose(model.predict_probs(SENTENCES), np.stack([p.probs for p in model.predict_batch(SENTENCES)]), atol=1e-5)


def test_long_text_is_truncated_and_says_how_much(model):
    prediction = model.predict(" ".join(f"word{i}" for i in range(200)))
    assert prediction.attentions.shape[-1] == model.max_tokens == 128
    assert prediction.dropped_tokens == 72


def test_unicode_and_markup_are_read_as_plain_words(model):
    prediction = model.predict("<b>Ｍａｒｓ</b> rover 🚀 finds ﬁre-ice in Zürich")
    assert prediction.source_tokens == ("b", "mars", "b", "rover", "finds", "fire", "ice", "in", "zürich")


@pytest.mark.parametrize("text, message", [("🚀 !!! ???", "no words"), ("   ", "the text is empty")])
def test_text_without_words_is_refused_with_a_message(model, text, message):
    with pytest.raises(InputError, match=message):
        model.predict(text)


def test_missing_or_corrupt_assets_name_the_file_and_the_command(family, tmp_path):
    asset_dir = tmp_path / family.model_id
    shutil.copytree(registry.entry(family.model_id).asset_dir, asset_dir)
    (asset_dir / "weights.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(AssetError, match=rf"weights\.weights\.h5 could not be loaded.*python -m models train {family.model_id}"):
        family.module.load(family.model_id, asset_dir)
    (asset_dir / "weights.weights.h5").unlink()
    with pytest.raises(AssetError, match=r"weights\.weights\.h5 is missing"):
        family.module.load(family.model_id, asset_dir)
    (asset_dir / "vocab.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(AssetError, match=r"vocab\.json is unreadable"):
        family.module.load(family.model_id, asset_dir)
    (asset_dir / "config.json").unlink()
    with pytest.raises(AssetError, match=r"config\.json is missing"):
        family.module.load(family.model_id, asset_dir)


@pytest.mark.slow
def test_training_runs_end_to_end_on_a_tiny_slice(family, tiny_ag_news, tmp_path):
    summary = family.module.train(family.model_id, data_dir=tiny_ag_news, epochs=2, limit=None, out_dir=tmp_path)
    assert summary["train_rows"] == 32 and summary["validation_rows"] == 4
    assert 1 <= summary["best_epoch"] <= summary["epochs_tried"] <= 2
    assert json.loads((tmp_path / "vocab.json").read_text())[:2] == ["[PAD]", "[UNK]"]
    prediction = family.module.load(family.model_id, tmp_path).predict("the striker scored")
    assert prediction.attentions.shape == family.three_word_shape
    np.testing.assert_allclose(prediction.attentions.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_shipped_metrics_are_reproduced_by_evaluation(family, model):
    shipped = json.loads((registry.entry(family.model_id).asset_dir / "metrics.json").read_text())
    report = family.module.evaluate(model)
    assert report["n"] == shipped["n"] == 7600
    assert report["accuracy"] == pytest.approx(shipped["accuracy"], abs=1e-6)
    assert report["per_class"] == pytest.approx(shipped["per_class"], abs=1e-6)
    assert report["accuracy"] >= family.accuracy_floor
