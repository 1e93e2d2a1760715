"""``python -m views render``: every view in every format it writes, the same data as the page, and its exit-2 errors.

The views come from ``views.VIEWS``: a new view is rendered here without editing this file.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

import models
from models import registry
from models.maths.tokens import merge_prediction
from views import BY_KEY, VIEWS, flow, state
from views.__main__ import main, plain, renderable
from views.spec import Settings, Subject, for_data

# Every model the registry ships, the quickest to run first: each view is rendered with the first
# of them it applies to.
CHEAPEST_FIRST = ("keras-transformer", "bahdanau-rnn", "bahdanau-dates", "keras-transformer-shortcut", "minilm-agnews", "minilm-shortcut")
# The lesson is a sequence of other views' steps: it has no figure of its own (views/lesson.py).
WITHOUT_FIGURE = ("lesson",)
PNG = b"\x89PNG\r\n\x1a\n"
NEWS = "Oil prices climb to a record high as investors worry about supply"
PIECES = "Cryptocurrency exchanges falter as regulators tighten oversight"  # MiniLM splits two of its words


def example(model_id: str) -> str:
    """The text the page opens with for this model (a headline, or a date for the date model)."""
    return state.EXAMPLES[state.model_kind(model_id)][0]


@pytest.fixture(scope="module")
def load():
    """Each model loads once for the whole module: the command itself loads it on every call."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "load", functools.cache(registry.load))
        yield models.load


def render(tmp_path: Path, name: str, *args: str) -> tuple[int, Path]:
    out = tmp_path / name
    return main(["render", *args, "-o", str(out)]), out


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def numbers(nested) -> np.ndarray:
    """JSON weights as floats (null, an undefined value, as NaN)."""
    return np.array(nested, dtype=float)


def page_tables(view, subject: Subject, settings: Settings) -> dict:
    """What the page exports for these settings: the view's own ``data`` and ``rows``, called as ``views.compute`` calls them."""
    return view.rows(view.data(subject, for_data(view, settings)))


# ---------------------------------------------------------------- the list of views


def test_every_view_but_the_lesson_has_data_figure_and_rows():
    assert set(CHEAPEST_FIRST) == set(registry.REGISTRY)  # a new model joins the candidates
    assert [view.KEY for view in VIEWS if not renderable(view)] == list(WITHOUT_FIGURE)


@pytest.mark.parametrize("key", WITHOUT_FIGURE)
def test_a_view_without_a_figure_exits_2_before_loading_a_model(tmp_path, capsys, key):
    code, out = render(tmp_path, "out.png", "--model", "keras-transformer", "--text", NEWS, "--view", key)
    assert code == 2 and f"the {key} view has no figure of its own" in one_error_line(capsys)
    assert not out.exists()


# ---------------------------------------------------------------- every view, every format


