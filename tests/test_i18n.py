"""English and German: the catalogs cover every string the source marks, and the page uses them."""

from __future__ import annotations

import html
import string
import threading

import pytest

from locales.extract import LANGUAGES, read_catalog, template
from tests.helpers.page import figures, heatmap_of, open_page
from views.i18n import _, catalog, use_language


@pytest.fixture(autouse=True)
def english_afterwards():
    """Tests here switch the test thread's language (AppTest formats option labels in it): switch it back."""
    yield
    use_language("en")


@pytest.fixture(scope="module")
def extracted():
    return template()


def fields(message: str) -> set[str]:
    """The names of the ``{...}`` fields that ``str.format`` fills in ``message``."""
    return {name for _text, name, _spec, _conversion in string.Formatter().parse(message) if name is not None}


def test_extraction_finds_marked_strings_and_the_ones_model_code_holds(extracted):
    ids = {message.id for message in extracted}
    assert "What is the model looking at?" in ids  # app.py, _()
    assert "Heatmap" in ids  # a view's TITLE, N_()
    assert "Step {step} of {total}" in ids  # the lesson
    assert {"World", "Sports", "Business", "Sci/Tech"} <= ids  # models/data.py AG_NEWS_LABELS
    assert {"Entropy", "Previous", "On special"} <= ids  # models/maths/head_stats.py STATISTICS titles
    assert "1 = spread evenly over all tokens (a broad head), 0 = always one token" in ids  # and their help texts
    assert "Bidirectional GRU with Bahdanau (additive) attention pooling, trained on AG News" in ids  # registry descriptions
    assert "keras-transformer" not in ids and "models.minilm" not in ids  # ids and modules are not text
    assert "entropy" not in ids  # dict keys are identifiers


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_translates_every_extracted_string_without_fuzzy_entries(extracted, language):
    entries = {message.id: message for message in read_catalog(language) if message.id}
    missing = [message.id for message in extracted if message.id and message.id not in entries]
    empty = [message_id for message_id, message in entries.items() if not message.string]
    fuzzy = [message_id for message_id, message in entries.items() if message.fuzzy]
    assert not missing, f"run python -m locales.extract and translate: {missing[:5]}"
    assert not empty, f"untranslated in {language}: {empty[:5]}"
    assert not fuzzy, f"fuzzy in {language}: {fuzzy[:5]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder(language):
    for message in read_catalog(language):
        if message.id:
            assert fields(message.string) == fields(message.id), message.id


def test_english_catalog_is_the_source_text():
    assert all(message.string == message.id for message in read_catalog("en") if message.id)


def test_german_class_labels_and_page_text():
    german = catalog("de")
    assert [german.gettext(label) for label in ("World", "Sports", "Business", "Sci/Tech")] == ["Welt", "Sport", "Wirtschaft", "Wissenschaft & Technik"]
    assert german.gettext("Prediction: {label} ({probability:.0%})").format(label="Sport", probability=0.97) == "Vorhersage: Sport (97%)"


def test_each_thread_keeps_its_own_language():
    """Sessions are threads of one server: one student's German must not switch another's page."""
    seen = {}
    ready = threading.Barrier(2)

    def session(language: str) -> None:
        use_language(language)
        ready.wait(timeout=10)  # both languages are set before either translates
        seen[language] = _("Model")

    threads = [threading.Thread(target=session, args=(language,)) for language in ("en", "de")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == {"en": "Model", "de": "Modell"}


def test_unknown_language_falls_back_to_english():
    use_language("xx")
    assert _("Model") == "Model"


@pytest.mark.slow
def test_german_page_shows_german_labels_classes_and_the_language_note():
    use_language("de")  # AppTest formats option labels in the test's thread, which must match the page's language
    at = open_page(lang="de", text="Federer beats Nadal to reach the final")
    assert at.selectbox(key="model").label == "Modell"
    assert at.title[0].value == "Wohin schaut das Modell?"
    assert at.subheader[0].value.startswith("Vorhersage: Sport")
    bars = next(f for f in figures(at) if f["data"][0]["type"] == "bar")
    assert [html.unescape(label) for label in bars["data"][0]["y"]] == ["Welt", "Sport", "Wirtschaft", "Wissenschaft & Technik"]  # Plotly shows entities
    heatmap = heatmap_of(at)
    assert (heatmap["layout"]["xaxis"]["title"]["text"], heatmap["layout"]["yaxis"]["title"]["text"]) == ("Quelle (Keys)", "Ziel (Queries)")
    # The transformer's head is near uniform, so the default scale stretches it, and the colour bar says so in German.
    assert heatmap["data"][0]["colorbar"]["title"]["text"] == "Gewicht (automatisch gestreckt)" and "Gewicht %{z:.4f}" in heatmap["data"][0]["hovertemplate"]
    captions = [caption.value for caption in at.sidebar.caption]
    assert "Die Nachrichten-Klassifikatoren lesen nur englischen Text; das Datumsmodell liest englische und deutsche Datumsangaben." in captions
    at.selectbox(key="lang").set_value("en").run()
    assert at.title[0].value == "What is the model looking at?"
    assert at.subheader[0].value.startswith("Prediction: Sports")
    assert heatmap_of(at)["layout"]["xaxis"]["title"]["text"] == "source (keys)"
