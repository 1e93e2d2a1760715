"""Value-aware attention on real models: the bundled MiniLM and tiny hf: checkpoints, checked against TF's own layers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models import hf_checkpoint, registry
from models.base import LensError
from models.maths.norms import attention_probabilities, rebuild_layer
from models.value_aware import TOLERANCE, encoder_states, layer_weights, supports_value_aware, transformer_of, value_aware
from tests.helpers.alti import alti_reference
from tests.helpers.checkpoints import TEXT, make_checkpoint

TEXTS = ("The bank raised rates on Friday.", "The striker scored twice as the club won the championship match on Sunday.")


@pytest.fixture(scope="module")
def minilm():
    return registry.load("minilm-agnews")


def _tf_reference(transformer, layer_index: int, hidden: np.ndarray, attention: np.ndarray):
    """Per-head ‖α f^h(x_j)‖, the summed vectors' norms and LayerNorm1's output, with the model's own TF layers."""
    import tensorflow as tf

    config = transformer.config
    main = getattr(transformer, transformer.base_model_prefix)
    x = tf.constant(hidden[np.newaxis])
    alpha = tf.constant(attention, dtype=tf.float32)
    if config.model_type == "distilbert":
        block = main.transformer.layer[layer_index]
        value_layer, dense, heads = block.attention.v_lin, block.attention.out_lin, config.n_heads
        after_attention = block.sa_layer_norm(block.attention(x, x, x, tf.ones((1, len(hidden))), None, False, training=False)[0] + x)
    else:
        block = main.encoder.layer[layer_index]
        value_layer, dense, heads = block.attention.self_attention.value, block.attention.dense_output.dense, config.num_attention_heads
        after_attention = block.attention(
            input_tensor=x,
            attention_mask=None,
            head_mask=None,
            encoder_hidden_states=None,
            encoder_attention_mask=None,
            past_key_value=None,
            output_attentions=False,
            training=False,
        )[0]
    values = value_layer(x)[0]  # x W_V + b_V, (T, D)
    step = values.shape[-1] // heads
    f = tf.stack([tf.matmul(values[:, h * step : (h + 1) * step], dense.kernel[h * step : (h + 1) * step]) for h in range(heads)])  # (H, T, D)
    head_norms = alpha * tf.norm(f, axis=-1)[:, tf.newaxis, :]
    layer_norms = tf.norm(tf.einsum("hij,hjd->ijd", alpha, f), axis=-1)
    return head_norms.numpy(), layer_norms.numpy(), after_attention.numpy()[0]


def _check_against_tf(model, text: str):
    result = value_aware(model, text)
    transformer = transformer_of(model)
    size = len(result.tokens)
    layers, heads = len(layer_weights(transformer)), result.head_norms.shape[1]
    assert result.head_norms.shape == (layers, heads, size, size)
    assert result.layer_norms.shape == result.alti.shape == result.alti_rollout.shape == (layers, size, size)
    assert result.tokens == model.tokenize([text])[0].tokens
    assert result.reconstruction_error < TOLERANCE
    np.testing.assert_allclose(result.alti.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.alti_rollout.sum(axis=-1), 1.0, atol=1e-5)
    # One layer recomputed with TF ops on the model's own layers.
    layer = layers - 1
    hidden_states, attentions = encoder_states(transformer, model.tokenize([text])[0].ids)
    head_norms, layer_norms, after_attention = _tf_reference(transformer, layer, hidden_states[layer], attentions[layer])
    np.testing.assert_allclose(result.head_norms[layer], head_norms, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.layer_norms[layer], layer_norms, rtol=1e-4, atol=1e-5)
    weights = layer_weights(transformer)[layer]
    # ALTI of that layer against the pair-by-pair loop (float64) on the model's own states.
    expected_alti, _ = alti_reference(np.asarray(hidden_states[layer], dtype=np.float64), np.asarray(attentions[layer], dtype=np.float64), weights)
    np.testing.assert_allclose(result.alti[layer], expected_alti, atol=1e-5)
    np.testing.assert_allclose(rebuild_layer(hidden_states[layer], attentions[layer], weights)[0], after_attention, atol=1e-4)
    # The query and key weights were read right too: they reproduce the model's attention.
    np.testing.assert_allclose(attention_probabilities(hidden_states[layer], weights), attentions[layer], atol=1e-5)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("text", TEXTS)
def test_minilm_layers_rebuild_and_norms_match_tf(minilm, text):
    assert supports_value_aware(minilm) is None
    result = _check_against_tf(minilm, text)
    assert result.tokens[0] == "[CLS]" and result.special[0]


@pytest.mark.parametrize("family", ["bert", "roberta", "electra", "distilbert"])
def test_tiny_checkpoints_rebuild_and_norms_match_tf(tmp_path, family):
    model = hf_checkpoint.load(f"hf:{make_checkpoint(tmp_path / family, family)}")
    assert supports_value_aware(model) is None
    _check_against_tf(model, TEXT)


def test_refusals_name_the_reason(tmp_path):
    albert = hf_checkpoint.load(f"hf:{make_checkpoint(tmp_path / 'albert', 'albert')}")
    assert "'albert'" in supports_value_aware(albert)
    keras_model = registry.load("keras-transformer")
    reason = supports_value_aware(keras_model)
    assert "keras-transformer is not a Hugging Face transformer" in reason
    with pytest.raises(LensError, match="not a Hugging Face transformer"):
        value_aware(keras_model, TEXT)


def test_wrong_weights_are_caught_before_any_norm(tmp_path, monkeypatch):
    import models.value_aware as module

    model = hf_checkpoint.load(f"hf:{make_checkpoint(tmp_path / 'bert')}")
    read = module.layer_weights

    def off_by_a_little(transformer):
        weights = read(transformer)
        return [dataclasses.replace(weights[0], ln2_gamma=weights[0].ln2_gamma * 1.01), *weights[1:]]

    monkeypatch.setattr(module, "layer_weights", off_by_a_little)
    with pytest.raises(LensError, match="could not be rebuilt"):
        value_aware(model, TEXT)
