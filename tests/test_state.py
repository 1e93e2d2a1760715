"""The page state schema (views.state): every link opens a working page, and reproduces it."""

from __future__ import annotations

import pytest

from views import VIEWS, state


def test_a_full_link_round_trips_through_the_schema():
    query = {
        "model": "minilm-agnews",
        "compare": "keras-transformer",
        "text": "Stocks rally on Wall Street",
        "text2": "The river bank flooded",
        "view": "rollout",
        "layer": "3",
        "head": "7",
        "b.layer": "2",
        "b.head": "2",
        "scheme": "grayscale",
        "scale": "stretch",
        "words": "1",
        "hide_special": "1",
        "ablate": "1:2,3:4",
        "lang": "de",
    }
    values = state.parse_query(query)
    assert values["layer"] == 3 and values["b.head"] == 2 and values["words"] is True
    assert values["ablate"] == frozenset({(1, 2), (3, 4)})
    assert state.to_query(values) == query


def test_bad_values_fall_back_to_defaults_one_by_one():
    values = state.parse_query({"model": "<script>", "view": "nope", "layer": "abc", "head": "0", "words": "yes", "ablate": "1:x", "text": "kept"})
    assert values["model"] == state.field_by_name()["model"].default
    assert values["view"] == "heatmap" and values["layer"] == 1 and values["head"] == 1
    assert values["words"] is False and values["ablate"] == frozenset()
    assert values["text"] == "kept"


def test_a_link_without_text_opens_on_an_example_of_that_models_kind():
    values = state.parse_query({"model": "bahdanau-dates"})
    assert values["text"] in state.DATE_EXAMPLES
    assert values["scheme"] == "grayscale"  # the paper's figure
    assert state.parse_query({})["text"] in state.CLASSIFIER_EXAMPLES


def test_the_colour_scale_is_auto_fixed_for_the_date_model_and_old_stretch_links_still_stretch():
    assert state.parse_query({})["scale"] == "auto"
    assert state.parse_query({"model": "bahdanau-dates"})["scale"] == "fixed"  # the paper's Fig. 3, with its grayscale
    assert state.parse_query({"model": "bahdanau-dates", "scale": "auto"})["scale"] == "auto"  # a link that says so
    # Links from before the three-way scale carried stretch=1; they open stretched, and the URL then says scale=stretch.
    old = state.parse_query({"text": "hello", "stretch": "1"})
    assert old["scale"] == "stretch"
    assert state.to_query(old) == {"text": "hello", "scale": "stretch"}
    assert state.parse_query({"model": "bahdanau-dates", "stretch": "1"})["scale"] == "stretch"
    assert state.parse_query({"stretch": "0"})["scale"] == "auto"
    assert state.parse_query({"stretch": "1", "scale": "fixed"})["scale"] == "fixed"  # the new field wins
    assert state.parse_query({"scale": "log"})["scale"] == "auto"  # unknown: the default


def test_defaults_stay_out_of_the_url_but_the_text_is_always_in_it():
    values = state.parse_query({"text": "hello"})
    assert state.to_query(values) == {"text": "hello"}


def test_long_texts_stay_out_of_the_url():
    values = state.parse_query({})
    values["text"] = "word " * 400
    assert "text" not in state.to_query(values)


def test_every_views_own_field_is_per_panel_by_construction():
    per_panel = {field.name for field in state.fields() if field.per_panel}
    assert {field.name for view in VIEWS for field in view.FIELDS} | {"layer", "head"} == per_panel
    for name in per_panel:
        assert state.key(name, "") == name and state.key(name, state.SECOND_PANEL) == f"b.{name}"
        with pytest.raises(TypeError, match="per panel"):
            state.key(name)  # forgetting the panel is an error, not the first panel's widget


def test_whole_page_fields_refuse_a_panel():
    assert state.key("text") == "text"
    with pytest.raises(TypeError, match="whole page"):
        state.key("text", state.SECOND_PANEL)


def test_every_view_key_is_a_valid_url_value():
    for view in VIEWS:
        assert state.parse_query({"view": view.KEY})["view"] == view.KEY
