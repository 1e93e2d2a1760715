"""The README's measured figures are the ones in the files it cites (bench/readme.py writes them)."""

from __future__ import annotations

import copy
import dataclasses
import difflib

import pytest

from bench import readme
from bench.readme import ClaimError, MarkerError, fill, fraction_words, load_sources, render


@pytest.fixture(scope="module")
def sources():
    return load_sources()


@pytest.fixture(scope="module")
def readme_text():
    return readme.README.read_text(encoding="utf-8")


def test_readme_is_what_its_json_files_say(sources, readme_text):
    fresh = render(readme_text, sources)
    drift = "".join(difflib.unified_diff(readme_text.splitlines(True), fresh.splitlines(True), "README.md", "from the JSON files", n=0))
    assert fresh == readme_text, f"README.md differs from its sources; run `make readme`:\n{drift}"


def table_after(text: str, marker: str) -> list[list[str]]:
    """The Markdown table right after ``marker``, as rows of stripped cells (header first, rule dropped)."""
    lines = text[text.index(marker) + len(marker) :].strip("\n").splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not all(set(cell) <= {"-"} for cell in cells):
            rows.append(cells)
    return rows


def test_faithfulness_row_of_keras_rollout_is_the_json(sources, readme_text):
    # The row that once showed a heatmap's "25 ms | 1.43 MB": read the shown table, not the generator.
    figures = sources.asset("keras-transformer", "faithfulness")["rollout"]
    header, *rows = table_after(readme_text, "<!-- generated: faithfulness -->")
    row = next(row for row in rows if row[0] == "rollout")
    assert row[header.index("keras-transformer comp. ↑")] == f"{figures['comprehensiveness']:.3f}"
    assert row[header.index("keras-transformer suff. ↓")] == f"{figures['sufficiency']:.3f}"


def test_faithfulness_table_has_every_method_of_every_model(sources, readme_text):
    header, *rows = table_after(readme_text, "<!-- generated: faithfulness -->")
    labels = {row[0]: row for row in rows}
    for model in ("keras-transformer", "bahdanau-rnn", "minilm-agnews"):
        run = sources.asset(model, "faithfulness")
        column = header.index(f"{model} comp. ↑")
        for method, label in readme.METHODS.items():
            shown = labels[label][column] if label in labels else None
            if method in run:
                assert shown == f"{run[method]['comprehensiveness']:.3f}", (model, method)
            elif shown is not None:
                assert shown == "—", (model, method)


TINY = """# Title with 3 words

Intro 1.
<!-- generated: table -->
| old | table |
<!-- /generated: table -->

The answer is <!-- generated: answer -->41<!-- /generated: answer --> today, <!-- generated: answer -->40<!-- /generated: answer --> yesterday.
Outro 2.
"""


def test_fill_rewrites_only_between_markers():
    written = fill(TINY, {"table": "| a | b |\n|---|---|\n| 1 | 2 |", "answer": "42"})
    assert written == (
        "# Title with 3 words\n\nIntro 1.\n<!-- generated: table -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- /generated: table -->\n\n"
        "The answer is <!-- generated: answer -->42<!-- /generated: answer --> today, <!-- generated: answer -->42<!-- /generated: answer --> yesterday.\n"
        "Outro 2.\n"
    )
    # Writing again changes nothing: the markers survive and nothing accumulates.
    assert fill(written, {"table": "| a | b |\n|---|---|\n| 1 | 2 |", "answer": "42"}) == written


def test_a_block_without_its_markers_is_an_error_naming_it():
    with pytest.raises(MarkerError, match="faithfulness"):
        fill(TINY, {"table": "x", "answer": "42", "faithfulness": "| table |"})


def test_a_start_without_its_end_is_an_error_naming_it():
    broken = TINY.replace("<!-- /generated: table -->", "")
    with pytest.raises(MarkerError, match="'table' has no end marker"):
        fill(broken, {"table": "x", "answer": "42"})


def test_an_end_without_its_start_is_an_error():
    broken = TINY + "<!-- /generated: table -->\n"
    with pytest.raises(MarkerError, match="table"):
        fill(broken, {"table": "x", "answer": "42"})


def test_a_marker_nothing_writes_is_an_error():
    with pytest.raises(MarkerError, match="'answer' that nothing writes"):
        fill(TINY, {"table": "x"})


def test_a_fragment_may_not_open_a_line():
    # Markdown reads a line that starts with a comment as raw HTML and shows it unformatted.
    broken = TINY.replace("The answer is <!-- generated: answer -->", "<!-- generated: answer -->")
    with pytest.raises(MarkerError, match="opens its line"):
        fill(broken, {"table": "x", "answer": "42"})


def with_asset(sources, model: str, kind: str, change) -> readme.Sources:
    assets = copy.deepcopy(dict(sources.assets))
    change(assets[model][kind])
    return dataclasses.replace(sources, assets=assets)


def test_words_about_a_figure_are_checked_against_it(sources):
    # "a hair under its 0.85 target" must not survive an accuracy above the target.
    above = with_asset(sources, "keras-transformer", "metrics", lambda metrics: metrics.update(accuracy=0.861))
    with pytest.raises(ClaimError, match="hair under"):
        readme.limits_accuracy(above)
    assert readme.keras_target(above) == "**Target 0.85 is met (0.8610).**"
    assert readme.keras_target(sources) == f"**Target 0.85 is missed by {0.85 - sources.asset('keras-transformer', 'metrics')['accuracy']:.4f}.**"


def test_a_new_method_in_faithfulness_json_is_not_dropped_silently(sources):
    extra = with_asset(sources, "minilm-agnews", "faithfulness", lambda run: run.update(lime={"comprehensiveness": 0.3, "sufficiency": 0.1}))
    with pytest.raises(ValueError, match="lime"):
        readme.faithfulness_table(extra)


def test_a_method_a_model_lacks_is_a_dash_and_a_method_none_has_no_row(sources):
    no_flow = with_asset(sources, "keras-transformer", "faithfulness", lambda run: run.pop("flow"))
    header, *rows = table_after(readme.faithfulness_table(no_flow), "")
    assert "flow" not in [row[0] for row in rows]  # no model has flow any more
    no_rollout = with_asset(sources, "minilm-agnews", "faithfulness", lambda run: run.pop("rollout"))
    header, *rows = table_after(readme.faithfulness_table(no_rollout), "")
    rollout = next(row for row in rows if row[0] == "rollout")
    assert rollout[header.index("minilm-agnews comp. ↑")] == rollout[header.index("minilm-agnews suff. ↓")] == "—"
    assert rollout[header.index("keras-transformer comp. ↑")] == f"{sources.asset('keras-transformer', 'faithfulness')['rollout']['comprehensiveness']:.3f}"


@pytest.mark.parametrize(("value", "words"), [(0.522, "half"), (0.19998, "a fifth"), (0.099, "a tenth"), (0.0497, "a twentieth"), (0.34, "a third")])
def test_fraction_words(value, words):
    assert fraction_words(value) == words
