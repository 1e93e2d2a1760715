"""The corpus view (views/corpus.py) on small real runs: every part against a direct computation from the run's tables.

The runs come from ``tests/conftest.py::corpus_root`` (``models.corpus.run_corpus`` on 40 AG News
test texts, keras-transformer and minilm-agnews). The references read the Parquet files with
pyarrow and count with plain Python loops, not through the view's reader.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pyarrow.parquet as pq
import pytest

from models.maths.head_stats import STATISTICS
from tests.conftest import CORPUS_MODELS, CORPUS_TEXTS
from views import corpus
from views.spec import Settings, Style, Subject

MODEL = "minilm-agnews"


@pytest.fixture(scope="module")
def root(corpus_root) -> Path:
    return corpus_root


def settings(layer: int = 1, head: int = 1, **fields) -> Settings:
    values = {field.name: field.default for field in corpus.FIELDS} | fields
    return Settings.of(values, layer=layer, head=head)


def subject(model_id: str, shipped_model) -> Subject:
    model = shipped_model(model_id)
    text = "Stocks rally"
    return Subject(model_id, model, text, model.predict(text))


def table(root: Path, model_id: str, name: str) -> list[dict]:
    return pq.read_table(root / model_id / name).to_pylist()


def test_each_model_lists_its_own_run_and_the_others_are_refused_with_the_command(root, shipped_model):
    for model_id in CORPUS_MODELS:
        found = corpus.runs(model_id)
        assert [run.name for run in found] == [model_id]
        assert found[0].n == CORPUS_TEXTS and found[0].model == model_id
        assert corpus.applies(None, shipped_model(model_id)) == (True, "")
    applies, reason = corpus.applies(None, shipped_model("bahdanau-dates"))
    assert not applies and "make corpus" in reason and "python -m models corpus --model bahdanau-dates" in reason and "\n" not in reason


def test_a_second_run_is_offered_after_the_one_named_after_the_model(root, tmp_path, monkeypatch):
    monkeypatch.setenv(corpus.ROOT_ENV, str(tmp_path))
    for name, created in (("minilm-agnews", "2026-01-01T00:00:00+00:00"), ("newer/minilm-agnews-n40", "2026-06-01T00:00:00+00:00")):
        shutil.copytree(root / MODEL, tmp_path / name)
        record = json.loads((tmp_path / name / "run.json").read_text())
        (tmp_path / name / "run.json").write_text(json.dumps({**record, "created": created}))
    assert [run.name for run in corpus.runs(MODEL)] == ["minilm-agnews", "newer/minilm-agnews-n40"]
    assert corpus.chosen_run(MODEL, "newer/minilm-agnews-n40").name == "newer/minilm-agnews-n40"
    assert corpus.chosen_run(MODEL, "gone").name == "minilm-agnews"


@pytest.mark.parametrize("value", ["../etc", "a/../../b", "/abs", "a b"])
def test_a_link_cannot_name_a_run_outside_the_root(value):
    field = next(f for f in corpus.FIELDS if f.name == "run")
    with pytest.raises(ValueError):
        field.parse(value)


@pytest.mark.parametrize("model_id", CORPUS_MODELS)
def test_the_confusion_matrix_and_accuracy_equal_a_direct_count(root, shipped_model, model_id):
    rows = table(root, model_id, "texts.parquet")
    labels = json.loads((root / model_id / "run.json").read_text())["labels"]
    expected = np.zeros((len(labels), len(labels)), dtype=int)
    for row in rows:
        if row["gold"] >= 0:
            expected[row["gold"], row["predicted"]] += 1
    d = corpus.data(subject(model_id, shipped_model), settings(part="texts"))
    assert d.total == len(rows) == CORPUS_TEXTS
    np.testing.assert_array_equal(d.confusion, expected)
    right = sum(row["gold"] == row["predicted"] for row in rows if row["gold"] >= 0)
    assert d.accuracy == pytest.approx(right / sum(row["gold"] >= 0 for row in rows))
    # The figure shows the same counts, and its title the accuracy.
    drawn = corpus.figure(d, settings(part="texts"), Style())
    np.testing.assert_array_equal(np.asarray(drawn.data[0].z), expected)
    assert f"{d.accuracy:.1%}" in drawn.layout.title.text


def test_filters_keep_exactly_the_rows_that_match_them(root, shipped_model):
    rows = table(root, MODEL, "texts.parquet")
    cases = [
        dict(gold=2),
        dict(predicted=3, min_confidence=0.5),
        dict(min_confidence=0.6, max_confidence=0.95),
        dict(find="THE"),
        dict(gold=1, predicted=1, find="a"),
        dict(gold=9),  # no such class: every class
    ]
    for case in cases:
        wanted = [
            row["text_id"]
            for row in rows
            if (case.get("gold", 0) in (0, 9) or row["gold"] == case["gold"] - 1)
            and (case.get("predicted", 0) == 0 or row["predicted"] == case["predicted"] - 1)
            and case.get("min_confidence", 0.0) <= row["confidence"] <= case.get("max_confidence", 1.0)
            and case.get("find", "").lower() in row["text"].lower()
        ]
        d = corpus.data(subject(MODEL, shipped_model), settings(part="texts", **case))
        assert d.text_id.tolist() == wanted, case
        assert list(d.text) == [rows[i]["text"] for i in wanted]
        assert d.confusion.sum() == sum(rows[i]["gold"] >= 0 for i in wanted)
        exported = corpus.rows(d)["texts"]
        assert exported.rows == tuple(str(i) for i in wanted)
        np.testing.assert_allclose(exported.weights[:, 2], [rows[i]["confidence"] for i in wanted])


def brute_force_search(root: Path, model_id: str, layer: int, head: int, source, target) -> dict[int, int]:
    """text_id -> how many query positions send their strongest weight from a ``source`` token to a ``target`` token."""
    tokens = {row["text_id"]: row["tokens"] for row in table(root, model_id, "texts.parquet")}
    found = {}
    for row in table(root, model_id, "heads.parquet"):
        if (row["layer"], row["head"]) != (layer, head):
            continue
        words = tokens[row["text_id"]]
        count = sum(1 for query, key in enumerate(row["strongest"]) if source(words[query]) and target(words[key]))
        if count:
            found[row["text_id"]] = count
    return found


@pytest.mark.parametrize(
    ("model_id", "layer", "head", "source", "target", "regex"),
    [
        (MODEL, 1, 3, "", "the", False),
        (MODEL, 2, 5, "[a-z]+ing", "", True),
        (MODEL, 1, 1, "", r"^\[SEP\]$", True),
        ("keras-transformer", 1, 2, "the", "", False),
    ],
)
def test_search_finds_what_a_brute_force_scan_of_every_text_finds(root, shipped_model, model_id, layer, head, source, target, regex):
    def matcher(pattern):
        if not pattern:
            return lambda token: True
        if regex:
            return lambda token: re.search(pattern, token, re.IGNORECASE) is not None
        return lambda token: token.lstrip("#").lower() == pattern.lower()

    expected = brute_force_search(root, model_id, layer, head, matcher(source), matcher(target))
    assert expected, "the case should match some texts"
    d = corpus.data(subject(model_id, shipped_model), settings(layer, head, part="search", from_token=source, to_token=target, regex=regex))
    assert dict(zip(d.text_id.tolist(), d.matches.tolist(), strict=True)) == expected
    assert d.matches.tolist() == sorted(d.matches.tolist(), reverse=True)
    assert d.searched == CORPUS_TEXTS
    assert int(d.pair_counts.sum()) <= sum(expected.values()) and len(d.pairs) <= corpus.TOP_PAIRS
    assert isinstance(corpus.figure(d, settings(layer, head, part="search"), Style()), go.Figure)


def test_an_empty_search_finds_nothing_and_a_bad_expression_says_why(shipped_model):
    d = corpus.data(subject(MODEL, shipped_model), settings(part="search"))
    assert not d.asked and len(d.text_id) == 0
    with pytest.raises(corpus.CorpusError, match="not a regular expression"):
        corpus.data(subject(MODEL, shipped_model), settings(part="search", from_token="(", regex=True))


@pytest.mark.parametrize(("model_id", "layer", "head"), [(MODEL, 1, 3), (MODEL, 6, 12), ("keras-transformer", 1, 2)])
def test_pca_coordinates_equal_numpys_projection_on_the_first_two_components(root, shipped_model, model_id, layer, head):
    points = [row for row in table(root, model_id, "vectors.parquet") if (row["layer"], row["head"]) == (layer, head)]
    vectors = np.array([row["vector"] for row in points], dtype=np.float64)
    centred = vectors - vectors.mean(axis=0)
    values, axes = np.linalg.eigh(np.cov(centred, rowvar=False))
    reference = centred @ axes[:, np.argsort(values)[::-1][:2]]
    d = corpus.data(subject(model_id, shipped_model), settings(layer, head, part="embedding", projection="pca"))
    assert d.method == "pca" and d.coordinates.shape == (len(points), 2)
    # An eigenvector's sign is arbitrary: compare each axis up to its sign.
    for axis in range(2):
        sign = np.sign(np.dot(d.coordinates[:, axis], reference[:, axis]))
        np.testing.assert_allclose(d.coordinates[:, axis], sign * reference[:, axis], atol=1e-4)
    assert d.is_key.tolist() == [row["kind"] == "key" for row in points]
    assert list(d.token) == [row["token"] for row in points]
    assert d.is_key.any() and (~d.is_key).any()


def test_embedding_points_carry_their_text_and_head_for_a_click(root, shipped_model):
    texts = {row["text_id"]: row for row in table(root, MODEL, "texts.parquet")}
    for colour in corpus.COLOURINGS:
        d = corpus.data(subject(MODEL, shipped_model), settings(2, 4, part="embedding", colour=colour))
        drawn = corpus.figure(d, settings(2, 4, part="embedding", colour=colour), Style())
        points = sum(len(trace.x) for trace in drawn.data)
        assert points == len(d.token)
        for trace in drawn.data:
            assert trace.type == "scattergl"
            for (text_id, layer, head), hover in zip(np.asarray(trace.customdata).tolist(), trace.text, strict=True):
                assert (layer, head) == (2, 4)
                assert texts[text_id]["text"][: corpus.SNIPPET_CHARS] in hover
    # Colour by class: one trace per class, each point in its text's gold class.
    by_class = corpus.figure(d, settings(2, 4, part="embedding", colour="class"), Style())
    for index, trace in enumerate(by_class.data):
        assert {texts[text_id]["gold"] for text_id, _, _ in np.asarray(trace.customdata).tolist()} <= {index}


@pytest.mark.slow
def test_umap_gives_a_finite_plane_of_the_same_points(shipped_model):
    assert corpus.umap_available()
    d = corpus.data(subject(MODEL, shipped_model), settings(1, 3, part="embedding", projection="umap"))
    pca = corpus.data(subject(MODEL, shipped_model), settings(1, 3, part="embedding", projection="pca"))
    assert d.method == "umap" and d.note == ""
    assert d.coordinates.shape == pca.coordinates.shape and np.isfinite(d.coordinates).all()
    assert d.token == pca.token


def test_twenty_thousand_points_are_sent_in_under_five_megabytes():
    rng = np.random.default_rng(0)
    count = corpus.MAX_POINTS
    d = corpus.EmbeddingData(
        run="r",
        layer=1,
        head=1,
        method="pca",
        asked="pca",
        note="",
        coordinates=rng.normal(size=(count, 2)).astype(np.float32),
        is_key=rng.random(count) < 0.5,
        position=rng.integers(0, 60, count),
        text_id=rng.integers(0, 7600, count),
        token=tuple(rng.choice(["investors", "##s", "[CLS]", "government"], count).tolist()),
        text_class=rng.integers(0, 4, count).astype(np.int32),
        snippet=("Oil prices climb to record high as investors worry about sup",) * count,
        labels=("World", "Sports", "Business", "Sci/Tech"),
        sampled_from=count,
    )
    for colour in corpus.COLOURINGS:
        sent = len(corpus.figure(d, settings(part="embedding", colour=colour), Style()).to_json().encode())
        assert sent <= 5 * 2**20, (colour, sent)


def test_the_atlas_shows_each_heads_mean_of_its_per_text_values_and_clusters_every_head(root, shipped_model):
    heads = table(root, MODEL, "heads.parquet")
    d = corpus.data(subject(MODEL, shipped_model), settings(2, 3, part="atlas", measure="previous"))
    assert d.measures == tuple(STATISTICS) and d.measure == "previous"
    for index, measure in enumerate(d.measures):
        for layer, head in ((1, 3), (4, 7)):
            values = [row[measure] for row in heads if (row["layer"], row["head"]) == (layer, head) and row[measure] == row[measure]]
            assert d.mean[index, layer - 1, head - 1] == pytest.approx(np.mean(values), rel=1e-9)
            assert d.low[index, layer - 1, head - 1] <= d.mean[index, layer - 1, head - 1] <= d.high[index, layer - 1, head - 1]
    assert sorted(d.order) == [(layer, head) for layer in range(1, 7) for head in range(1, 13)]
    assert d.scores.shape == (len(STATISTICS), 72)
    # Standard scores across heads: mean 0 and spread 1 per measure (every measure varies across MiniLM's heads).
    np.testing.assert_allclose(d.scores.mean(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(d.scores.std(axis=1), 1.0, atol=1e-9)
    drawn = corpus.figure(d, settings(2, 3, part="atlas"), Style())
    np.testing.assert_allclose(np.asarray(drawn.data[0].z, dtype=float), d.mean[d.index], equal_nan=True)
    # The hover of layer 1, head 3 (the third cell of the first row) gives its mean and interval.
    m, lo, hi = (array[d.index, 0, 2] for array in (d.mean, d.low, d.high))
    assert drawn.data[1].text[2] == f"mean {m:.3f} [{lo:.3f}, {hi:.3f}] (95% interval)"
    assert list(drawn.data[1].customdata[2]) == [1, 3]
    clusters = corpus.clusters_figure(d, settings(2, 3, part="atlas"), Style())
    assert list(clusters.data[-1].customdata[0]) == list(d.order[0])
    exported = corpus.rows(d)
    assert exported["atlas"].weights.shape == (72, 3 * len(STATISTICS)) and exported["clusters"].rows[0] == "L{}H{}".format(*d.order[0])


def test_standard_scores_are_per_measure_across_heads_and_zero_where_undefined():
    scores = corpus.standard_scores(np.array([[1.0, 2.0, 3.0], [np.nan, np.nan, np.nan], [5.0, 5.0, 5.0], [0.0, np.nan, 2.0]]))
    np.testing.assert_allclose(scores, [[-np.sqrt(1.5), 0.0, np.sqrt(1.5)], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 1.0]])


def test_clustering_puts_identical_heads_side_by_side():
    # Heads 0 and 3 are equal, 1 and 2 are equal; any hierarchical order keeps each pair adjacent.
    scores = np.array([[0.0, 5.0, 5.1, 0.0, 10.0], [1.0, -3.0, -3.0, 1.0, 0.0]])
    leaves, icoord, dcoord = corpus.cluster(scores)
    position = {int(leaf): i for i, leaf in enumerate(leaves)}
    assert sorted(position) == [0, 1, 2, 3, 4]
    assert abs(position[0] - position[3]) == 1 and abs(position[1] - position[2]) == 1
    assert icoord.shape == dcoord.shape == (4, 4)


def test_a_damaged_table_is_refused_naming_the_file_and_the_command(root, tmp_path, monkeypatch, shipped_model):
    monkeypatch.setenv(corpus.ROOT_ENV, str(tmp_path))
    shutil.copytree(root / MODEL, tmp_path / MODEL)
    path = tmp_path / MODEL / "summary.parquet"
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(corpus.CorpusError, match=r"summary\.parquet.*python -m models corpus --model minilm-agnews"):
        corpus.data(subject(MODEL, shipped_model), settings(part="atlas"))


def test_the_lessons_share_is_a_count_over_the_heads_per_text_rows(root):
    run = corpus.chosen_run(MODEL, "")
    share = corpus.share_above(run, 1, 3, "previous", 0.5)
    values = {row["text_id"]: row["previous"] for row in table(root, MODEL, "heads.parquet") if (row["layer"], row["head"]) == (1, 3)}
    assert share.n == len(values) == CORPUS_TEXTS
    assert share.above == sum(value > 0.5 for value in values.values())
    lowest = min(values, key=values.get)
    assert share.lowest == pytest.approx(values[lowest]) and share.lowest_text == table(root, MODEL, "texts.parquet")[lowest]["text"]


def test_clicks_open_the_text_in_the_heatmap_at_the_head(monkeypatch):
    class Selection(dict):
        def __init__(self, selection):
            super().__init__(selection=selection)
            self.selection = selection

    session: dict = {"table": Selection({"rows": [1]}), "chart": Selection({"points": [{"customdata": [7, 2, 5]}]})}
    monkeypatch.setattr(corpus.st, "session_state", session)
    corpus._open_row("table", "b", ("first", "second"), None, None)
    assert session["text"] == "second" and session["view"] == "heatmap" and "b.layer" not in session
    corpus._open_point(lambda text_id: f"text {text_id}", "chart", "")
    assert (session["text"], session["layer"], session["head"], session["view"]) == ("text 7", 2, 5, "heatmap")
    session["chart"] = Selection({"points": [{"customdata": [3, 4]}]})
    corpus._choose_head("chart", "b")
    assert (session["b.layer"], session["b.head"]) == (3, 4)


@pytest.mark.slow
def test_an_additive_model_has_an_atlas_but_no_embedding_and_says_why(tmp_path, monkeypatch, shipped_model):
    from models.corpus import run_corpus

    texts = ["Stocks rally as oil prices fall", "Federer wins the final", "New chip doubles speed", "Rebels agree to a ceasefire"]
    run_corpus(
        "bahdanau-rnn",
        texts,
        tmp_path / "bahdanau-rnn",
        labels=["Business", "Sports", "Sci/Tech", "World"],
        model=shipped_model("bahdanau-rnn"),
        progress=lambda done: None,
    )
    monkeypatch.setenv(corpus.ROOT_ENV, str(tmp_path))
    run = corpus.chosen_run("bahdanau-rnn", "")
    assert run.no_vectors  # run.json says why: additive attention has no query-key dot product
    d = corpus.data(subject("bahdanau-rnn", shipped_model), settings(part="embedding"))
    assert d.token == () and d.coordinates.shape == (0, 2)
    assert isinstance(corpus.figure(d, settings(part="embedding"), Style()), go.Figure)
    atlas = corpus.data(subject("bahdanau-rnn", shipped_model), settings(part="atlas", measure="entropy"))
    assert atlas.mean.shape == (len(STATISTICS), 1, 1) and atlas.order == ((1, 1),)
    assert isinstance(corpus.clusters_figure(atlas, settings(part="atlas"), Style()), go.Figure)
    table = corpus.data(subject("bahdanau-rnn", shipped_model), settings(part="texts"))
    assert table.confusion.sum() == 4
    # On the page, the atlas of a measure the model's attention cannot have says so, and the embedding says why it is empty.
    from tests.helpers.page import open_page

    at = open_page(model="bahdanau-rnn", view="corpus", text=texts[0])
    assert not at.error and corpus.measure_title("previous") in at.info[0].value and "choose another measure" in at.info[0].value
    at = open_page(model="bahdanau-rnn", view="corpus", part="embedding", text=texts[0])
    assert not at.error and [info.value for info in at.info] == [f"This run holds no query and key vectors for this head: {run.no_vectors}"]