@pytest.mark.slow
@pytest.mark.parametrize("key", [view.KEY for view in VIEWS if view.KEY not in WITHOUT_FIGURE])
def test_every_view_writes_its_figure_and_the_pages_data(tmp_path, capsys, load, key):
    view = BY_KEY[key]
    model_id = next(m for m in CHEAPEST_FIRST if view.applies(load(m).predict(example(m)), load(m))[0])
    model, text = load(model_id), example(model_id)
    base = ["--model", model_id, "--text", text, "--view", key]

    code, out = render(tmp_path, "fig.png", *base)
    assert code == 0 and out.read_bytes()[:8] == PNG
    code, out = render(tmp_path, "fig.svg", *base, "--scheme", "grayscale")
    assert code == 0 and out.read_bytes().lstrip().startswith(b"<svg")
    code, out = render(tmp_path, "fig.html", *base)
    page = out.read_text(encoding="utf-8")
    # Self-contained: plotly.js is inside the page, so it opens offline.
    assert code == 0 and "plotly.js v" in page and 'src="https://cdn.plot.ly' not in page

    # The JSON holds every table the page exports for the page's default settings.
    defaults = {field.name: field.default for field in view.FIELDS}
    expected = page_tables(view, Subject(model_id, model, text, model.predict(text)), Settings.of(defaults))
    code, out = render(tmp_path, "data.json", *base)
    record = json.loads(out.read_text(encoding="utf-8"))
    assert code == 0 and (record["model"], record["view"], record["text"]) == (model_id, key, text)
    assert record["settings"] == {"layer": 1, "head": 1, "words": False, "hide_special": False, **plain(defaults)}
    assert set(record["tables"]) == set(expected)
    for name, table in expected.items():
        written = record["tables"][name]
        assert written["tokens"] == {"rows": list(table.rows), "columns": list(table.columns)}
        weights = numbers(written["weights"])
        assert weights.shape == np.shape(table.weights) and weights.shape[-2:] == (len(table.rows), len(table.columns))
        np.testing.assert_allclose(weights, table.weights, rtol=1e-6, atol=1e-9)
        assert {k: v for k, v in written.items() if k not in ("tokens", "weights")} == plain(dict(table.meta))

    capsys.readouterr()
    code, out = render(tmp_path, "data.csv", *base)
    one_matrix = len(expected) == 1 and np.ndim(next(iter(expected.values())).weights) == 2
    if not one_matrix:
        assert code == 2 and "write .json" in one_error_line(capsys) and not out.exists()
        return
    (table,) = expected.values()
    rows = read_csv(out)
    assert code == 0 and (len(rows), len(rows[0])) == (len(table.rows) + 1, len(table.columns) + 1)
    assert rows[0][1:] == list(table.columns) and [row[0] for row in rows[1:]] == list(table.rows)
    cells = np.array([[cell or "nan" for cell in row[1:]] for row in rows[1:]], dtype=float)
    np.testing.assert_allclose(cells, table.weights, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("key", [view.KEY for view in VIEWS if view.KEY not in WITHOUT_FIGURE])
def test_a_view_that_does_not_apply_to_a_model_exits_2_with_its_reason(tmp_path, capsys, load, key):
    view = BY_KEY[key]
    for model_id in CHEAPEST_FIRST:
        applies, reason = view.applies(load(model_id).predict(example(model_id)), load(model_id))
        if applies:
            continue
        code, out = render(tmp_path, "out.png", "--model", model_id, "--text", example(model_id), "--view", key)
        assert code == 2 and one_error_line(capsys) == f"error: the {key} view does not apply to {model_id}: {reason}"
        assert not out.exists()


# ---------------------------------------------------------------- what the files hold


@pytest.mark.slow
def test_heatmap_csv_and_json_hold_the_heads_attention_with_its_tokens(tmp_path, load):
    prediction = load("keras-transformer").predict(NEWS)
    base = ["--model", "keras-transformer", "--text", NEWS, "--view", "heatmap", "--head", "2"]
    code, out = render(tmp_path, "m.csv", *base)
    table = read_csv(out)
    assert code == 0 and (len(table), len(table[0])) == (len(prediction.target_tokens) + 1, len(prediction.source_tokens) + 1)
    assert table[0][1:] == list(prediction.source_tokens) and [row[0] for row in table[1:]] == list(prediction.target_tokens)
    np.testing.assert_allclose(np.array([row[1:] for row in table[1:]], dtype=float), prediction.attentions[0, 1], atol=1e-6)
    code, out = render(tmp_path, "m.json", *base)
    record = json.loads(out.read_text(encoding="utf-8"))
    heatmap = record["tables"]["heatmap"]
    assert code == 0 and (heatmap["layer"], heatmap["head"]) == (1, 2)
    assert heatmap["tokens"] == {"rows": list(prediction.target_tokens), "columns": list(prediction.source_tokens)}
    np.testing.assert_allclose(heatmap["weights"], prediction.attentions[0, 1], atol=1e-6)


@pytest.mark.slow
def test_words_and_hidden_special_tokens_shape_the_json_as_the_page(tmp_path, load):
    model = load("minilm-agnews")
    words = merge_prediction(model.predict(PIECES), model.subword_scheme)
    ordinary = [token for token, special in zip(words.source_tokens, words.source_special) if not special]
    assert "cryptocurrency" in ordinary and len(ordinary) < len(model.predict(PIECES).source_tokens) - 2  # pieces merged
    code, out = render(tmp_path, "w.json", "--model", "minilm-agnews", "--text", PIECES, "--view", "heatmap", "--words", "--hide-special", "--layer", "2")
    heatmap = json.loads(out.read_text(encoding="utf-8"))["tables"]["heatmap"]
    assert code == 0 and heatmap["tokens"] == {"rows": ordinary, "columns": ordinary}
    assert numbers(heatmap["weights"]).shape == (len(ordinary), len(ordinary))


@pytest.mark.slow
def test_flow_json_is_the_flow_views_own_data_with_words_on(tmp_path, load):
    """The old command recomputed flow its own way and disagreed with the page; now both call ``flow.data``."""
    model = load("minilm-agnews")
    code, out = render(tmp_path, "f.json", "--model", "minilm-agnews", "--text", PIECES, "--view", "flow", "--words", "--layer", "3", "--query", "2")
    written = json.loads(out.read_text(encoding="utf-8"))["tables"]["flow"]
    settings = Settings.of({"query": 2}, layer=3, head=1, words=True)  # "cryptocurrency", five pieces
    d = flow.data(Subject("minilm-agnews", model, PIECES, model.predict(PIECES)), for_data(flow, settings))
    (table,) = flow.rows(d).values()
    assert code == 0 and d.token == "cryptocurrency" and written["spearman"] == d.rho and not np.isnan(d.rho)
    assert written["tokens"] == {"rows": list(table.rows), "columns": list(d.rollout.source)}
    np.testing.assert_allclose(written["weights"], np.vstack([d.rollout.weights, d.flow.weights]), rtol=1e-6)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "name", "message"),
    [
        (["--view", "bertviz"], "out.png", "unknown view 'bertviz'"),
        (["--view", "heatmap"], "out.gif", "extension must be one of"),
        (["--view", "heatmap", "--scheme", "rainbow"], "out.png", "invalid choice: 'rainbow'"),
        (["--view", "heatmap", "--layer", "two"], "out.png", "invalid int value: 'two'"),
        (["--view", "heatmap", "--query", "2"], "out.png", "the heatmap view has no --query option"),
        (["--view", "flow", "--query", "0"], "out.png", "--query '0' is not a value the flow view takes"),
        (["--view", "heatmap", "--model", "no-such-model"], "out.png", "unknown model"),
        pytest.param(["--view", "heatmap", "--text", ""], "out.png", "the text is empty", marks=pytest.mark.slow),  # the model says so
    ],
)
def test_bad_requests_exit_2_with_one_line(tmp_path, capsys, load, args, name, message):
    if "--model" not in args:
        args = ["--model", "keras-transformer", *args]
    if "--text" not in args:
        args = [*args, "--text", NEWS]
    code, out = render(tmp_path, name, *args)
    assert code == 2 and message in one_error_line(capsys)
    assert not out.exists()


