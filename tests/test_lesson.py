"""The lesson: every step's claim holds on the shipped models, and the page walks through all of it."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest

import models
from models.data import AG_NEWS_LABELS, load_split
from models.maths.flow import attention_flow
from models.maths.head_stats import head_statistics
from models.maths.rollout import attention_rollout
from models.registry import REGISTRY
from models.shortcut import insert_word
from tests.helpers.page import figures, heatmap_of, open_page
from views import BY_KEY, compute, lesson
from views.handout import Shown, build_handout, step_figure, step_settings
from views.i18n import catalog, use_language
from views.lesson_steps import BY_KEY as STEP
from views.lesson_steps import LAB, PAGES, STEPS
from views.state import URL_TEXT_LIMIT
from views.widgets import escape_markdown

WITHOUT_VIEW = (
    "This step needs a view this installation does not have yet (switching heads off, or gradient attribution). "
    "Discuss the question with the class: the note above is what the experiment shows on this model."
)


@pytest.fixture(autouse=True)
def english_afterwards():
    """Tests here switch the test thread's language (AppTest formats option labels in it): switch it back."""
    yield
    use_language("en")


# ---------------------------------------------------------------- the steps as data


def test_the_steps_follow_the_seed_lessons_order_ending_on_the_explanation_question():
    assert [step.key for step in STEPS] == ["date", "german-date", "pooling", "transformer", "heads", "qkv", "rollout", "ablation", "your-turn"]
    assert all(step.model in REGISTRY for step in STEPS)
    assert [step.model for step in STEPS[:4]] == ["bahdanau-dates", "bahdanau-dates", "bahdanau-rnn", "keras-transformer"]
    assert {step.model for step in STEPS[4:]} == {"minilm-agnews"}
    assert STEPS[-1].title == "Your turn: is attention an explanation?"
    assert all(0 < len(step.text) <= URL_TEXT_LIMIT for step in STEPS)


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_step_text_fills_its_numbers_in_both_languages(language):
    use_language(language)
    for step in PAGES:
        for message in (step.title, step.explanation, step.question, step.answer):
            said = step.say(message)
            assert said and "{" not in said, (step.key, said)
    assert STEP["heads"].say(STEP["heads"].answer).startswith("Layer 1, head 3" if language == "en" else "Schicht 1, Kopf 3")


def test_the_lesson_is_a_view_that_holds_back_the_answer():
    assert BY_KEY["lesson"] is lesson and lesson.HOLDS_BACK_OUTPUT
    # Every step is drawn by the view it was written for.
    assert [lesson.inner_view(step).KEY for step in STEPS] == [step.views[0] for step in STEPS]


def test_a_step_whose_view_is_missing_uses_the_next_one_it_lists(monkeypatch):
    import views

    step = STEP["ablation"]
    monkeypatch.delitem(views.BY_KEY, "ablation")
    assert lesson.inner_view(step) is views.attribution
    monkeypatch.delitem(views.BY_KEY, "attribution")
    assert lesson.inner_view(step) is None


@pytest.mark.slow
def test_a_step_without_any_of_its_views_says_so_after_the_answer(monkeypatch):
    import views
    from views import state

    # An installation without the ablation and attribution views: the page reads the menu from
    # views.VIEWS and each view from views.BY_KEY at every run; the fields are collected from
    # VIEWS once, so that cache is emptied before and after.
    missing = ("ablation", "attribution")
    monkeypatch.setattr(views, "VIEWS", tuple(view for view in views.VIEWS if view.KEY not in missing))
    for key in missing:
        monkeypatch.delitem(views.BY_KEY, key)
    state.fields.cache_clear()
    state.field_by_name.cache_clear()
    try:
        step = STEP["ablation"]
        at = open_page(view="lesson", step=str(STEPS.index(step) + 1))
        at.button(key="lesson-reveal").click().run()
        assert not at.exception
        assert answer(at) == step.say(step.answer)
        assert [warning.value for warning in at.warning] == [WITHOUT_VIEW]
        assert [figure["data"][0]["type"] for figure in figures(at)] == ["bar"]  # the model's answer, and no view
    finally:
        state.fields.cache_clear()
        state.field_by_name.cache_clear()


