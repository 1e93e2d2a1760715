"""hf:<folder> checkpoints, tested offline on tiny randomly initialised models saved to tmp folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import registry
from models.__main__ import main as cli
from models.base import LensError
from models.data import load_split
from models.hf_checkpoint import CheckpointNotFoundError, NoClassificationHeadError, UnsupportedArchitectureError
from models.maths.tokens import BYTE_BPE, SENTENCEPIECE, WORDPIECE, merge_prediction
from tests.helpers.checkpoints import TEXT, make_checkpoint


@pytest.fixture(autouse=True)
def allow_checkpoints(monkeypatch):
    monkeypatch.setenv(registry.ALLOW_HF_ENV, "1")


@pytest.fixture(scope="module")
def bert_dir(checkpoint) -> Path:
    return checkpoint("bert")


def _plain_call(folder: Path, prediction, tokenizer):
    """The checkpoint loaded independently and called eagerly on the prediction's ids."""
    import tensorflow as tf
    from transformers import TFAutoModelForSequenceClassification

    reference = TFAutoModelForSequenceClassification.from_pretrained(folder)
    ids = np.asarray([tokenizer.convert_tokens_to_ids(list(prediction.source_tokens))], dtype=np.int32)
    outputs = reference(input_ids=ids, attention_mask=np.ones_like(ids), output_attentions=True)
    return np.stack([a.numpy()[0] for a in outputs.attentions]), tf.nn.softmax(outputs.logits).numpy()[0]


@pytest.mark.parametrize(
    ("family", "scheme"),
    [("bert", WORDPIECE), ("distilbert", WORDPIECE), ("electra", WORDPIECE), ("roberta", BYTE_BPE), ("albert", SENTENCEPIECE)],
)
def test_families_load_and_match_a_plain_call(checkpoint, family, scheme):
    folder = checkpoint(family)
    model = registry.load(f"hf:{folder}")
    prediction = model.predict(TEXT)
    assert model.model_id == f"hf:{folder}"
    assert model.labels == prediction.labels == ("World", "Sports", "Business")
    assert model.subword_scheme == scheme
    n = len(prediction.source_tokens)
    assert prediction.attentions.shape == (2, 2, n, n)
    assert prediction.source_special[0] and prediction.source_special[-1] and not any(prediction.source_special[1:-1])
    attentions, probs = _plain_call(folder, prediction, model.tokenizer)
    assert np.abs(prediction.attentions - attentions).max() < 1e-5
    np.testing.assert_allclose(prediction.probs, probs, atol=1e-6)
    words = merge_prediction(prediction, model.subword_scheme)
    # Every tiny tokenizer splits "transformers" into pieces; the word view joins them again.
    assert "transformers" not in prediction.source_tokens
    assert "transformers" in words.source_tokens
    np.testing.assert_allclose(words.attentions.sum(-1), 1.0, atol=1e-5)


def test_truncation_is_reported(bert_dir):
    model = registry.load(f"hf:{bert_dir}")
    assert model.max_tokens == 64
    prediction = model.predict("match " * 100)
    assert prediction.attentions.shape[-1] == 64
    assert prediction.dropped_tokens == 100 - 62


def test_checkpoints_are_off_unless_the_operator_allows_them(monkeypatch, bert_dir):
    monkeypatch.delenv(registry.ALLOW_HF_ENV)
    assert not registry.hf_models_allowed()
    with pytest.raises(registry.CheckpointsDisabledError, match=registry.ALLOW_HF_ENV):
        registry.load(f"hf:{bert_dir}")
    monkeypatch.setenv(registry.ALLOW_HF_ENV, "0")
    assert not registry.hf_models_allowed()
    monkeypatch.setenv(registry.ALLOW_HF_ENV, "true")
    assert registry.hf_models_allowed()


