"""The corpus pass (models/corpus.py): its tables reproduce direct predictions, its summary its per-text rows, and both engines agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from models import corpus as corpus_module
from models.base import LensError
from models.corpus import MEASURES, TABLES, VectorSample, joint_space, run_corpus, verify_run
from models.maths.head_stats import head_statistics

MODEL = "keras-transformer"
TEXTS = [
    "Leaders meet in Geneva as foreign ministers discuss the peace treaty",
    "Team wins the final: the striker scored twice in the championship match",
    "Stocks rise on earnings after shares of the bank climbed",
    "New chip doubles speed of internet servers and phones",
    "Rebels and the army agree to a ceasefire in the north",
    "The coach was fired after the club lost its fifth game",
    "Oil prices fall as OPEC raises output",
    "Scientists find water ice on a distant moon",
    "Election results delayed in the capital",
    "Olympic champion retires at 31",
    "Retail sales beat forecasts in December",
    "Software maker patches a browser flaw",
]
LABELS = ["World", "Sports", "Business", "Sci/Tech"] * 3
# 16 tokens from each of 2 texts per head: enough to see queries and keys of one text together.
SAMPLE_TOKENS = 32


@pytest.fixture(scope="module")
def model():
    from models import registry

    return registry.load(MODEL)


@pytest.fixture(scope="module")
def local_run(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus-local")
    run_corpus(MODEL, TEXTS, out, labels=LABELS, batch=5, sample_tokens=SAMPLE_TOKENS, model=model, progress=lambda done: None)
    return out


def table(run: Path, name: str):
    return pq.read_table(run / name).to_pandas()


def test_run_json_names_the_run_and_its_verified_files(local_run):
    record = verify_run(local_run)
    assert record["model"] == MODEL and record["n"] == len(TEXTS) and record["engine"] == "local"
    assert record["labels"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert (record["layers"], record["heads"]) == (1, 2)
    assert record["measures"] == list(MEASURES)
    assert set(record["files"]) == set(TABLES)
    assert record["vector_sample"]["tokens_per_head"] == SAMPLE_TOKENS


def test_a_changed_table_is_refused(local_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(local_run, copy)
    with open(copy / "summary.parquet", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(LensError, match=r"summary\.parquet does not match its SHA-256"):
        verify_run(copy)


def test_each_text_row_is_the_models_own_prediction_and_head_statistics(local_run, model):
    texts, heads = table(local_run, "texts.parquet"), table(local_run, "heads.parquet")
    assert list(texts.text_id) == list(range(len(TEXTS))) and list(texts.text) == TEXTS
    assert list(texts.gold) == [0, 1, 2, 3] * 3
    index = 6
    prediction = model.predict(TEXTS[index])
    row = texts.iloc[index]
    np.testing.assert_allclose(row.probs, prediction.probs, atol=1e-6)
    assert row.predicted == int(np.argmax(prediction.probs)) and row.confidence == pytest.approx(float(prediction.probs.max()), abs=1e-6)
    assert list(row.tokens) == list(prediction.source_tokens)
    stats = head_statistics(prediction.attentions, prediction.source_special, prediction.target_special, self_attention=prediction.self_attention)
    for head in (1, 2):
        stored = heads[(heads.text_id == index) & (heads.layer == 1) & (heads["head"] == head)].iloc[0]
        for name in MEASURES:
            assert stored[name] == pytest.approx(float(stats[name][0, head - 1]), abs=1e-6), name
        weights = prediction.attentions[0, head - 1]
        assert list(stored.strongest) == list(weights.argmax(axis=-1))
        np.testing.assert_allclose(stored.strongest_weight, weights.max(axis=-1), atol=1e-6)


def test_summary_mean_and_interval_come_from_the_per_text_rows(local_run):
    from models.explain.faithfulness import bootstrap_interval

    heads, summary = table(local_run, "heads.parquet"), table(local_run, "summary.parquet")
    assert len(summary) == 2 * len(MEASURES)
    values = heads[(heads.layer == 1) & (heads["head"] == 2)]["previous"].to_numpy()
    row = summary[(summary.layer == 1) & (summary["head"] == 2) & (summary.measure == "previous")].iloc[0]
    assert row["mean"] == pytest.approx(values.sum() / len(TEXTS), rel=1e-12) and row.texts == len(TEXTS)
    # The same resamples as the faithfulness figures' interval (drawn in chunks here, from the same stream).
    low, high = bootstrap_interval(values, resamples=corpus_module.RESAMPLES, seed=corpus_module.BOOTSTRAP_SEED)
    assert (row.low, row.high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    assert row.low < row["mean"] < row.high


def test_resamples_drawn_in_chunks_give_the_faithfulness_figures_interval():
    """Over 3,000 texts the corpus draws its resamples in two chunks; scipy draws them from one stream, so the interval is the same."""
    from models.explain.faithfulness import bootstrap_interval

    values = np.random.default_rng(3).exponential(size=3_000)
    assert corpus_module.RESAMPLED_VALUES // values.size < corpus_module.RESAMPLES
    low, high = corpus_module.bootstrap_interval(values)
    assert [low, high] == pytest.approx(bootstrap_interval(values, resamples=corpus_module.RESAMPLES, seed=corpus_module.BOOTSTRAP_SEED), rel=1e-12)


def test_joint_space_keeps_every_querys_softmax_and_meets_the_papers_conditions():
    rng = np.random.default_rng(1)
    queries, keys = rng.normal(2.0, 1.0, (30, 8)), rng.normal(-5.0, 3.0, (40, 8))
    moved_queries, moved_keys = joint_space(queries, keys)

    def softmax(q, k):
        scores = q @ k.T
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    np.testing.assert_allclose(softmax(moved_queries, moved_keys), softmax(queries, keys), atol=1e-12)
    np.testing.assert_allclose(
        moved_queries.mean(axis=0) / np.linalg.norm(moved_queries.mean(axis=0)), moved_keys.mean(axis=0) / np.linalg.norm(moved_keys.mean(axis=0)), atol=1e-12
    )
    assert np.linalg.norm(moved_queries, axis=1).mean() == pytest.approx(np.linalg.norm(moved_keys, axis=1).mean(), rel=1e-12)
    # A real move: the raw clouds sit far apart (centroids 7 apart per coordinate).
    assert np.linalg.norm(queries.mean(axis=0) - keys.mean(axis=0)) > 10


def test_stored_vectors_are_the_heads_queries_and_keys_in_the_joint_space(local_run, model):
    """Score differences within one query (all a softmax sees) equal the raw head's, from models.qkv."""
    from models.qkv import head_of

    vectors = table(local_run, "vectors.parquet")
    sampled = VectorSample.choose(len(TEXTS), SAMPLE_TOKENS).texts
    lengths = table(local_run, "texts.parquet").tokens.map(len)
    # 2 heads x (queries + keys) of up to TOKENS_PER_TEXT tokens of each sampled text (a shorter text gives all of its own).
    assert len(vectors) == 2 * 2 * sum(min(corpus_module.TOKENS_PER_TEXT, lengths[i]) for i in sampled)
    assert set(vectors.text_id) == set(sampled)
    assert json.loads((local_run / "run.json").read_text())["vector_sample"]["points_per_head"] == len(vectors) // 2
    text_id = int(vectors.text_id.iloc[0])
    one = vectors[(vectors.text_id == text_id) & (vectors["head"] == 2)]
    queries = np.stack(one[one.kind == "query"].vector.to_numpy()).astype(np.float64)
    keys = np.stack(one[one.kind == "key"].vector.to_numpy()).astype(np.float64)
    positions = one[one.kind == "query"].position.to_numpy()
    assert list(one[one.kind == "key"].position) == list(positions)
    raw = head_of(model, TEXTS[text_id], 0, 1)
    stored, direct = queries @ keys.T, raw.queries[positions] @ raw.keys[positions].T
    np.testing.assert_allclose(stored - stored[:, :1], direct - direct[:, :1], atol=1e-4)
    tokens = table(local_run, "texts.parquet").tokens[text_id]
    assert list(one[one.kind == "query"].token) == [tokens[p] for p in positions]


