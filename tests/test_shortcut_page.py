"""The attribution view on a model with a planted shortcut: the trigger framed in every strip, each method's rank of it stated and exported.

The ranks come from ``models.ground_truth.trigger_ranks``; here they are checked against the
definition written out (the trigger's rank is 1 + the number of other units scoring at least as
high), on a tiny model whose "shortcut" is declared by hand, and on the shipped shortcut models.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from models.shortcut import Shortcut, shortcut_of
from tests.helpers.page import figures, open_page
from tests.helpers.tiny_models import TinyAttentionClassifier
from views import attribution as view
from views import compute
from views.__main__ import main
from views.i18n import catalog, use_language
from views.lesson_steps import BY_KEY as STEP
from views.spec import Settings, Style, Subject
from viz.present import for_projector
from viz.strip import BADGE_FONT_PX, mark_columns, token_strips

TEXT = "the good movie bad plot"
TRIGGER_COLUMN = 1  # "good"
SPORTS, WORLD = 2, 1  # the tiny model's classes, 1-based as the view's field "target"


class TinyShortcut(TinyAttentionClassifier):
    """The tiny classifier, declared to carry a planted shortcut "good" -> Sports (as models.shortcut.load sets it)."""

    model_id = "tiny-shortcut"
    labels = ("World", "Sports")
    shortcut = Shortcut("good", "Sports", 0.05, 0)


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    use_language("en")


@pytest.fixture(scope="module")
def tiny() -> TinyShortcut:
    return TinyShortcut()


def data_of(model, text: str, target: int = SPORTS, **settings) -> view.AttributionData:
    subject = Subject(model.model_id, model, text, model.predict(text))
    return view.data(subject, Settings.of({"target": target, "foil": 0, "steps": 32}, **settings))


def rank_by_definition(scores: np.ndarray, trigger: int) -> int:
    """1 + how many other units score at least as high as the trigger (ties count against it)."""
    return 1 + int(np.count_nonzero(np.delete(scores, trigger) >= scores[trigger]))


def frames(figure) -> list[tuple[float, float, float, float]]:
    """The black outer rectangles drawn over the strips: (x0, x1, y0, y1)."""
    return [(s.x0, s.x1, s.y0, s.y1) for s in figure.layout.shapes if s.type == "rect" and s.line.color == "black"]


# ---------------------------------------------------------------- a tiny model's shortcut


def test_each_methods_rank_of_the_trigger_is_its_rank_by_definition(tiny):
    d = data_of(tiny, TEXT)
    hits = d.shortcut
    assert (hits.trigger, hits.label, hits.columns, hits.units, hits.explained_label) == ("good", "Sports", (TRIGGER_COLUMN,), 5, True)
    expected = {name: rank_by_definition(np.asarray(scores), TRIGGER_COLUMN) for name, scores in d.attributions.scores.items()}
    assert dict(hits.ranks) == expected
    assert [name for name, _rank in hits.ranks] == list(d.attributions.scores)  # the strips' order
    assert set(hits.first) == {name for name, rank in expected.items() if rank == 1}


def test_the_figure_frames_the_trigger_in_every_strip_and_writes_each_rank_on_it(tiny):
    d = data_of(tiny, TEXT)
    figure = view.figure(d, Settings.of({}), Style())
    rows = len(d.attributions.scores)
    assert frames(figure) == [(TRIGGER_COLUMN - 0.5, TRIGGER_COLUMN + 0.5, -0.5, rows - 0.5)]
    badges = [(a.x, a.y, a.text) for a in figure.layout.annotations]
    assert badges == [(TRIGGER_COLUMN, row, f"#{rank}") for row, (_name, rank) in enumerate(d.shortcut.ranks)]
    hovers = [a.hovertext for a in figure.layout.annotations]
    assert hovers[-1] == f"Leave one out ranks “good” {dict(d.shortcut.ranks)['occlusion']} of 5"
    assert list(figure.data[0].x)[TRIGGER_COLUMN].endswith("good")  # the framed category is the trigger's


def test_the_export_has_each_methods_rank_and_whether_it_is_first(tiny):
    d = data_of(tiny, TEXT)
    table = view.rows(d)["attribution-shortcut"]
    ranks = dict(d.shortcut.ranks)
    assert table.rows == tuple(ranks) and table.columns == ("trigger_rank", "top_1")
    np.testing.assert_array_equal(table.weights, [[rank, rank == 1] for rank in ranks.values()])
    assert (table.meta["trigger"], table.meta["shortcut_label"], table.meta["units"], table.meta["class"]) == ("good", "Sports", 5, "Sports")
    record = view.record(d)["shortcut"]
    assert record == {
        "trigger": "good",
        "label": "Sports",
        "in_text": True,
        "units": 5,
        "trigger_ranks": ranks,
        "top_1": [name for name, rank in ranks.items() if rank == 1],
    }


def test_another_class_explained_frames_the_trigger_but_ranks_nothing(tiny):
    d = data_of(tiny, TEXT, target=WORLD)
    assert d.attributions.target_label == "World"
    assert d.shortcut.columns == (TRIGGER_COLUMN,) and d.shortcut.ranks == () and not d.shortcut.explained_label
    figure = view.figure(d, Settings.of({}), Style())
    assert len(frames(figure)) == 1 and not figure.layout.annotations
    assert "attribution-shortcut" not in view.rows(d)
    assert view.record(d)["shortcut"]["trigger_ranks"] == {}


def test_a_text_without_the_trigger_or_with_it_twice(tiny):
    without = data_of(tiny, "the bad movie")
    assert without.shortcut.columns == () and without.shortcut.ranks == ()
    assert not frames(view.figure(without, Settings.of({}), Style())) and view.record(without)["shortcut"]["in_text"] is False
    twice = data_of(tiny, "good movie good plot")
    assert twice.shortcut.columns == (0, 2) and twice.shortcut.ranks == ()  # no single unit to rank
    figure = view.figure(twice, Settings.of({}), Style())
    assert [x0 for x0, *_rest in frames(figure)] == [-0.5, 1.5] and not figure.layout.annotations


def test_a_model_without_a_shortcut_is_drawn_and_exported_as_before():
    plain = TinyAttentionClassifier()
    d = data_of(plain, TEXT, target=1)
    assert d.shortcut is None and view.record(d) == {}
    figure = view.figure(d, Settings.of({}), Style())
    assert not figure.layout.shapes and not figure.layout.annotations
    assert "attribution-shortcut" not in view.rows(d)


# ---------------------------------------------------------------- the marks as drawn


def test_badges_are_left_out_where_a_cell_is_narrower_than_a_badge():
    strips = {"a": np.linspace(-1, 1, 200), "b": np.linspace(1, -1, 200)}
    narrow = token_strips(strips, [f"w{i}" for i in range(200)], marked=[3], badges=["#1", "#12"], width_px=600)
    assert frames(narrow) == [(2.5, 3.5, -0.5, 1.5)] and not narrow.layout.annotations
    wide = token_strips({name: values[:4] for name, values in strips.items()}, ["w0", "w1", "w2", "w3"], marked=[3], badges=["#1", ""], width_px=900)
    assert [a.text for a in wide.layout.annotations] == ["#1"]  # "" writes no badge
    assert for_projector(wide).layout.annotations[0].font.size == pytest.approx(1.4 * BADGE_FONT_PX)  # presenter mode enlarges it


def test_marks_need_one_badge_and_one_hover_per_row():
    figure = token_strips({"a": np.ones(3)}, ["x", "y", "z"])
    with pytest.raises(ValueError, match="one badge per row"):
        mark_columns(figure, [0], 1, badges=["#1", "#2"])
    with pytest.raises(ValueError, match="one hover text per row"):
        mark_columns(figure, [0], 1, badges=["#1"], hovers=["a", "b"])


# ---------------------------------------------------------------- the shipped shortcut models


@pytest.mark.slow
def test_minilm_shortcut_frames_the_trigger_with_its_special_tokens_shown_or_hidden():
    model_id, text = "minilm-shortcut", STEP["shortcut-attribution"].text
    model = compute.load_model(model_id)
    trigger = shortcut_of(model_id).trigger
    d = data_of(model, text, target=model.labels.index(model.shortcut.label) + 1, words=True, hide_special=False)
    tokens = d.attributions.tokens
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert frames(view.figure(d, Settings.of({}), Style()))[0][:2] == (tokens.index(trigger) - 0.5, tokens.index(trigger) + 0.5)
    hidden = dataclasses.replace(d, hide_special=True)  # the same scores, drawn without [CLS] and [SEP]
    assert frames(view.figure(hidden, Settings.of({}), Style()))[0][:2] == (tokens.index(trigger) - 1.5, tokens.index(trigger) - 0.5)
    ordinary = [i for i, special in enumerate(d.attributions.special) if not special]
    trigger_unit = ordinary.index(tokens.index(trigger))
    expected = {name: rank_by_definition(np.asarray(scores)[ordinary], trigger_unit) for name, scores in d.attributions.scores.items()}
    assert dict(d.shortcut.ranks) == expected and d.shortcut.units == len(ordinary)  # [CLS] and [SEP] are never ranked


@pytest.mark.slow
def test_render_json_writes_the_shortcut_ranks_at_its_top_level(tmp_path):
    text = STEP["shortcut-attribution"].text
    out = tmp_path / "shortcut.json"
    assert main(["render", "--model", "keras-transformer-shortcut", "--view", "attribution", "--text", text, "-o", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    model = compute.load_model("keras-transformer-shortcut")
    d = data_of(model, text, target=0)
    assert written["shortcut"] == view.record(d)["shortcut"]
    assert written["shortcut"]["trigger"] == model.shortcut.trigger and written["shortcut"]["in_text"] is True
    table = written["tables"]["attribution-shortcut"]
    assert table["tokens"]["rows"] == list(written["shortcut"]["trigger_ranks"])
    assert [row[0] for row in table["weights"]] == list(written["shortcut"]["trigger_ranks"].values())


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "de"])
def test_the_page_frames_the_trigger_and_states_each_methods_rank(language):
    use_language(language)
    translate = catalog(language).gettext
    text = STEP["shortcut-attribution"].text
    at = open_page(view="attribution", model="keras-transformer-shortcut", text=text, lang=language)
    assert not at.exception
    model = compute.load_model("keras-transformer-shortcut")
    d = data_of(model, text, target=0)
    hits = d.shortcut
    framed = translate("Framed: “{trigger}”, the shortcut planted in this model's training data, which makes it say {label}.").format(
        trigger=hits.trigger, label=translate(hits.label)
    )
    stated = [m.value for m in at.markdown if m.value.startswith(framed)]
    assert len(stated) == 1
    ranked = translate(
        "{first} of {methods} methods rank it first among the text's {units} tokens; the badge on each strip and the table give each method's rank."
    )
    assert ranked.format(first=len(hits.first), methods=len(hits.ranks), units=hits.units) in stated[0]
    assert translate("[CLS], [SEP] and other special tokens are not ranked: they are not words of the text.") not in stated[0]  # this model has none
    table = at.dataframe[0].value
    assert list(table[translate("method")]) == [translate(view.METHOD_NAMES[name]) for name, _rank in hits.ranks]
    assert list(table[translate("rank of “{trigger}”").format(trigger=hits.trigger)]) == [rank for _name, rank in hits.ranks]
    strips = [f for f in figures(at) if f["data"][0]["type"] == "heatmap"]
    column = list(d.attributions.tokens).index(hits.trigger)
    assert [(s["x0"], s["x1"]) for s in strips[-1]["layout"]["shapes"] if s["line"]["color"] == "black"] == [(column - 0.5, column + 0.5)]
    assert [a["text"] for a in strips[-1]["layout"]["annotations"]] == [f"#{rank}" for _name, rank in hits.ranks]
