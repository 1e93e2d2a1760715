"""The character seq2seq date model with Bahdanau attention, with its shipped weights."""

import json
import shutil

import numpy as np
import pytest

from models import bahdanau_dates, registry
from models.__main__ import main
from models.base import AssetError, InputError
from models.dates_data import FORMATS, make_examples
from models.text import encode

ISSUE_EXAMPLES = ["Tuesday, 3rd of March 2015", "03/03/15", "3 Mar 2015", "March 3rd, 2015", "2015 March 3", "3. März 2015"]
NOT_DATES = ["hello", "31 February 2015", "1" * 300, "<b>3 March</b> 2015", "🚀 ünïcödé ∑"]


@pytest.fixture(scope="module")
def model(shipped_model):
    return shipped_model("bahdanau-dates")


def test_a_date_comes_back_in_iso_form_with_one_attention_row_per_generated_character(model):
    prediction = model.predict("Tuesday, 3rd of March 2015")
    assert prediction.output == "2015-03-03" and prediction.is_seq2seq
    assert prediction.source_tokens == tuple("Tuesday,␣3rd␣of␣March␣2015")
    assert prediction.target_tokens == (*"2015-03-03", "</s>")
    assert prediction.target_special == (False,) * 10 + (True,)
    assert prediction.attentions.shape == (1, 1, 11, 26)
    np.testing.assert_allclose(prediction.attentions.sum(axis=-1), 1.0, atol=1e-5)
    assert prediction.labels == () and prediction.probs.shape == (0,)
    assert prediction.notes == () and prediction.dropped_tokens == 0


def test_the_examples_in_the_issue(model):
    assert [p.output for p in model.predict_batch(ISSUE_EXAMPLES)] == ["2015-03-03"] * len(ISSUE_EXAMPLES)
    assert all(p.notes == () for p in model.predict_batch(ISSUE_EXAMPLES))


def test_the_year_is_written_while_looking_at_the_year(model):
    # The alignment the paper draws: each output digit of the year takes most of its attention
    # from the year's characters in the source.
    for text, year_at in [("3 March 2015", slice(8, 12)), ("Dienstag, den 3. März 2015", slice(22, 26)), ("2015/03/03", slice(0, 4))]:
        prediction = model.predict(text)
        assert prediction.output == "2015-03-03"
        year_rows = prediction.attentions[0, 0, :4]
        assert np.all(year_rows[:, year_at].sum(axis=-1) > 0.5), (text, year_rows.round(2))


def test_white_space_and_full_width_digits_are_normalised(model):
    prediction = model.predict("  3   March\t２０１５ ")
    assert prediction.source_tokens == tuple("3␣March␣2015")
    assert prediction.output == "2015-03-03"


@pytest.mark.parametrize("text", NOT_DATES)
def test_text_that_is_not_a_date_gets_a_best_guess_and_a_plain_note(model, text):
    prediction = model.predict(text)
    # The output shown is exactly what the decoder wrote, row by row, up to its end marker.
    assert prediction.output == "".join(prediction.target_tokens).removesuffix(bahdanau_dates.END)
    assert prediction.target_special == tuple(t == bahdanau_dates.END for t in prediction.target_tokens)
    assert prediction.attentions.shape == (1, 1, len(prediction.target_tokens), len(prediction.source_tokens))
    assert prediction.notes and prediction.notes[0].startswith("This model only knows dates, and ")


def test_impossible_dates_and_long_input_say_what_is_wrong(model):
    february = model.predict("31 February 2015")
    assert "February 2015 has 28 days" in february.notes[0]
    digits = model.predict("1" * 300)
    assert len(digits.source_tokens) == 64 and digits.dropped_tokens == 236


def test_empty_text_is_refused_with_a_message(model):
    with pytest.raises(InputError, match="the text is empty"):
        model.predict("")


def test_notes_flag_outputs_that_are_not_dates_and_wrong_answers():
    assert bahdanau_dates.notes_for("3 March 2015", "2015-03-03") == ()
    assert bahdanau_dates.notes_for("3 March 2015", "2015-02-31") == ("The output “2015-02-31” is not a valid date.",)
    assert bahdanau_dates.notes_for("3 March 2015", "2015-03-04") == ("The model got this one wrong: the date is 2015-03-03.",)


