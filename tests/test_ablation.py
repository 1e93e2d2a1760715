"""Switching heads off: exact at no head, equal to transformers' own head mask, private to each call."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from models import registry
from models.base import LensError
from models.explain.ablation import (
    format_heads,
    head_importance,
    head_mask,
    normalise_per_layer,
    parse_heads,
    predict_with_heads_off,
    single_head_effects,
    supports_ablation,
)
from models.explain.runner import runner_for
from models.keras_transformer import build_models
from models.minilm import pool
from tests.helpers.tiny_models import TinyAttentionClassifier, finite_difference_gradient, numpy_forward

TEXT = "Federer beats Nadal to reach the Wimbledon final"
SHORT = "Stocks fall as oil climbs"


@pytest.fixture(scope="module")
def minilm(shipped_model):
    return shipped_model("minilm-agnews")


@pytest.fixture(scope="module")
def keras_transformer(shipped_model):
    return shipped_model("keras-transformer")


@pytest.fixture(scope="module")
def rnn(shipped_model):
    return shipped_model("bahdanau-rnn")


def test_head_specs_parse_one_based_and_print_back():
    assert parse_heads("1:2, 3:1,1:2", (6, 12)) == frozenset({(0, 1), (2, 0)})
    assert parse_heads("", (6, 12)) == frozenset()
    assert format_heads(frozenset({(2, 0), (0, 1)})) == "1:2,3:1"
    for spec, message in [("0:1", "no head 0:1"), ("7:1", "no head 7:1"), ("1:13", "no head 1:13"), ("1-2", "not a head"), ("a:b", "not a head")]:
        with pytest.raises(LensError, match=message):
            parse_heads(spec, (6, 12))


def test_head_mask_zeroes_exactly_the_heads_off():
    mask = head_mask((2, 3), frozenset({(1, 2), (0, 0)}))
    np.testing.assert_array_equal(mask, [[0, 1, 1], [1, 1, 0]])
    with pytest.raises(LensError):
        head_mask((2, 3), frozenset({(2, 0)}))


@pytest.mark.parametrize("fixture", ["keras_transformer", "rnn", pytest.param("minilm", marks=pytest.mark.slow)])
def test_switching_nothing_off_is_bit_identical_to_predict(fixture, request):
    model = request.getfixturevalue(fixture)
    for text in (TEXT, SHORT):
        plain, masked = model.predict(text), predict_with_heads_off(model, text, frozenset())
        assert np.array_equal(plain.probs, masked.probs)
        assert np.array_equal(plain.attentions, masked.attentions)
        assert plain.source_tokens == masked.source_tokens and not masked.notes


def _reference_with_transformers_head_mask(model, text: str, heads_off) -> np.ndarray:
    """minilm-agnews's probabilities with transformers' own encoder applying the head mask.

    TFBertMainLayer refuses head_mask, so its steps are taken by hand up to the encoder, which
    is called with a per-layer mask (1, heads, 1, 1) multiplying the attention probabilities.
    """
    import tensorflow as tf

    ids = tf.constant([model.explain_tokens(text).ids], tf.int32)
    mask = tf.ones_like(ids)
    extended = (1.0 - tf.cast(mask, tf.float32)[:, None, None, :]) * -10000.0
    outputs = _encoder_with_head_mask(model.encoder.bert, ids, extended, model.attention_grid, heads_off)
    return np.asarray(model.head(pool(outputs.hidden_states, mask, model.config["pooling"]), training=False))[0]


def _encoder_with_head_mask(main, ids, extended_mask, grid: tuple[int, int], heads_off):
    """transformers' own TF BERT embeddings and encoder on ``ids``, its per-layer head mask
    (1, heads, 1, 1) multiplying the attention probabilities of ``heads_off`` by 0."""
    import tensorflow as tf

    layers, heads = grid
    keep = head_mask(grid, heads_off)
    embedded = main.embeddings(input_ids=ids, token_type_ids=tf.zeros_like(ids), training=False)
    return main.encoder(
        hidden_states=embedded,
        attention_mask=extended_mask,
        head_mask=[tf.constant(keep[layer].reshape(1, heads, 1, 1)) for layer in range(layers)],
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        past_key_values=[None] * layers,
        use_cache=False,
        output_attentions=False,
        output_hidden_states=True,
        return_dict=True,
        training=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("heads_off", [{(0, 0)}, {(5, 3), (5, 7), (2, 11)}, {(layer, head) for layer in range(6) for head in range(0, 12, 2)}])
def test_minilm_heads_off_equal_transformers_encoder_head_mask(minilm, heads_off):
    heads_off = frozenset(heads_off)
    ablated = predict_with_heads_off(minilm, TEXT, heads_off)
    np.testing.assert_allclose(ablated.probs, _reference_with_transformers_head_mask(minilm, TEXT, heads_off), atol=2e-6)
    assert ablated.notes == (f"heads switched off: {format_heads(heads_off)}",)


@pytest.mark.slow
def test_every_head_of_a_layer_off_changes_the_output(minilm, keras_transformer):
    for model in (minilm, keras_transformer):
        layers, heads = model.attention_grid
        original = model.predict(TEXT).probs
        for layer in range(layers):
            ablated = predict_with_heads_off(model, TEXT, frozenset((layer, head) for head in range(heads))).probs
            assert np.abs(ablated - original).max() > 1e-3, (model.model_id, layer)


def test_keras_transformer_heads_off_equal_zeroing_the_output_kernel_slice(keras_transformer):
    # Independent reference: zero head 2's slice of the output projection in a copy of the weights.
    model = keras_transformer
    attention = model.inspector.get_layer("transformer_block").att
    original = [np.array(w) for w in attention.output_dense.get_weights()]
    _, copy = build_models(model.config)
    copy.set_weights(model.inspector.get_weights())
    kernel, bias = (np.array(w) for w in copy.get_layer("transformer_block").att.output_dense.get_weights())
    kernel[1] = 0.0  # (heads, key_dim, embed_dim)
    copy.get_layer("transformer_block").att.output_dense.set_weights([kernel, bias])
    ids, _, _ = model.encode_words([TEXT])
    expected = np.asarray(copy(ids, training=False)[0])[0]
    np.testing.assert_allclose(predict_with_heads_off(model, TEXT, frozenset({(0, 1)})).probs, expected, atol=1e-6)
    # The shared model was not touched.
    for before, after in zip(original, attention.output_dense.get_weights()):
        assert np.array_equal(before, after)


def test_rnn_ablation_is_uniform_attention(rnn):
    ablated = predict_with_heads_off(rnn, TEXT, frozenset(), uniform=True)
    words = len(ablated.source_tokens)
    np.testing.assert_allclose(ablated.attentions[0, 0, 0], np.full(words, 1.0 / words), rtol=1e-6)
    assert not np.allclose(ablated.probs, rnn.predict(TEXT).probs)
    assert ablated.notes == ("attention replaced by uniform weights over the words",)
    with pytest.raises(LensError, match="uniform attention instead"):
        predict_with_heads_off(rnn, TEXT, frozenset({(0, 0)}))
    with pytest.raises(LensError, match="one attention distribution"):
        head_importance(rnn, TEXT)
    effect = single_head_effects(rnn, TEXT)
    predicted = int(np.argmax(rnn.predict(TEXT).probs))
    assert effect.shape == (1, 1)
    assert effect[0, 0] == pytest.approx(ablated.probs[predicted] - rnn.predict(TEXT).probs[predicted], abs=1e-5)


def test_uniform_attention_is_refused_for_transformers(keras_transformer):
    with pytest.raises(LensError, match="switch keras-transformer's heads off instead"):
        predict_with_heads_off(keras_transformer, TEXT, frozenset(), uniform=True)


def test_single_head_effects_equal_one_ablation_each(keras_transformer):
    effects = single_head_effects(keras_transformer, TEXT)
    original = keras_transformer.predict(TEXT).probs
    predicted = int(np.argmax(original))
    assert effects.shape == (1, 2)
    for head in range(2):
        ablated = predict_with_heads_off(keras_transformer, TEXT, frozenset({(0, head)})).probs
        assert effects[0, head] == pytest.approx(ablated[predicted] - original[predicted], abs=1e-5)


def test_head_importance_is_the_normalised_attention_gradient_sum_on_a_tiny_model():
    # Michel et al.'s I_h = |Σ_ij A_ij ∂L/∂A_ij| by finite differences on the float64 twin,
    # with L = −log p(ŷ), then divided by the layer's L2 norm.
    tiny = TinyAttentionClassifier(seed=3)
    text = "good plot bad movie"
    embeds = tiny.weights["embeddings"][list(tiny.explain_tokens(text).ids)]
    probs, attention = numpy_forward(tiny.weights, embeds)
    predicted = int(np.argmax(probs))

    def loss_given_attention(a):
        v = np.einsum("tw,hwd->htd", embeds, tiny.weights["value"])
        logits = np.einsum("htd,hdc->c", a @ v, tiny.weights["output"]) / len(embeds)
        return -(logits[predicted] - np.log(np.exp(logits).sum()))

    gradient = finite_difference_gradient(loss_given_attention, attention)
    expected = normalise_per_layer(np.abs((attention * gradient).sum(axis=(-1, -2)))[np.newaxis])
    np.testing.assert_allclose(head_importance(tiny, text), expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(head_importance(tiny, text), axis=-1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_head_mask_gradient_equals_attention_times_its_gradient_on_minilm(minilm):
    # ∂p/∂ξ_h = Σ_ij A_ij ∂p/∂A_ij, the identity head_importance relies on, on the real model.
    runner = runner_for(minilm)
    row = minilm.explain_tokens(TEXT)
    target = int(np.argmax(minilm.predict(TEXT).probs))
    full = runner.gradients(runner.embed(row.ids)[np.newaxis], len(row), target, full=True)
    from_attention = (full.attentions[0] * full.d_attentions[0]).sum(axis=(-1, -2))
    np.testing.assert_allclose(full.d_heads[0], from_attention, atol=1e-6, rtol=1e-3)
    importance = head_importance(minilm, TEXT)
    assert importance.shape == (6, 12)
    np.testing.assert_allclose(np.linalg.norm(importance, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_concurrent_ablations_do_not_see_each_other(minilm):
    head_sets = [frozenset({(layer, head)}) for layer, head in [(0, 0), (1, 3), (2, 5), (3, 7), (4, 9), (5, 11)]] + [
        frozenset(),
        frozenset({(5, h) for h in range(12)}),
    ]
    alone = [predict_with_heads_off(minilm, TEXT, heads) for heads in head_sets]
    together: list = [None] * len(head_sets)
    errors: list[BaseException] = []
    start = threading.Barrier(len(head_sets))

    def work(index: int) -> None:
        try:
            start.wait()
            together[index] = predict_with_heads_off(minilm, TEXT, head_sets[index])
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(head_sets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for single, concurrent in zip(alone, together):
        assert np.array_equal(single.probs, concurrent.probs)
        assert np.array_equal(single.attentions, concurrent.attentions)
    assert np.array_equal(minilm.predict(TEXT).probs, alone[-2].probs)


@pytest.mark.slow
def test_hf_checkpoints_ablate_bert_style_families_only(checkpoint, monkeypatch):
    monkeypatch.setenv("ATTENTION_LENS_ALLOW_HF", "1")
    text = "the team won the match"
    for family in ("bert", "roberta", "electra"):
        model = registry.load(f"hf:{checkpoint(family)}")
        assert supports_ablation(model) is None
        assert np.array_equal(predict_with_heads_off(model, text, frozenset()).probs, model.predict(text).probs)
        heads_off = frozenset({(1, 0), (1, 1)})
        ablated = predict_with_heads_off(model, text, heads_off).probs
        # A tiny random model's heads barely move its output, but with nothing switched off the
        # call is bit-identical (above), so any difference is the ablation's.
        assert not np.array_equal(ablated, model.predict(text).probs), family
        if family == "bert":
            np.testing.assert_allclose(ablated, _bert_checkpoint_reference(model, text, heads_off), atol=1e-6)
    for family in ("albert", "distilbert"):
        model = registry.load(f"hf:{checkpoint(family)}")
        assert f"not {family}" in supports_ablation(model)
        with pytest.raises(LensError, match=f"not {family}"):
            predict_with_heads_off(model, text, frozenset({(0, 0)}))


def _bert_checkpoint_reference(model, text: str, heads_off) -> np.ndarray:
    """A TFBertForSequenceClassification's probabilities with transformers' encoder applying the head mask."""
    import tensorflow as tf

    main = model.model.bert
    ids = tf.constant([model.explain_tokens(text).ids], tf.int32)
    outputs = _encoder_with_head_mask(main, ids, tf.zeros((1, 1, 1, ids.shape[1])), model.attention_grid, heads_off)
    logits = model.model.classifier(main.pooler(outputs.last_hidden_state))
    return np.asarray(tf.nn.softmax(logits, axis=-1))[0]


def test_seq2seq_models_cannot_be_ablated(shipped_model):
    assert "generates text" in supports_ablation(shipped_model("bahdanau-dates"))
