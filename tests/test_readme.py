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


def tables_in(text: str) -> list[list[list[str]]]:
    """Every Markdown table in ``text``, in order, each as ``table_after`` gives it."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))]
    return [table_after("\n".join(lines[start:]), "") for start in starts]


def faithfulness_block(readme_text: str) -> str:
    start, end = "<!-- generated: faithfulness -->", "<!-- /generated: faithfulness -->"
    return readme_text[readme_text.index(start) + len(start) : readme_text.index(end)]


def shown(value: float, interval: list[float]) -> str:
    """A cell as a reader checks it against the JSON: mean, then the interval's ends."""
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def test_faithfulness_row_of_keras_rollout_is_the_json(sources, readme_text):
    # The row that once showed a heatmap's "25 ms | 1.43 MB": read the shown table, not the generator.
    figures = sources.asset("keras-transformer", "faithfulness")["rollout"]
    header, *rows = table_after(readme_text, "<!-- generated: faithfulness -->")
    row = next(row for row in rows if row[0] == "rollout")
    assert row[header.index("keras-transformer comp. ↑")] == shown(figures["comprehensiveness"], figures["comprehensiveness_ci"])
    assert row[header.index("keras-transformer suff. ↓")] == shown(figures["sufficiency"], figures["sufficiency_ci"])


def test_faithfulness_table_has_every_method_of_every_model(sources, readme_text):
    header, *rows = table_after(readme_text, "<!-- generated: faithfulness -->")
    labels = {row[0]: row for row in rows}
    for model in ("keras-transformer", "bahdanau-rnn", "minilm-agnews"):
        run = sources.asset(model, "faithfulness")
        for measure, column in (("comprehensiveness", f"{model} comp. ↑"), ("sufficiency", f"{model} suff. ↓")):
            for method, label in readme.METHODS.items():
                cell = labels[label][header.index(column)] if label in labels else None
                if method not in run:
                    assert cell in (None, "—"), (model, method)
                elif f"{measure}_ci" in run[method]:
                    assert cell == shown(run[method][measure], run[method][f"{measure}_ci"]), (model, method, measure)
                else:
                    assert cell == f"{run[method][measure]:.3f} [—]", (model, method, measure)


def test_normalized_aopc_table_shows_each_runs_figures_and_intervals(sources, readme_text):
    # The second table of the block, read as shown: every normalized cell is the JSON's mean and interval.
    raw, normalized = tables_in(faithfulness_block(readme_text))
    header, *rows = normalized
    labels = {row[0]: row for row in rows}
    assert [row[0] for row in rows] == [row[0] for row in raw[1:]]
    checked = 0
    for model in ("keras-transformer", "bahdanau-rnn", "minilm-agnews"):
        run = sources.asset(model, "faithfulness")
        for measure, column in (("normalized_comprehensiveness", f"{model} norm. comp. ↑"), ("normalized_sufficiency", f"{model} norm. suff. ↓")):
            for method, label in readme.METHODS.items():
                if label not in labels:
                    continue
                cell = labels[label][header.index(column)]
                if method in run and measure in run[method]:
                    assert cell == shown(run[method][measure], run[method][f"{measure}_ci"]), (model, method, measure)
                    checked += 1
                else:
                    assert cell == "—", (model, method, measure)
    assert checked >= 2 * (8 + 5)  # at least the two small models' methods, both measures


def test_normalized_sentence_states_the_beam_and_the_texts_from_the_json(sources):
    # Written over MiniLM's record whatever its run holds, so the test does not depend on which run is shipped.
    def shorter_search(run):
        run.update(n=500, bootstrap=dict(sources.asset("keras-transformer", "faithfulness")["bootstrap"]))
        run["normalized"] = {"beam": 3, "first_texts": 500, "max_units": 30, "texts": 42, "undefined": 1, "bounds_set_by_an_explanation": 4}

    changed = with_asset(sources, "minilm-agnews", "faithfulness", shorter_search)
    written = readme.faithfulness_table(changed)
    keras, rnn = (sources.asset(model, "faithfulness")["normalized"] for model in ("keras-transformer", "bahdanau-rnn"))
    assert f"Beam width: {keras['beam']} (keras-transformer, bahdanau-rnn), 3 (minilm-agnews)." in written
    assert "41 of the first 500 texts, those of at most 30 tokens, leaving out 1 of a single token (minilm-agnews)" in written
    assert (
        f"on {keras['bounds_set_by_an_explanation']} texts (keras-transformer), {rnn['bounds_set_by_an_explanation']} texts (bahdanau-rnn), 4 texts (minilm-agnews)."
        in written
    )
    assert "predates" not in written


def strip_to_old_format(run: dict) -> None:
    """A faithfulness.json as written before issue 18: no intervals, no normalized AOPC."""
    run.pop("bootstrap")
    run.pop("normalized")
    for figures in run.values():
        if isinstance(figures, dict) and "comprehensiveness" in figures:
            for key in [key for key in figures if key.endswith("_ci") or key.startswith("normalized_")]:
                figures.pop(key)


def test_a_run_without_intervals_or_normalized_aopc_still_renders_with_dashes(sources):
    old = with_asset(sources, "keras-transformer", "faithfulness", strip_to_old_format)
    written = readme.faithfulness_table(old)
    raw, normalized = tables_in(written)
    figures = sources.asset("keras-transformer", "faithfulness")["integrated_gradients"]
    row = next(row for row in raw[1:] if row[0] == "integrated gradients")
    assert row[raw[0].index("keras-transformer comp. ↑")] == f"{figures['comprehensiveness']:.3f} [—]"
    row = next(row for row in normalized[1:] if row[0] == "integrated gradients")
    assert row[normalized[0].index("keras-transformer norm. comp. ↑")] == "—"
    predates = next(line for line in written.splitlines() if line.startswith("The run of"))
    assert "keras-transformer" in predates and predates.endswith("predates the intervals ([—]) and normalized AOPC (—).")


def test_runs_with_different_bootstrap_settings_are_refused(sources):
    other = with_asset(sources, "keras-transformer", "faithfulness", lambda run: run["bootstrap"].update(resamples=999))
    with pytest.raises(ValueError, match="different bootstrap settings"):
        readme.faithfulness_table(other)


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
    keras_rollout = sources.asset("keras-transformer", "faithfulness")["rollout"]
    assert rollout[header.index("keras-transformer comp. ↑")] == shown(keras_rollout["comprehensiveness"], keras_rollout["comprehensiveness_ci"])


@pytest.mark.parametrize(("value", "words"), [(0.522, "half"), (0.19998, "a fifth"), (0.099, "a tenth"), (0.0497, "a twentieth"), (0.34, "a third")])
def test_fraction_words(value, words):
    assert fraction_words(value) == words
