"""The qkv view: its maths on hand-worked examples, and on every model kind against the model's own attention.

The model's own numbers come from the model's own forward pass at the padded width it runs at
(masked padding keys included), and from the Prediction the page draws ([CLS] and [SEP] included).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import models
from models import registry
from models.base import LensError
from models.hf_common import TransformerClassifier, buckets_up_to
from models.qkv import (
    ADDITIVE,
    BERT_MASK,
    DOT_PRODUCT,
    KERAS_MASK,
    TOLERANCE,
    additive_row,
    additive_weights,
    checked_head,
    dot_product_row,
    dot_product_weights,
    head_of,
    softmax,
    supports_qkv,
)
from tests.helpers import checkpoints
from views import qkv
from views.__main__ import main
from views.spec import Settings, Style, Subject, for_data
from viz.labels import ordinal
from viz.qkv import Step, computation_figure

NEWS = "Oil prices climb to a record high as investors worry about supply"
DATE = "3. März 2015"
HF_TINY = ("hf-tiny-bert", "hf-tiny-distilbert")
# Every kind of model the view reads: our Keras transformer, MiniLM and tiny BERT-family
# checkpoints (dot-product), the attention-pooled RNN and the date model (additive).
KINDS = ("keras-transformer", "minilm-agnews", *HF_TINY, "bahdanau-rnn", "bahdanau-dates")
TEXTS = {"bahdanau-dates": DATE, **{name: checkpoints.TEXT for name in HF_TINY}}


@pytest.fixture(scope="module")
def load(shipped_model, checkpoint):
    """``load(model_id)``: the session's shared bundled model, or a seeded tiny hf: checkpoint loaded once."""
    loaded = {}

    def get(model_id: str):
        if not model_id.startswith("hf-tiny-"):
            return shipped_model(model_id)
        if model_id not in loaded:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv(registry.ALLOW_HF_ENV, "1")
                loaded[model_id] = registry.load(f"{registry.HF_PREFIX}{checkpoint(model_id.removeprefix('hf-tiny-'))}")
        return loaded[model_id]

    return get


def text_for(model_id: str) -> str:
    return TEXTS.get(model_id, NEWS)


# ---------------------------------------------------------------- the maths by hand