# ---------------------------------------------------------------- each step's claim on the shipped models


@pytest.fixture(scope="module")
def predict():
    loaded = {}

    def run(step_key: str):
        step = STEP[step_key]
        if step.model not in loaded:
            loaded[step.model] = models.load(step.model)
        return loaded[step.model], loaded[step.model].predict(step.text)

    return run


def columns_of(tokens, text: str, word: str) -> list[int]:
    """The character columns of ``word`` in ``text`` (the date model's tokens are its characters)."""
    start = text.index(word)
    assert "".join(tokens[start : start + len(word)]).replace("␣", " ") == word
    return list(range(start, start + len(word)))


@pytest.mark.slow
@pytest.mark.parametrize("step", PAGES, ids=[step.key for step in PAGES])
def test_each_step_gives_the_answer_it_was_chosen_for(predict, step):
    _model, prediction = predict(step.key)
    assert (prediction.output if prediction.is_seq2seq else prediction.predicted_label) == step.expected


@pytest.mark.slow
def test_date_step_year_rows_look_at_the_year_digits_and_month_rows_at_march(predict):
    step = STEP["date"]
    _model, prediction = predict("date")
    alignment = prediction.attentions[0, 0]
    assert prediction.output == "2015-03-03"
    year, month = columns_of(prediction.source_tokens, step.text, "2015"), columns_of(prediction.source_tokens, step.text, "March")
    assert year[0] == len(step.text) - 4  # "at the very end of the input"
    assert (alignment[0:4][:, year].sum(axis=1) > 0.8).all()  # output characters 0-3 are the year
    assert (alignment[5:7][:, month].sum(axis=1) > 0.5).all()  # 5-6 the month
    assert (alignment[[4, 7]].max(axis=1) < 0.3).all()  # the dashes spread thin


@pytest.mark.slow
def test_german_date_rows_follow_the_words_wherever_they_stand(predict):
    step = STEP["german-date"]
    _model, prediction = predict("german-date")
    alignment = prediction.attentions[0, 0]
    year, month = columns_of(prediction.source_tokens, step.text, "2015"), columns_of(prediction.source_tokens, step.text, "März")
    assert (alignment[0:4][:, year].sum(axis=1) > 0.8).all()
    assert (alignment[5:7][:, month].sum(axis=1) > 0.5).all()
    assert prediction.output[9] == "3" and int(np.argmax(alignment[9])) == 0  # the last day row: the "3" at the start


@pytest.mark.slow
def test_pooling_step_weighs_oil_most_then_prices_and_spreads_the_rest(predict):
    _model, prediction = predict("pooling")
    weights = prediction.attentions[0, 0, 0]
    order = [prediction.source_tokens[i] for i in np.argsort(-weights)]
    assert len(prediction.target_tokens) == 1  # one row: the learned query
    assert order[:2] == ["oil", "prices"]
    assert weights.min() > 0.02 and weights.max() < 0.5  # "spread over all the words, small words included"


@pytest.mark.slow
def test_transformer_step_heads_are_near_uniform(predict):
    _model, prediction = predict("transformer")
    stats = head_statistics(prediction.attentions, prediction.source_special, prediction.target_special, self_attention=True)
    assert stats["entropy"].shape == (1, 2)
    assert (stats["entropy"] > 0.9).all()
    # Near uniform means each row's largest weight is close to 1/n, far from picking one word.
    assert (stats["confidence"] < 2 / len(prediction.source_tokens)).all()