def test_additive_attention_gets_no_vectors_and_says_why(tmp_path):
    from models import registry

    rnn = registry.load("bahdanau-rnn")
    record = run_corpus("bahdanau-rnn", TEXTS[:3], tmp_path / "rnn", sample_tokens=32, model=rnn, progress=lambda done: None)
    assert "additive (Bahdanau) attention" in record["vector_sample"]["none"] and record["vector_sample"]["points_per_head"] == 0
    assert len(table(tmp_path / "rnn", "vectors.parquet")) == 0
    heads = table(tmp_path / "rnn", "heads.parquet")
    # One learned query over the words: one strongest key per text, and no position-based measures.
    assert len(heads) == 3 and all(len(s) == 1 for s in heads.strongest) and heads["previous"].isna().all()


def test_the_sample_is_bounded_and_seeded():
    sample = VectorSample.choose(7_600, 5_000)
    assert len(sample.texts) * sample.tokens_per_text <= 5_000
    assert sample == VectorSample.choose(7_600, 5_000)
    first = sample.positions(min(sample.texts), 40)
    assert len(first) == sample.tokens_per_text and np.array_equal(first, sample.positions(min(sample.texts), 40))
    with pytest.raises(LensError, match="at most 20,000 points per head"):
        VectorSample.choose(100, 10_001)