def test_dot_product_steps_by_hand():
    row = dot_product_row([1.0, 2.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    # q ∘ k_j, dimension by dimension; their sums q · k_j are 1, 2, 3.
    np.testing.assert_allclose(row.products, [[1.0, 0.0], [0.0, 2.0], [1.0, 2.0]])
    assert row.scale == pytest.approx(1 / math.sqrt(2))
    # Scores 1/√2, 2/√2, 3/√2; exp: 2.02811, 4.11325, 8.34214 (sum 14.48351).
    np.testing.assert_allclose(row.scores, [0.707107, 1.414214, 2.121320], atol=1e-6)
    np.testing.assert_allclose(row.weights, [0.140029, 0.283995, 0.575975], atol=1e-6)
    # 0.140029 · (1, 0) + 0.283995 · (0, 1) + 0.575975 · (2, 2).
    np.testing.assert_allclose(row.output, [1.291980, 1.435946], atol=1e-6)
    np.testing.assert_allclose(row.what_if, row.weights)  # T = 1 is the model


@pytest.mark.parametrize(("rule", "masked_score"), [(BERT_MASK, 1.414214 - 10000.0), (KERAS_MASK, -1e9)])
def test_a_masked_key_gets_its_models_score_and_weight_zero(rule, masked_score):
    row = dot_product_row([1.0, 2.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], mask=[True, False, True], rule=rule)
    assert row.scores[1] == pytest.approx(masked_score)
    # exp 2.02811 and 8.34214 share 1: 0.195570 and 0.804430.
    np.testing.assert_allclose(row.weights, [0.195570, 0.0, 0.804430], atol=1e-6)
    np.testing.assert_allclose(row.output, [0.195570 + 2 * 0.804430, 2 * 0.804430], atol=1e-6)


def test_temperature_is_a_what_if_that_never_brings_a_masked_key_back():
    keys = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    row = dot_product_row([1.0, 2.0], keys, keys, temperature=2.0)
    # Scores halved: exp(0.353553), exp(0.707107), exp(1.060660) = 1.424119, 2.028115, 2.888329 (sum 6.340563).
    np.testing.assert_allclose(row.what_if, [0.224606, 0.319866, 0.455527], atol=1e-6)
    np.testing.assert_allclose(row.weights, [0.140029, 0.283995, 0.575975], atol=1e-6)  # the model's row is unchanged
    flat = dot_product_row([1.0, 2.0], keys, keys, mask=[True, False, True], temperature=1e6)
    np.testing.assert_allclose(flat.what_if, [0.5, 0.0, 0.5], atol=1e-5)
    np.testing.assert_array_equal(softmax(np.array([3.0, 1.0]), np.array([False, False])), [0.0, 0.0])
    with pytest.raises(ValueError, match="temperature must be positive"):
        softmax(np.array([1.0]), np.array([True]), temperature=0.0)


def test_additive_steps_by_hand():
    row = additive_row([0.5, -0.5], [[0.0, 0.0], [1.0, 1.0]], [1.0, 2.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    # tanh((0.5, -0.5)) and tanh((1.5, 0.5)).
    np.testing.assert_allclose(row.hidden, [[0.462117, -0.462117], [0.905148, 0.462117]], atol=1e-6)
    np.testing.assert_allclose(row.products, [[0.462117, -0.924234], [0.905148, 0.924234]], atol=1e-6)
    # Energies -0.462117 and 1.829383; softmax: 1 / (1 + e^2.291500) = 0.091829.
    np.testing.assert_allclose(row.scores, [-0.462117, 1.829383], atol=1e-6)
    np.testing.assert_allclose(row.weights, [0.091829, 0.908171], atol=1e-6)
    np.testing.assert_allclose(row.output, [0.091829, 0.908171, 0.908171], atol=1e-6)
    assert row.kind == ADDITIVE and row.scale == 1.0


def test_the_matrix_is_the_rows_stacked():
    rng = np.random.default_rng(0)
    queries, keys, mask = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), np.array([True, True, False, True, False])
    matrix = dot_product_weights(queries, keys, mask=mask)
    np.testing.assert_allclose(matrix, [dot_product_row(q, keys, keys, mask=mask).weights for q in queries])
    v = rng.normal(size=3)
    matrix = additive_weights(queries, keys, v, mask=mask)
    np.testing.assert_allclose(matrix, [additive_row(q, keys, v, keys, mask=mask).weights for q in queries])
    assert np.all(matrix[:, ~mask] == 0.0)


# ---------------------------------------------------------------- every model kind, against its own attention


def own_padded_attention(model, text: str) -> np.ndarray:
    """The model's own attention (layers, heads, queries, width) from its forward pass at the padded width it runs at."""
    import tensorflow as tf

    from models.bahdanau_dates import BahdanauDates, normalize
    from models.bahdanau_rnn import BahdanauRNN
    from models.text import encode

    if isinstance(model, TransformerClassifier):
        row = model.tokenize([text])[0]
        width = next(b for b in buckets_up_to(model.max_tokens) if b >= len(row))
        ids = np.full((1, width), model.pad_id, dtype=np.int32)
        ids[0, : len(row)] = row.ids
        mask = (np.arange(width) < len(row)).astype(np.int32)[None]
        _, attentions = model.forward(tf.constant(ids), tf.constant(mask), with_attentions=True)
        return np.asarray(attentions)[0]
    if isinstance(model, BahdanauDates):
        ids, _, _ = encode(model.vocab, [normalize(text)], model.max_tokens, split=list, fixed_width=True)
        _, weights = model.decoder.predict_on_batch(ids)
        return np.asarray(weights)[None]
    ids, _, _ = model.encode_words([text], fixed_width=True)
    _, attentions = model.inspector.predict_on_batch(ids)
    return np.asarray(attentions)[None] if isinstance(model, BahdanauRNN) else np.asarray(attentions)[0][None]


@pytest.mark.parametrize("model_id", [pytest.param(m, marks=pytest.mark.slow) if m == "minilm-agnews" else m for m in KINDS])
def test_recomputed_weights_are_the_models_own_for_every_layer_and_head(model_id, load):
    model, text = load(model_id), text_for(model_id)
    prediction = model.predict(text)
    own = own_padded_attention(model, text)
    for layer in range(prediction.num_layers):
        for head in range(prediction.num_heads):
            found = head_of(model, text, layer, head, prediction)
            queries, real = prediction.attentions.shape[-2], found.real
            # Masked positions: the padding keys the model ran with, weight 0 in both.
            assert len(found.keys) > real and not found.mask[real:].any() and found.mask[:real].all()
            recomputed = found.weights()
            np.testing.assert_allclose(recomputed[:queries], own[layer, head, :queries], atol=1e-5)
            assert np.all(recomputed[:queries, real:] == 0.0)
            # What the page draws: every query row of the Prediction, special tokens included.
            np.testing.assert_allclose(recomputed[:queries, :real], prediction.attentions[layer, head], atol=1e-5)
            _, error = checked_head(model, prediction, text, layer, head)
            assert error < 1e-5
    if model_id in ("minilm-agnews", *HF_TINY):
        assert prediction.source_special[0] and prediction.source_special[-1]  # [CLS] ... [SEP] are among the rows and columns compared


@pytest.mark.parametrize("model_id", ["keras-transformer", "hf-tiny-bert", "bahdanau-rnn", "bahdanau-dates"])
def test_the_views_scores_come_from_its_vectors_and_its_weights_are_the_heatmaps_row(model_id, load):
    model, text = load(model_id), text_for(model_id)
    prediction = model.predict(text)
    query = min(2, len(prediction.target_tokens))
    settings = Settings.of({"query": query, "temperature": 1.0}, layer=prediction.num_layers, head=prediction.num_heads)
    d = qkv.data(Subject(model_id, model, text, prediction), for_data(qkv, settings))
    row = d.row
    assert d.tokens == prediction.source_tokens and d.query_token == prediction.target_tokens[query - 1]
    if d.kind == DOT_PRODUCT:
        np.testing.assert_allclose(row.products.sum(axis=1), row.keys @ row.query)
        np.testing.assert_allclose(row.scores, row.keys @ row.query / math.sqrt(len(row.query)))
    else:
        np.testing.assert_allclose(row.scores, np.tanh(row.query + row.keys) @ row.v)
    np.testing.assert_allclose(row.weights, prediction.attentions[-1, -1, query - 1], atol=1e-5)
    np.testing.assert_allclose(row.output, row.weights @ row.values)
    assert row.weights.sum() == pytest.approx(1.0) and d.padding > 0


def test_a_rebuild_off_by_more_than_the_tolerance_is_refused_with_the_difference(load, monkeypatch):
    import models.qkv as module

    model, text = load("keras-transformer"), NEWS
    prediction = model.predict(text)
    read = module.head_of

    def shifted(offset):
        def head_of(*args):
            found = read(*args)
            keys = found.keys.copy()
            keys[0] += offset(found)
            return dataclasses.replace(found, keys=keys)

        return head_of

    # Far off: the first key pulled towards the first query, so that query looks almost only at it.
    monkeypatch.setattr(module, "head_of", shifted(lambda found: 100 * found.queries[0] / (found.queries[0] @ found.queries[0])))
    with pytest.raises(LensError, match=r"could not be rebuilt from its weights \(largest difference .*, allowed 0.0001\)"):
        checked_head(model, prediction, text, 0, 0)
    with pytest.raises(LensError, match="could not be rebuilt"):
        qkv.data(Subject("keras-transformer", model, text, prediction), Settings.of({"query": 1, "temperature": 1.0}))
    # Within the tolerance: accepted, the difference reported.
    monkeypatch.setattr(module, "head_of", shifted(lambda found: 1e-7))
    _, error = checked_head(model, prediction, text, 0, 0)
    assert error <= TOLERANCE


def test_models_it_cannot_read_are_refused_with_the_reason(load, checkpoint, monkeypatch):
    monkeypatch.setenv(registry.ALLOW_HF_ENV, "1")
    albert = registry.load(f"{registry.HF_PREFIX}{checkpoint('albert')}")
    reason = supports_qkv(albert)
    assert "'albert'" in reason and "\n" not in reason
    assert qkv.applies(albert.predict(checkpoints.TEXT), albert) == (False, reason)
    with pytest.raises(LensError, match="'albert'"):
        head_of(albert, checkpoints.TEXT, 0, 0)
    for model_id in KINDS:
        assert supports_qkv(load(model_id)) is None, model_id


# ---------------------------------------------------------------- what-if, export, figure


def test_temperature_changes_the_what_if_only(load):
    model = load("minilm-agnews")
    prediction = model.predict(NEWS)
    subject = Subject("minilm-agnews", model, NEWS, prediction)
    model_row = qkv.data(subject, Settings.of({"query": 1, "temperature": 1.0}, layer=2, head=3))
    hotter = qkv.data(subject, Settings.of({"query": 1, "temperature": 3.0}, layer=2, head=3))
    np.testing.assert_array_equal(hotter.row.weights, model_row.row.weights)

    def entropy(p):
        return float(-(p[p > 0] * np.log(p[p > 0])).sum())

    assert entropy(hotter.row.what_if) > entropy(model_row.row.weights)
    assert "what_if" in qkv.rows(hotter) and "what_if" not in qkv.rows(model_row)
    np.testing.assert_array_equal(qkv.rows(hotter)["weights"].weights[0], model_row.row.weights)


def test_render_writes_the_steps_as_json(tmp_path, load, monkeypatch):
    monkeypatch.setattr(models, "load", load)
    out = tmp_path / "qkv.json"
    assert main(["render", "--model", "keras-transformer", "--text", NEWS, "--view", "qkv", "--head", "2", "--query", "3", "-o", str(out)]) == 0
    tables = json.loads(out.read_text(encoding="utf-8"))["tables"]
    assert {"query", "keys", "scores", "weights", "values", "output"} <= set(tables)
    prediction = load("keras-transformer").predict(NEWS)
    tokens = list(prediction.source_tokens)
    assert tables["scores"]["scale"] == pytest.approx(1 / math.sqrt(32)) and tables["scores"]["token"] == tokens[2]
    assert tables["weights"]["tokens"] == {"rows": [tokens[2]], "columns": tokens} and tables["keys"]["tokens"]["rows"] == tokens
    np.testing.assert_allclose(tables["weights"]["weights"][0], prediction.attentions[0, 1, 2], atol=1e-5)
    query, keys = np.array(tables["query"]["weights"][0]), np.array(tables["keys"]["weights"])
    np.testing.assert_allclose(tables["scores"]["weights"][0], keys @ query / math.sqrt(32), rtol=1e-6)
    # The keys at the top level, the same numbers as the tables.
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["tokens"] == tokens and record["scale"] == pytest.approx(1 / math.sqrt(32))
    # The tables are written as float32 (viz.export.matrix_record), the top-level values as computed.
    for name in ("query", "scores", "weights", "output"):
        np.testing.assert_allclose(record[name], tables[name]["weights"][0], rtol=1e-6)
    for name in ("keys", "values"):
        np.testing.assert_allclose(record[name], tables[name]["weights"], rtol=1e-6)

    out = tmp_path / "dates.json"
    assert main(["render", "--model", "bahdanau-dates", "--text", DATE, "--view", "qkv", "--query", "6", "-o", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    tables = record["tables"]
    assert {"energies", "query_term", "key_terms", "weights", "values", "output"} <= set(tables) and not {"scores", "keys"} & set(tables)
    assert {"tokens", "energies", "query_term", "key_terms", "tanh", "v", "weights", "values", "output"} <= set(record) and not {"scores", "keys"} & set(record)
    np.testing.assert_allclose(record["energies"], tables["energies"]["weights"][0], rtol=1e-6)


def test_figure_at_512_tokens_labels_every_kth_token_as_its_titles_say():
    rng = np.random.default_rng(0)
    tokens = [f"w{i}" for i in range(512)]
    weights = rng.dirichlet(np.ones(512))
    steps = [
        Step("Keys", rng.normal(size=(32, 512)), "k", rng.normal(size=32), "q"),
        Step("Scores", rng.normal(size=512), "score"),
        Step("Weights", weights, "weight", what_if=np.full(512, 1 / 512), what_if_name="what if", labelled=True),
    ]
    figure = computation_figure(steps, tokens, title="Layer 1, head 1", highlight=7, width_px=900)
    labelled = [axis for axis in figure.select_xaxes() if axis.showticklabels]
    assert len(labelled) == 2  # above the first step and above the weights
    for axis in labelled:
        k = int(axis.tickvals[1].split(" · ")[0]) - 1  # "4 · w3": every 3rd
        assert k > 1 and list(axis.ticktext) == tokens[::k] and f"every {ordinal(k)} token labelled" in axis.title.text
    assert len(figure.to_json()) < 1.5 * 2**20
    # Presenter mode draws larger type, so fewer labels fit.
    presenter = computation_figure(steps, tokens, width_px=900, presenter=True)
    assert len(presenter.layout.xaxis.tickvals) < len(figure.layout.xaxis.tickvals)


def test_view_figure_draws_every_step_for_each_kind(load):
    for model_id in ("keras-transformer", "bahdanau-rnn"):
        model = load(model_id)
        prediction = model.predict(NEWS)
        d = qkv.data(Subject(model_id, model, NEWS, prediction), Settings.of({"query": 2, "temperature": 2.0}))
        figure = qkv.figure(d, Settings.of({"query": 2, "temperature": 2.0}), Style())
        kinds = [trace.type for trace in figure.data]
        # Strips with their vectors, bars, and the what-if diamonds over the weights.
        assert kinds.count("scatter") == 1 and kinds.count("bar") == 2
        assert [trace for trace in figure.data if trace.type == "bar"][-1].y.tolist() == pytest.approx(d.row.weights.tolist())
        assert bool(figure.layout.shapes) == prediction.self_attention  # the query's own column outlined
