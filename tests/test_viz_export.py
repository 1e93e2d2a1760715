"""Export: PNG and SVG through kaleido and Debian's chromium, matrices as CSV and JSON with literal tokens."""

import concurrent.futures
import csv
import io
import json
import struct
from xml.etree import ElementTree

import numpy as np
import plotly.graph_objects as go
import pytest

from viz import alignment_heatmap
from viz.export import ExportError, _Renderer, browser_path, figure_png, figure_svg, matrix_csv, matrix_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SENTENCE = ["the", "cat", "saw", "the", "dog", "and", "the", "bird"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_csv_has_tokens_as_header_row_and_first_column():
    weights = np.array([[0.5, 0.25, 0.25], [1e-9, 0.0, 1.0]])
    text = matrix_csv(weights, ["<b>", "the"], ["the", "a,b", 'say "hi"'])
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["", "the", "a,b", 'say "hi"']  # written literally, CSV quoting only
    assert [row[0] for row in table[1:]] == ["<b>", "the"]
    np.testing.assert_allclose(np.array([row[1:] for row in table[1:]], dtype=float), weights)


def test_csv_keeps_repeated_tokens_and_its_shape_is_the_token_counts():
    weights = np.eye(8)
    table = list(csv.reader(io.StringIO(matrix_csv(weights, SENTENCE, SENTENCE))))
    assert len(table) == 9 and all(len(row) == 9 for row in table)
    assert table[0][1:] == SENTENCE


def test_csv_leaves_undefined_values_empty_and_refuses_stacks():
    assert list(csv.reader(io.StringIO(matrix_csv(np.array([[np.nan, 1.0]]), ["r"], ["a", "b"]))))[1] == ["r", "", "1"]
    with pytest.raises(ValueError, match="one matrix"):
        matrix_csv(np.zeros((2, 1, 2)), ["r"], ["a", "b"])


def test_json_records_tokens_weights_and_where_they_came_from():
    weights = np.array([[0.1, 0.9], [np.nan, 0.123456789]], dtype=np.float32)
    record = json.loads(matrix_json(weights, ["le", "chat"], ["the", "cat"], model="m", view="heatmap", layer=2, head=3, text="the cat <i>"))
    assert record["tokens"] == {"rows": ["le", "chat"], "columns": ["the", "cat"]}
    assert record["weights"] == [[0.1, 0.9], [None, 0.1234568]]
    assert (record["model"], record["view"], record["layer"], record["head"], record["text"]) == ("m", "heatmap", 2, 3, "the cat <i>")


def test_json_keeps_leading_axes():
    weights = np.random.default_rng(0).random((2, 3, 4))
    record = json.loads(matrix_json(weights, list("abc"), list("wxyz")))
    assert np.asarray(record["weights"]).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="do not end in"):
        matrix_json(weights, list("ab"), list("wxyz"))


@pytest.mark.slow  # starts Chromium
def test_png_and_svg_of_a_heatmap():
    figure = alignment_heatmap(np.eye(3), list("abc"), list("abc"), title="<b>literal</b>")
    figure.update_layout(width=400)
    width, height = png_size(figure_png(figure, scale=2))
    assert (width, height) == (800, 2 * figure.layout.height)
    svg = figure_svg(figure)
    assert svg.lstrip().startswith(b"<svg")
    texts = [element.text for element in ElementTree.fromstring(svg).iter() if element.text]
    assert "<b>literal</b>" in texts and {"a", "b", "c"} <= set(texts)


@pytest.mark.slow  # starts Chromium
def test_renders_from_many_threads_each_get_their_own_figure():
    """One shared browser: a render must never hand one caller another caller's image."""

    def render(height: int) -> tuple[int, tuple[int, int]]:
        figure = go.Figure(go.Bar(x=[1, 2], y=[3, 1]), layout=dict(width=300, height=height))
        return height, png_size(figure_png(figure, scale=1))

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(render, range(200, 320, 10)))
    assert all(size == (300, height) for height, size in results)


def test_missing_browser_says_how_to_install_it(monkeypatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr("viz.export.shutil.which", lambda name: None)
    with pytest.raises(ExportError, match="apt-get install chromium"):
        browser_path()
    with pytest.raises(ExportError, match="apt-get install chromium"):
        _Renderer().render(go.Figure(), "png", 1)


def test_browser_path_honours_an_override(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-browser"))
    with pytest.raises(ExportError, match="BROWSER_PATH"):
        browser_path()