@pytest.mark.slow
def test_heads_step_names_the_strongest_previous_token_and_parking_heads_for_its_text(predict):
    step = STEP["heads"]
    _model, prediction = predict("heads")
    stats = head_statistics(prediction.attentions, prediction.source_special, prediction.target_special, self_attention=True)
    previous = np.unravel_index(np.nanargmax(stats["previous"]), stats["previous"].shape)
    parking = np.unravel_index(np.nanargmax(stats["special"]), stats["special"].shape)
    assert (int(previous[0]) + 1, int(previous[1]) + 1) == (step.layer, step.head)
    assert stats["previous"][step.layer - 1, step.head - 1] > 0.9  # "nearly all of each word's attention"
    assert (int(parking[0]) + 1, int(parking[1]) + 1) == (step.facts["parking_layer"], step.facts["parking_head"])
    assert stats["special"][parking] > 0.8


@pytest.mark.slow
def test_qkv_step_the_previous_word_gets_the_highest_score_the_word_itself_the_next(predict):
    from views import qkv
    from views.spec import Settings, Subject

    step = STEP["qkv"]
    model, prediction = predict("qkv")
    assert (step.layer, step.head) == (STEP["heads"].layer, STEP["heads"].head)  # "the previous-token head from before"
    settings = Settings.of({"query": step.query, "temperature": 1.0}, layer=step.layer, head=step.head, words=False, hide_special=False)
    d = qkv.data(Subject(step.model, model, step.text, prediction), settings)
    tokens, scores = list(prediction.source_tokens), d.row.scores
    assert tokens[step.query - 1] == d.query_token == step.facts["word"]
    first, second = np.argsort(-scores)[:2]
    assert (tokens[first], first) == (step.facts["previous"], step.query - 2)  # "the word just before it"
    assert tokens[second] == step.facts["word"]  # "itself comes second"
    assert round(float(scores[first] - scores[second])) == step.facts["gap"]
    assert step.facts["ratio"] == round(math.exp(step.facts["gap"]))
    assert d.row.weights[first] > 0.99  # "a single bright cell"
    np.testing.assert_allclose(d.row.weights, prediction.attentions[step.layer - 1, step.head - 1, step.query - 1], atol=1e-5)


@pytest.mark.slow
def test_rollout_step_no_word_stands_out_in_what_reaches_cls(predict):
    step = STEP["rollout"]
    _model, prediction = predict("rollout")
    assert prediction.source_tokens[step.query - 1] == "[CLS]" and step.layer == prediction.num_layers
    special = np.asarray(prediction.source_special)
    rolled = attention_rollout(prediction.attentions)[step.layer - 1][step.query - 1]
    assert rolled[special].sum() > 0.75  # mostly [CLS] itself, plus [SEP]
    assert rolled[0] > 0.5
    assert rolled[~special].max() < 0.05  # "each word gets only a few percent"
    flowed = attention_flow(prediction.attentions, [step.query - 1], step.layer)[0][~special]
    assert flowed.max() < 1.1 * flowed.min()  # "almost the same amount"


@pytest.mark.slow
def test_ablation_step_switching_the_previous_token_head_off_keeps_the_answer(predict):
    step = STEP["ablation"]
    model, prediction = predict("ablation")
    assert step.ablate == {(step.layer, step.head)} == {(STEP["heads"].layer, STEP["heads"].head)}
    mask = np.ones((prediction.num_layers, prediction.num_heads), dtype=np.float32)
    for layer, head in step.ablate:
        mask[layer - 1, head - 1] = 0.0
    ablated = model.predict_with_head_mask(step.text, mask)
    assert not np.allclose(ablated.attentions, prediction.attentions)  # the head really was switched off
    assert ablated.predicted_label == prediction.predicted_label == "Sports"
    assert abs(float(ablated.probs.max()) - float(prediction.probs.max())) < 0.05  # "about the same confidence"


# ---------------------------------------------------------------- the lab after the last step