def test_files_in_and_gold_labels(model, tmp_path):
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text('text,label\n"Stocks rise, again",business\nTeam wins,1\nNo label here,\n', encoding="utf-8")
    run_corpus(MODEL, None, tmp_path / "csv", data=csv_file, sample_tokens=0, model=model, progress=lambda done: None)
    texts = table(tmp_path / "csv", "texts.parquet")
    assert list(texts.text) == ["Stocks rise, again", "Team wins", "No label here"] and list(texts.gold) == [2, 1, -1]
    assert len(table(tmp_path / "csv", "vectors.parquet")) == 0
    txt_file = tmp_path / "mine.txt"
    txt_file.write_text("first text\n\nsecond text\nthird\n", encoding="utf-8")
    record = run_corpus(MODEL, None, tmp_path / "txt", data=txt_file, n=2, sample_tokens=0, model=model, progress=lambda done: None)
    assert record["n"] == 2 and record["data"] == str(txt_file)
    assert list(table(tmp_path / "txt", "texts.parquet").text) == ["first text", "second text"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.csv", "missing.csv does not exist"),
        ("a,b\n", "data.json", "--data must be a .csv"),
        ("words,label\nhello,1\n", "nocol.csv", "has no 'text' column"),
        ("text,label\nhello,Weather\n", "badlabel.csv", "label 'Weather' is none of the model's classes"),
        ("\n\n", "empty.txt", "holds no texts"),
        (b"\xff\xfe bad", "latin.txt", "is not UTF-8"),
    ],
)
def test_bad_data_gets_one_clear_line(tmp_path, capsys, content, name, message):
    from models.__main__ import main

    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["corpus", "--model", MODEL, "--data", str(path), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and message in error[0]
    # Nothing half-written is left behind for a reader to mistake for a run.
    assert not (out / "run.json").exists() and not list(out.glob(".tmp-*"))


def test_a_text_generator_is_refused(tmp_path, capsys):
    from models.__main__ import main

    assert main(["corpus", "--model", "bahdanau-dates", "--out", str(tmp_path / "run")]) == 2
    assert "runs classifiers" in capsys.readouterr().err


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for this module's Ray tests (each command leaves a running Ray alone)."""
    from models import ray_engine

    with ray_engine.session(None) as ray:
        yield ray


@pytest.mark.slow
def test_ray_engine_writes_the_same_tables(local_run, local_ray, tmp_path):
    """The same texts through Ray Data's actor pool on a local Ray with 2 CPUs: every table equal to 1e-6."""
    out = tmp_path / "ray"
    record = run_corpus(MODEL, TEXTS, out, labels=LABELS, batch=5, sample_tokens=SAMPLE_TOKENS, engine="ray", workers=2, progress=lambda done: None)
    assert record["engine"] == "ray" and verify_run(out)["n"] == len(TEXTS)
    local_record = json.loads((local_run / "run.json").read_text())
    for key in ("labels", "layers", "heads", "measures", "vector_sample"):
        assert record[key] == local_record[key], key
    for name in TABLES:
        ours, theirs = table(out, name), table(local_run, name)
        assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs), name
        for column in ours.columns:
            a, b = ours[column].to_numpy(), theirs[column].to_numpy()
            if a.dtype == object and len(a) and isinstance(a[0], np.ndarray) and a[0].dtype.kind in "fc":
                for x, y in zip(a, b):
                    np.testing.assert_allclose(x, y, atol=1e-6, err_msg=f"{name}.{column}")
            elif a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, atol=1e-6, err_msg=f"{name}.{column}")
            else:
                assert [list(x) if isinstance(x, np.ndarray) else x for x in a] == [list(y) if isinstance(y, np.ndarray) else y for y in b], f"{name}.{column}"