def test_missing_folder_and_unknown_repo(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        registry.load(f"hf:{tmp_path / 'nowhere'}")
    # HF_HUB_OFFLINE=1 (conftest): an uncached hub name fails without touching the network.
    with pytest.raises(CheckpointNotFoundError, match="not a local folder"):
        registry.load("hf:attention-lens-tests/no-such-model")
    with pytest.raises(CheckpointNotFoundError, match="write hf: followed by"):
        registry.load("hf:")


def test_bare_encoder_has_no_classification_head(tmp_path):
    folder = make_checkpoint(tmp_path / "encoder", head=False)
    with pytest.raises(NoClassificationHeadError, match="BertModel checkpoint without a text-classification head"):
        registry.load(f"hf:{folder}")
    # A config that claims a head the weights do not have is caught when the weights load.
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["BertForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(NoClassificationHeadError, match="no trained classification head"):
        registry.load(f"hf:{folder}")


def test_regression_and_multi_label_heads_are_refused(tmp_path):
    from transformers import BertConfig

    BertConfig(num_labels=1, architectures=["BertForSequenceClassification"]).save_pretrained(tmp_path / "regression")
    with pytest.raises(NoClassificationHeadError, match="has a regression head"):
        registry.load(f"hf:{tmp_path / 'regression'}")
    BertConfig(num_labels=5, problem_type="multi_label_classification").save_pretrained(tmp_path / "multi")
    with pytest.raises(NoClassificationHeadError, match="has a multi_label_classification head"):
        registry.load(f"hf:{tmp_path / 'multi'}")


def test_architectures_without_a_tf_class_or_support(tmp_path):
    from transformers import GPT2Config, ModernBertConfig

    ModernBertConfig(num_labels=2).save_pretrained(tmp_path / "modernbert")
    with pytest.raises(UnsupportedArchitectureError, match="no TensorFlow class"):
        registry.load(f"hf:{tmp_path / 'modernbert'}")
    GPT2Config(num_labels=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(UnsupportedArchitectureError, match="not supported"):
        registry.load(f"hf:{tmp_path / 'gpt2'}")
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "lens-custom", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}))
    with pytest.raises(UnsupportedArchitectureError, match="never runs a checkpoint's own code"):
        registry.load(f"hf:{custom}")
    assert not (custom / "configuration_custom.py").exists()


def test_cli_predict_and_evaluate(tmp_path, tiny_ag_news, capsys, monkeypatch, bert_dir):
    ag_news = make_checkpoint(tmp_path / "ag", labels={0: "World", 1: "Sports", 2: "Business", 3: "Sci/Tech"})
    assert cli(["predict", "--model", f"hf:{ag_news}", TEXT]) == 0
    assert "Sci/Tech" in capsys.readouterr().out
    assert cli(["evaluate", "--model", f"hf:{ag_news}", "--data", str(tiny_ag_news), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n"] == 32
    rows = load_split("test", tiny_ag_news)
    predicted = registry.load(f"hf:{ag_news}").predict_probs(list(rows.texts)).argmax(axis=1)
    assert report["accuracy"] == pytest.approx(float(np.mean(predicted == np.asarray(rows.labels))), abs=1e-6)
    assert cli(["evaluate", "--model", f"hf:{ag_news}", "--data", str(tiny_ag_news), "--write-metrics"]) == 2
    assert "--write-metrics records" in capsys.readouterr().err
    # bert_dir has three labels (World, Sports, Business): not an AG News classifier.
    assert cli(["evaluate", "--model", f"hf:{bert_dir}", "--data", str(tiny_ag_news)]) == 2
    assert "evaluation needs an AG News classifier" in capsys.readouterr().err
    assert cli(["train", f"hf:{bert_dir}"]) == 2
    assert "external checkpoint" in capsys.readouterr().err
    monkeypatch.delenv(registry.ALLOW_HF_ENV)
    assert cli(["predict", "--model", f"hf:{ag_news}", TEXT]) == 2
    assert registry.ALLOW_HF_ENV in capsys.readouterr().err


def test_evaluate_refuses_other_label_sets_before_reading_data(bert_dir):
    from models.hf_checkpoint import evaluate

    with pytest.raises(LensError, match="World, Sports, Business, Sci/Tech"):
        evaluate(registry.load(f"hf:{bert_dir}"), data_dir="/nonexistent")