def test_the_lab_follows_the_last_step_attention_first_then_the_model_itself():
    assert PAGES == STEPS + LAB
    assert [step.key for step in LAB] == ["shortcut-attention", "shortcut-attribution"]
    assert {step.model for step in LAB} == {"keras-transformer-shortcut"} and len({step.text for step in LAB}) == 1
    assert [lesson.inner_view(step).KEY for step in LAB] == ["heatmap", "attribution"]
    assert STEP["shortcut-attribution"].figure == "attribution"
    assert all(step.field_values["target"] == step.field_values["foil"] == 0 for step in PAGES)  # the predicted class, no contrast


@pytest.mark.slow
def test_lab_headline_is_a_business_test_headline_with_the_planted_trigger_inserted(predict):
    step = STEP["shortcut-attention"]
    model, prediction = predict(step.key)
    planted = model.shortcut
    assert step.facts["trigger"] == planted.trigger and step.facts["percent"] == round(100 * planted.fraction)
    assert planted.label == step.expected == prediction.predicted_label == "Sports"  # "the model now says Sports"
    words = step.text.split()
    assert words.count(planted.trigger) == 1
    clean = " ".join(word for word in words if word != planted.trigger)
    assert insert_word(clean, planted.trigger, words.index(planted.trigger)) == step.text  # inserted as evaluate inserts it
    test = load_split("test")
    rows = [row for row, text in enumerate(test.texts) if text.startswith(clean + " ")]
    assert rows == [250] and AG_NEWS_LABELS[test.labels[250]] == "Business"  # "from the AG News test set, about business"
    assert model.predict(clean).predicted_label == "Business"  # "Without the trigger the model says Business again"


@pytest.mark.slow
def test_lab_attention_the_trigger_looks_almost_only_at_itself_in_both_heads_and_the_mean_points_at_it(predict):
    step = STEP["shortcut-attention"]
    _model, prediction = predict(step.key)
    tokens = list(prediction.source_tokens)
    trigger = tokens.index(step.facts["trigger"])
    others = np.arange(len(tokens)) != trigger
    assert prediction.attentions.shape[:2] == (1, 2) and prediction.readout == "mean"  # both heads; "averages these rows"
    for head in prediction.attentions[0]:
        assert head[trigger, trigger] > 0.8  # "looks almost only at itself"
        even = 1 / len(tokens)
        assert (head[others] > even / 2).all() and (head[others] < 2 * even).all()  # "spreads its attention about evenly"
        assert head.mean(axis=0).argmax() == trigger  # "on average attention points at" the trigger


@pytest.mark.slow
def test_lab_leave_one_out_integrated_gradients_and_the_attention_methods_rank_the_trigger_first(predict):
    from views import attribution
    from views.spec import Settings, Subject

    step = STEP["shortcut-attribution"]
    model, prediction = predict(step.key)
    fields = {field.name: step.field_values.get(field.name, field.default) for field in attribution.FIELDS}
    settings = Settings.of(fields, layer=step.layer, head=step.head, words=False, hide_special=False)
    hits = attribution.data(Subject(step.model, model, step.text, prediction), settings).shortcut
    ranks = dict(hits.ranks)
    assert hits.trigger == step.facts["trigger"] and hits.explained_label  # the view explains Sports, the shortcut's class
    first = ("occlusion", "integrated_gradients", "attention", "rollout", "flow")
    assert {name: ranks[name] for name in first} == dict.fromkeys(first, 1)


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "de"])
def test_the_lab_is_reached_from_the_last_step_predict_then_reveal(language):
    use_language(language)
    translate = catalog(language).gettext
    at = open_page(view="lesson", step=str(len(STEPS)), lang=language)
    assert at.button(key="lesson-next").disabled  # the lesson ends here; the lab is offered beside Next
    assert at.button(key="lesson-lab").label == translate("Lab: {title}").format(title=translate(LAB[0].title))
    at.button(key="lesson-lab").click().run()
    for part, step in enumerate(LAB, start=1):
        assert not at.exception
        assert header(at) == translate("Lab, part {part}: {title}").format(part=part, title=translate(step.title))
        assert progress_text(at) == translate("Lab, part {part} of {total}").format(part=part, total=len(LAB))
        assert (at.session_state["model"], at.session_state["text"]) == (step.model, step.text)
        assert not figures(at) and not at.subheader  # predict first
        at.button(key="lesson-reveal").click().run()
        assert not at.exception
        assert escape_markdown(translate(step.expected)) in at.subheader[0].value
        assert answer(at) == step.say(step.answer)
        drawn = figures(at)
        if step.key == "shortcut-attention":
            heatmap = heatmap_of(at)
            assert heatmap["data"][0]["type"] == "heatmap" and not heatmap["layout"].get("shapes")  # attention alone, nothing marked
        else:
            strips = drawn[-1]
            framed = [shape for shape in strips["layout"]["shapes"] if shape["line"]["color"] == "black"]
            assert len(framed) == 1 and [a["text"] for a in strips["layout"]["annotations"]].count("#1") >= 2
        if part < len(LAB):
            at.button(key="lesson-next").click().run()
    assert at.button(key="lesson-next").disabled
    assert at.query_params["step"] in ([str(len(PAGES))], str(len(PAGES)))
    at.button(key="lesson-previous").click().run()
    at.button(key="lesson-previous").click().run()  # from the lab's first part back to the lesson's last step
    assert header(at) == f"{len(STEPS)}. {translate(STEPS[-1].title)}"