@pytest.mark.slow
def test_ray_engine_reports_bad_input_in_one_line(local_ray, tmp_path):
    """A worker's LensError reaches the driver as the same one-line error (Ray's wrapping would bury it)."""
    out = tmp_path / "bad"
    with pytest.raises(LensError, match=r"^label 'Weather' is none of the model's classes"):
        run_corpus(MODEL, ["hello world"], out, labels=["Weather"], engine="ray", workers=1, progress=lambda done: None)
    assert not (out / "run.json").exists() and not list(out.glob(".tmp-*"))


def without_timings(value):
    """``value`` without the wall-clock figures, which no two runs share."""
    timings = {"seconds", "seconds_per_text", "total_seconds", "load_average", "evaluated"}
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items() if key not in timings}
    return value


def assert_close(a, b, path="report"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-6), path
    else:
        assert a == b, path


@pytest.mark.slow
def test_ray_engine_gives_the_same_faithfulness(model, local_ray):
    """dataset_faithfulness with its per-text work on a Ray actor: the same report (to 1e-6) as in this process.

    One actor: each loads TensorFlow and the model and traces its functions (about 10 s of CPU),
    and the order of results from several actors is the tables test's.
    """
    from models.explain.faithfulness import dataset_faithfulness
    from models.ray_engine import mapper

    texts = TEXTS[:3]
    here, gaps_here = dataset_faithfulness(model, texts, steps=32, beam=1, normalized_texts=2)
    there, gaps_there = dataset_faithfulness(model, texts, steps=32, beam=1, normalized_texts=2, mapper=mapper(MODEL, workers=1))
    assert here["normalized"]["texts"] == 2 and "random" in here
    assert_close(without_timings(there), without_timings(here))
    np.testing.assert_allclose(gaps_there, gaps_here, atol=1e-6)


@pytest.mark.slow
def test_ray_engine_gives_the_same_ground_truth(local_ray):
    """ground_truth with its explanations on a Ray actor (one, as for faithfulness): the same ranks and shares as in this process."""
    from models import registry
    from models.ground_truth import ground_truth
    from models.ray_engine import mapper
    from models.shortcut import shortcut_of

    shortcut = shortcut_of("keras-transformer-shortcut")
    shortcut_model = registry.load("keras-transformer-shortcut")
    here = ground_truth(shortcut_model, shortcut, n=2, samples=16)
    there = ground_truth(shortcut_model, shortcut, n=2, samples=16, mapper=mapper("keras-transformer-shortcut", workers=1))
    assert here["n"] == 2 and here["methods"]
    assert_close(without_timings(there), without_timings(here))


def test_engine_options_need_the_ray_engine(capsys):
    from models.__main__ import main

    assert main(["faithfulness", "--model", MODEL, "--n", "1", "--address", "auto"]) == 2
    assert "--address and --workers are for --engine ray" in capsys.readouterr().err