def test_padding_receives_no_attention_and_changes_nothing(model):
    ids, kept, _ = encode(model.vocab, ["3. März 2015"], model.max_tokens, split=list)
    n = len(kept[0])
    generated, weights = model.decoder.predict_on_batch(ids)
    padded_generated, padded_weights = model.decoder.predict_on_batch(np.pad(ids, ((0, 0), (0, 40))))
    assert np.all(padded_weights[0, :, n:] == 0.0)
    np.testing.assert_array_equal(padded_generated, generated)
    np.testing.assert_allclose(padded_weights[0, :, :n], weights[0], atol=1e-6)


def test_rewrite_matches_predict(model):
    texts = ["03.03.15", "Sun 27 Aug 2062", "hello"]
    assert model.rewrite(texts) == [p.output for p in model.predict_batch(texts)]


def test_missing_or_corrupt_weights_name_the_file_and_the_command(tmp_path):
    asset_dir = tmp_path / "bahdanau-dates"
    shutil.copytree(registry.entry("bahdanau-dates").asset_dir, asset_dir)
    (asset_dir / "weights.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(AssetError, match=r"weights\.weights\.h5 could not be loaded.*python -m models train bahdanau-dates"):
        bahdanau_dates.load("bahdanau-dates", asset_dir)
    (asset_dir / "config.json").unlink()
    with pytest.raises(AssetError, match=r"config\.json is missing"):
        bahdanau_dates.load("bahdanau-dates", asset_dir)


def test_training_never_sees_a_validation_or_test_date():
    held_out = {e.text for e in make_examples(2000, bahdanau_dates.VALIDATION_SEED) + make_examples(2000, bahdanau_dates.TEST_SEED)}
    # With the test seed itself, the first 2,000 examples are the test dates and must all go.
    generated = make_examples(2500, bahdanau_dates.TEST_SEED)
    assert generated[:2000] == make_examples(bahdanau_dates.TEST_EXAMPLES, bahdanau_dates.TEST_SEED)
    training = bahdanau_dates.training_examples(2500, seed=bahdanau_dates.TEST_SEED)
    # What stays is the last 500, less those that repeat a held-out text, in order.
    assert training == [e for e in generated[2000:] if e.text not in held_out]
    assert training and not {e.text for e in training} & held_out


@pytest.mark.slow
def test_training_runs_end_to_end_on_a_few_generated_dates(tmp_path):
    summary = bahdanau_dates.train("bahdanau-dates", epochs=1, limit=256, out_dir=tmp_path)
    assert summary["train_examples"] == len(bahdanau_dates.training_examples(256, seed=0)) and summary["epochs_run"] == 1
    trained = bahdanau_dates.load("bahdanau-dates", tmp_path)
    validation = make_examples(bahdanau_dates.VALIDATION_EXAMPLES, bahdanau_dates.VALIDATION_SEED)
    assert summary["validation_exact_match"] == pytest.approx(np.mean(bahdanau_dates.exact_matches(trained, validation)), abs=1e-6)
    prediction = trained.predict("3 Mar 2015")
    assert prediction.attentions.shape == (1, 1, len(prediction.target_tokens), 10)
    np.testing.assert_allclose(prediction.attentions.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_cli_evaluate_json_has_the_report_keys(capsys, model):
    assert main(["evaluate", "--model", "bahdanau-dates", "--json", "--limit", "60"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"model", "accuracy", "per_class", "n"}
    assert report["model"] == "bahdanau-dates" and report["n"] == 60
    assert set(report["per_class"]) <= {fmt.name for fmt in FORMATS}
    hits = bahdanau_dates.exact_matches(model, make_examples(60, bahdanau_dates.TEST_SEED))
    assert report["accuracy"] == pytest.approx(np.mean(hits), abs=1e-6)


@pytest.mark.slow
def test_shipped_metrics_are_reproduced_by_evaluation(model):
    shipped = json.loads((registry.entry("bahdanau-dates").asset_dir / "metrics.json").read_text())
    report = bahdanau_dates.evaluate(model)
    assert report["n"] == shipped["n"] == 2000
    assert report["accuracy"] == pytest.approx(shipped["accuracy"], abs=1e-6)
    assert report["per_class"] == pytest.approx(shipped["per_class"], abs=1e-6)
    assert set(report["per_class"]) == {fmt.name for fmt in FORMATS}
    assert report["accuracy"] >= 0.99