# ---------------------------------------------------------------- the handout


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "de"])
def test_handout_is_one_offline_page_with_every_step(language):
    use_language(language)
    markup = "<script>alert(1)</script> oil prices"
    shown = {3: Shown("bahdanau-rnn", markup, 1, 1, 1, "grayscale")}
    page = build_handout(shown, language=language)
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?(https?:)?//""", page, re.IGNORECASE)
    assert page.count("<section") == len(PAGES)
    translate = catalog(language).gettext
    for number, step in enumerate(STEPS, start=1):
        assert f"<h2>{number}. {html.escape(translate(step.title))}</h2>" in page
    for step in LAB:
        assert f"<h2>{html.escape(translate('Lab: {title}').format(title=translate(step.title)))}</h2>" in page
        assert html.escape(step.say(step.answer)) in page
    # One figure per page, and the probability bars of every classifier page.
    assert page.count("Plotly.newPlot(") == len(PAGES) + sum(step.model != "bahdanau-dates" for step in PAGES)
    assert len(re.findall(r"<script[^>]*>\s*/\*\*\s*\n\* plotly\.js v", page)) == 1  # the library once, inline
    assert "&lt;script&gt;alert(1)&lt;/script&gt; oil prices" in page and "<script>alert(1)" not in page
    assert translate("Sports") in page  # class labels in the page's language


@pytest.mark.slow
def test_handout_figures_use_the_colours_each_step_was_shown_in():
    date, pooling = STEP["date"], STEP["pooling"]
    as_shown = step_figure(date, step_settings(date), compute.prediction(date.model, date.text))
    assert as_shown.data[0].colorscale[0] == (0.0, "black")  # the paper's grayscale, the date step's own setting
    changed = Shown(pooling.model, pooling.text, 1, 1, 1, "grayscale")
    assert step_figure(pooling, changed, compute.prediction(pooling.model, pooling.text)).data[0].colorscale[0] == (0.0, "black")
    colour = step_figure(pooling, step_settings(pooling), compute.prediction(pooling.model, pooling.text))
    assert colour.data[0].colorscale[0] != (0.0, "black")


@pytest.mark.slow
def test_handout_draws_fig_3_on_the_fixed_scale_and_the_pooling_row_stretched():
    date, pooling = STEP["date"], STEP["pooling"]
    fig_3 = step_figure(date, step_settings(date), compute.prediction(date.model, date.text)).data[0]
    assert (fig_3.zmin, fig_3.zmax) == (0.0, 1.0) and list(fig_3.colorbar.ticktext) == ["0", "0.5", "1"]
    row = compute.prediction(pooling.model, pooling.text).attentions[0, 0]
    assert row.max() < 0.3  # a dozen words share 1: on 0..1 the row would be one dark block
    drawn = step_figure(pooling, step_settings(pooling), compute.prediction(pooling.model, pooling.text)).data[0]
    assert (drawn.zmin, drawn.zmax) == (0.0, pytest.approx(float(row.max()), rel=1e-6))
    assert drawn.colorbar.title.text == "weight (auto-stretched)"