def test_a_missing_option_is_one_line_not_the_usage(tmp_path, capsys):
    code, _ = render(tmp_path, "out.png", "--text", NEWS, "--view", "heatmap")
    assert code == 2 and "required: --model" in one_error_line(capsys)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "2"], "layer 2 does not exist: this model has layers 1-1"),
        (["--head", "3"], "head 3 does not exist: this model has heads 1-2"),
        (["--head", "0"], "head 0 does not exist: this model has heads 1-2"),
    ],
)
def test_a_layer_or_head_the_model_lacks_exits_2_with_its_range(tmp_path, capsys, load, args, message):
    code, out = render(tmp_path, "out.csv", "--model", "keras-transformer", "--text", NEWS, "--view", "heatmap", *args)
    assert code == 2 and one_error_line(capsys) == f"error: {message}"
    assert not out.exists()


@pytest.mark.slow
def test_the_colour_scheme_left_out_is_the_pages_grayscale_for_the_date_model_only(tmp_path, load):
    grayscale = '"colorscale":[[0.0,"black"]'  # views.state.parse_query: the paper's figure for seq2seq
    code, out = render(tmp_path, "d.html", "--model", "bahdanau-dates", "--text", example("bahdanau-dates"), "--view", "heatmap")
    assert code == 0 and grayscale in out.read_text(encoding="utf-8")
    code, out = render(tmp_path, "k.html", "--model", "keras-transformer", "--text", NEWS, "--view", "heatmap")
    assert code == 0 and grayscale not in out.read_text(encoding="utf-8")
    code, out = render(tmp_path, "g.html", "--model", "keras-transformer", "--text", NEWS, "--view", "heatmap", "--scheme", "grayscale")
    assert code == 0 and grayscale in out.read_text(encoding="utf-8")


def zmax_of(path: Path) -> float:
    found = re.findall(r'"zmax":([-0-9.e]+)', path.read_text(encoding="utf-8"))
    assert len(found) == 1, found
    return float(found[0])


@pytest.mark.slow
def test_the_colour_scale_left_out_is_the_pages_and_stretch_still_works(tmp_path, load):
    head = load("keras-transformer").predict(NEWS).attentions[0, 0]
    base = ("--model", "keras-transformer", "--text", NEWS, "--view", "heatmap")
    code, out = render(tmp_path, "auto.html", *base)
    assert code == 0 and zmax_of(out) == pytest.approx(float(head.max()), rel=1e-6)  # auto: the near-uniform head stretched
    code, out = render(tmp_path, "fixed.html", *base, "--scale", "fixed")
    assert code == 0 and zmax_of(out) == 1.0
    date = ("--model", "bahdanau-dates", "--text", example("bahdanau-dates"), "--view", "heatmap")
    code, out = render(tmp_path, "date.html", *date)
    assert code == 0 and zmax_of(out) == 1.0  # the paper's fixed scale for the date model
    alignment = load("bahdanau-dates").predict(example("bahdanau-dates")).attentions[0, 0]
    code, out = render(tmp_path, "date-stretched.html", *date, "--stretch")  # the option from before --scale
    assert code == 0 and zmax_of(out) == pytest.approx(float(alignment.max()), rel=1e-6) and alignment.max() < 1.0
