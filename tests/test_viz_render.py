"""``python -m viz render``: the files it writes (magic bytes, CSV shape = token counts, JSON keys) and its exit-2 errors."""

import csv
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from models import registry
from models.maths.head_stats import STATISTICS
from models.maths.tokens import merge_prediction
from viz.__main__ import main

TEXT = "the cat saw the dog and the bird"
NEWS = "Oil prices climb to a record high as investors worry about supply"


@pytest.fixture(scope="module")
def cached_models():
    """Each model loads once for the whole module: the command itself loads it on every call."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "load", functools.cache(registry.load))
        yield registry.load


def render(tmp_path: Path, name: str, *args: str) -> tuple[int, Path]:
    out = tmp_path / name
    return main(["render", *args, "-o", str(out)]), out


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


@pytest.mark.parametrize(
    ("args", "name", "message"),
    [
        (["--view", "bertviz"], "out.png", "unknown view 'bertviz'"),
        (["--view", "heatmap"], "out.gif", "extension must be one of"),
        (["--view", "overview"], "out.csv", "cannot be written as CSV"),
        (["--view", "norms"], "out.csv", "cannot be written as CSV"),
        (["--view", "heatmap", "--scheme", "rainbow"], "out.png", "unknown colour scheme"),
        (["--view", "headview", "--threshold", "2"], "out.png", "--threshold 2.0 is not a weight"),
        (["--view", "heatmap", "--model", "no-such-model"], "out.png", "unknown model"),
    ],
)
def test_bad_requests_exit_2_with_one_line_before_loading_a_model(tmp_path, capsys, args, name, message):
    if "--model" not in args:
        args = ["--model", "keras-transformer", *args]
    code, out = render(tmp_path, name, *args, "--text", TEXT)
    assert code == 2 and message in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.slow
def test_heatmap_png_svg_and_html(tmp_path, cached_models):
    base = ["--model", "keras-transformer", "--text", TEXT, "--view", "heatmap"]
    code, png = render(tmp_path, "fig.png", *base)
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, svg = render(tmp_path, "fig.svg", *base, "--scheme", "grayscale")
    assert code == 0 and svg.read_bytes().lstrip().startswith(b"<svg")
    code, html = render(tmp_path, "fig.html", *base)
    page = html.read_text(encoding="utf-8")
    # Self-contained: plotly.js is inside the page, so it opens offline.
    assert code == 0 and "plotly.js v" in page and 'src="https://cdn.plot.ly' not in page


@pytest.mark.slow
def test_heatmap_csv_and_json_hold_the_matrix_with_its_tokens(tmp_path, cached_models):
    prediction = cached_models("keras-transformer").predict(TEXT)
    base = ["--model", "keras-transformer", "--text", TEXT, "--view", "heatmap", "--head", "2"]
    code, out = render(tmp_path, "m.csv", *base)
    table = read_csv(out)
    assert code == 0 and (len(table), len(table[0])) == (len(prediction.target_tokens) + 1, len(prediction.source_tokens) + 1)
    assert table[0][1:] == list(prediction.source_tokens) and [row[0] for row in table[1:]] == list(prediction.target_tokens)
    np.testing.assert_allclose(np.array([row[1:] for row in table[1:]], dtype=float), prediction.attentions[0, 1], atol=1e-6)
    code, out = render(tmp_path, "m.json", *base)
    record = json.loads(out.read_text(encoding="utf-8"))
    assert {"tokens", "weights", "model", "view", "layer", "head", "text"} <= set(record)
    assert (record["model"], record["view"], record["layer"], record["head"], record["text"]) == ("keras-transformer", "heatmap", 1, 2, TEXT)
    assert record["tokens"] == {"rows": list(prediction.target_tokens), "columns": list(prediction.source_tokens)}
    np.testing.assert_allclose(record["weights"], prediction.attentions[0, 1], atol=1e-6)


@pytest.mark.slow
def test_overview_headview_and_stats_files(tmp_path, cached_models):
    prediction = cached_models("keras-transformer").predict(TEXT)
    n = len(prediction.source_tokens)
    base = ["--model", "keras-transformer", "--text", TEXT]
    code, out = render(tmp_path, "o.png", *base, "--view", "overview", "--head", "2")
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out = render(tmp_path, "o.json", *base, "--view", "overview")
    assert code == 0 and np.asarray(json.loads(out.read_text())["weights"]).shape == (1, 2, n, n)
    code, out = render(tmp_path, "h.json", *base, "--view", "headview")
    record = json.loads(out.read_text())
    assert code == 0 and record["heads"] == [1, 2]
    np.testing.assert_allclose(record["weights"], prediction.attentions[0].mean(axis=0), atol=1e-6)  # the shown heads' mean, as on the page
    code, out = render(tmp_path, "h.csv", *base, "--view", "headview", "--head", "2")
    table = read_csv(out)
    assert code == 0 and (len(table), len(table[0])) == (n + 1, n + 1)
    np.testing.assert_allclose(np.array([row[1:] for row in table[1:]], dtype=float), prediction.attentions[0, 1], atol=1e-6)
    code, out = render(tmp_path, "s.csv", *base, "--view", "stats")
    table = read_csv(out)
    assert code == 0 and table[0][1:] == list(STATISTICS) and [row[0] for row in table[1:]] == ["L1 H1", "L1 H2"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "name", "message"),
    [
        (["--view", "heatmap", "--layer", "2"], "out.png", "layer 2 does not exist: this model has layers 1-1"),
        (["--view", "heatmap", "--head", "3"], "out.csv", "head 3 does not exist: this model has heads 1-2"),
        (["--view", "rollout"], "out.png", "single attention layer"),
        (["--view", "flow"], "out.csv", "single attention layer"),
        (["--view", "norms"], "out.png", "does not apply to keras-transformer"),
    ],
)
def test_what_does_not_apply_to_the_model_exits_2_with_one_line(tmp_path, capsys, cached_models, args, name, message):
    code, out = render(tmp_path, name, "--model", "keras-transformer", "--text", TEXT, *args)
    assert code == 2 and message in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.slow
def test_rollout_rows_are_the_query_rows_through_the_layer(tmp_path, cached_models):
    from models.maths.rollout import attention_rollout

    prediction = cached_models("minilm-agnews").predict(NEWS)
    base = ["--model", "minilm-agnews", "--text", NEWS, "--view", "rollout"]
    code, out = render(tmp_path, "r.csv", *base)
    table = read_csv(out)
    assert code == 0 and len(table) == 2 and table[1][0] == "[CLS]" and len(table[0]) == len(prediction.source_tokens) + 1
    np.testing.assert_allclose(np.array(table[1][1:], dtype=float), attention_rollout(prediction.attentions)[-1][0], atol=1e-6)
    code, out = render(tmp_path, "r.json", *base, "--layer", "2", "--rows", "1", "3", "--hide-special")
    record = json.loads(out.read_text())
    assert record["layer"] == 2 and record["rows"] == [1, 3]
    assert record["tokens"]["rows"] == [prediction.target_tokens[0], prediction.target_tokens[2]]
    assert "[CLS]" not in record["tokens"]["columns"] and len(record["tokens"]["columns"]) == len(prediction.source_tokens) - 2
    code, _ = render(tmp_path, "bad.csv", *base, "--rows", "99")
    assert code == 2


@pytest.mark.slow
def test_flow_of_the_first_token_with_rollout_and_their_correlation(tmp_path, cached_models):
    prediction = merge_prediction(cached_models("minilm-agnews").predict(NEWS), "wordpiece")
    code, out = render(tmp_path, "f.json", "--model", "minilm-agnews", "--text", NEWS, "--view", "flow", "--words", "--layer", "3")
    record = json.loads(out.read_text())
    assert code == 0 and record["layer"] == 3 and record["rows"] == [1]
    assert record["tokens"] == {"rows": ["[CLS]"], "columns": list(prediction.source_tokens)}
    flows, rolled = np.asarray(record["weights"]), np.asarray(record["rollout"])
    assert flows.shape == rolled.shape == (1, len(prediction.source_tokens))
    assert -1.0 <= record["spearman"] <= 1.0
    code, out = render(tmp_path, "f.png", "--model", "minilm-agnews", "--text", NEWS, "--view", "flow")
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_norms_json_holds_the_four_matrices(tmp_path, cached_models):
    prediction = cached_models("minilm-agnews").predict(NEWS)
    n = len(prediction.source_tokens)
    code, out = render(tmp_path, "n.json", "--model", "minilm-agnews", "--text", NEWS, "--view", "norms", "--layer", "2", "--head", "5")
    record = json.loads(out.read_text())
    assert code == 0 and record["matrices"] == ["weights", "head_norm", "layer_norm", "alti"]
    weights = np.asarray(record["weights"])
    assert weights.shape == (4, n, n)
    np.testing.assert_allclose(weights[0], prediction.attentions[1, 4], atol=1e-6)
    code, out = render(tmp_path, "n.svg", "--model", "minilm-agnews", "--text", NEWS, "--view", "norms", "--words", "--hide-special")
    assert code == 0 and out.read_bytes().lstrip().startswith(b"<svg")