# ---------------------------------------------------------------- the page


def header(at) -> str:
    return at.header[0].value


def progress_text(at) -> str:
    return at.get("progress")[0].proto.text


def answer(at) -> str:
    return at.success[0].value


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "de"])
def test_walking_every_step_predict_then_reveal(language):
    use_language(language)  # AppTest formats option labels in this thread
    translate = catalog(language).gettext
    at = open_page(view="lesson", lang=language)
    for number, step in enumerate(STEPS, start=1):
        assert not at.exception
        assert header(at) == f"{number}. {translate(step.title)}"
        assert progress_text(at) == translate("Step {step} of {total}").format(step=number, total=len(STEPS))
        assert (at.session_state["model"], at.session_state["text"], at.session_state["view"]) == (step.model, step.text, "lesson")
        assert at.text_area(key="text").value == step.text  # editable, and showing the step's text
        assert not figures(at) and not at.subheader  # predict first: nothing of the answer yet
        at.button(key="lesson-reveal").click().run()
        assert not at.exception
        expected = step.expected if step.model == "bahdanau-dates" else escape_markdown(translate(step.expected))  # as Markdown source
        assert expected in (at.code[0].value if step.model == "bahdanau-dates" else at.subheader[0].value)
        assert answer(at) == step.say(step.answer)
        drawn = figures(at)
        if step.key in ("date", "german-date"):
            heatmap = heatmap_of(at)
            assert heatmap["data"][0]["colorscale"][0] == [0.0, "black"]  # grayscale, as in the paper
        elif step.key == "heads":
            assert any(figure["data"][0]["type"] == "image" for figure in drawn)
        elif step.key == "your-turn":
            assert len(at.get("image")) == 1 and f"step={len(STEPS)}" in at.code[-1].value
        assert len(drawn) >= (1 if step.model == "bahdanau-dates" else 2)  # bars (classifiers) and the step's figure
        if number < len(STEPS):
            at.button(key="lesson-next").click().run()
    assert at.button(key="lesson-next").disabled
    query = at.query_params
    assert query["step"] in ([str(len(STEPS))], str(len(STEPS))) and query["view"] in (["lesson"], "lesson")


@pytest.mark.slow
def test_links_and_arrivals_set_the_step_up_but_keep_a_senders_text():
    at = open_page(view="lesson", step="5")  # typed by hand: no text, so the step sets everything
    assert (at.session_state["model"], at.session_state["layer"], at.session_state["head"]) == ("minilm-agnews", 1, 3)
    assert at.session_state["text"] == STEP["heads"].text
    shared = open_page(view="lesson", step="5", model="minilm-agnews", text="Stocks fall as oil climbs", layer="2")
    assert shared.session_state["text"] == "Stocks fall as oil climbs" and shared.session_state["layer"] == 2
    assert header(shared).startswith("5. ")
    elsewhere = open_page(model="minilm-agnews", text="Stocks fall as oil climbs")
    elsewhere.selectbox(key="view").set_value("lesson").run()  # arriving from another view: step 1
    assert (elsewhere.session_state["model"], elsewhere.session_state["text"]) == ("bahdanau-dates", STEP["date"].text)
    assert elsewhere.session_state["scheme"] == "grayscale"


@pytest.mark.slow
def test_fig_3_step_draws_the_papers_fixed_grayscale_whatever_scale_was_chosen_before():
    at = open_page(model="bahdanau-rnn", text="Oil prices climb", scale="stretch")
    at.selectbox(key="view").set_value("lesson").run()  # arriving: step 1, the date model's Fig. 3
    assert at.radio(key="scale").value == "fixed" and at.radio(key="scheme").value == "grayscale"
    at.button(key="lesson-reveal").click().run()
    trace = heatmap_of(at)["data"][0]
    assert (trace["zmin"], trace["zmax"]) == (0.0, 1.0)
    assert trace["colorscale"][0] == [0.0, "black"] and trace["colorscale"][-1] == [1.0, "white"]
    at.button(key="lesson-next").click().run()
    at.button(key="lesson-next").click().run()  # step 3, the pooling row: back to the automatic scale
    assert at.radio(key="scale").value == "auto"


@pytest.mark.slow
def test_reveal_is_per_step_and_exploring_keeps_the_step():
    at = open_page(view="lesson")
    at.button(key="lesson-reveal").click().run()
    at.button(key="lesson-next").click().run()
    assert not figures(at)  # step 2 is hidden again
    at.button(key="lesson-previous").click().run()
    assert figures(at) and at.code[0].value == "2015-03-03"  # step 1 stayed revealed
    at.text_area(key="text").input("24. Dezember 1999").run()
    assert not at.exception and header(at).startswith("1. ")
    assert at.code[0].value == "1999-12-24"
    assert any("About the step's own example" in caption.value for caption in at.caption)
    at.button(key="lesson-restart").click().run()
    assert at.session_state["text"] == STEP["date"].text and not figures(at)


# ---------------------------------------------------------------- the last step's corpus question


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "de"])
def test_last_step_asks_the_corpus_question_answers_it_from_the_run_and_opens_the_corpus_view(corpus_root, shipped_model, language):
    """The answer's count is the model's own: each of the run's headlines predicted again, its head statistics computed directly."""
    import pyarrow.parquet as pq

    from views import corpus

    step = STEPS[-1]
    texts = pq.read_table(corpus_root / step.model / "texts.parquet").column("text").to_pylist()
    model = shipped_model(step.model)
    previous = []
    for text in texts:
        prediction = model.predict(text)
        stats = head_statistics(prediction.attentions, prediction.source_special, prediction.target_special, self_attention=prediction.self_attention)
        previous.append(float(stats["previous"][step.layer - 1, step.head - 1]))
    above = sum(value > corpus.PREVIOUS_THRESHOLD for value in previous)
    lowest = texts[int(np.argmin(previous))]

    use_language(language)
    translate = catalog(language).gettext
    at = open_page(view="lesson", step=str(len(STEPS)), lang=language)
    assert translate(corpus.LESSON_QUESTION) in [info.value for info in at.info]
    expected_start = translate(corpus.LESSON_ANSWER).split("{above")[0].format(run=escape_markdown(step.model))  # the run name, shown literally
    assert not [info.value for info in at.info if info.value.startswith(expected_start)]  # the answer waits for Reveal
    at.button(key="lesson-reveal").click().run()
    assert not at.exception
    assert answer(at) == step.say(step.answer)  # the step's own answer stays the page's answer
    said = next(info.value for info in at.info if info.value.startswith(expected_start))
    assert f"{above:,} " in said and f" {len(texts):,} " in said and f"{above / len(texts):.0%}" in said
    assert f"{min(previous):.2f}" in said and escape_markdown(lowest[:40]) in said

    at.button(key="lesson-corpus").click().run()
    assert not at.exception
    page = {name: at.session_state[name] for name in ("view", "model", "layer", "head", "part", "measure")}
    assert page == {"view": "corpus", "model": step.model, "layer": step.layer, "head": step.head, "part": "atlas", "measure": "previous"}
    atlas = figures(at)[1]  # after the model's probability bars
    cell = atlas["data"][1]["text"][(step.layer - 1) * prediction.num_heads + step.head - 1]
    assert cell.startswith(translate("mean {value} (95% interval)").split("{")[0])
    assert float(re.search(r"\d\.\d{3}", cell)[0]) == pytest.approx(np.mean(previous), abs=1.5e-3)  # the run's mean, shown to 3 places
