"""The date generator: every format reads back, with Python's datetime, as the date it was given."""

import datetime as dt
import re

import numpy as np
import pytest

from models.dates_data import FORMATS, FORMATS_BY_NAME, check_date, english_ordinal, make_examples, read_date, two_digit_year, valid_iso

# How each format reads with datetime.strptime once German words are put into English and
# ordinal suffixes are dropped (both done by `as_strptime_text` below, independently of the
# generator's own tables). A new format fails test_every_format_has_a_strptime_pattern until
# it is added here.
STRPTIME_PATTERNS = {
    "en_weekday_ordinal": "%A, %d of %B %Y",
    "en_the_ordinal": "the %d of %B %Y",
    "en_day_month": "%d %B %Y",
    "en_day_mon": "%d %b %Y",
    "en_weekday_day_mon": "%a %d %b %Y",
    "en_month_ordinal": "%B %d, %Y",
    "en_month_day": "%B %d, %Y",
    "en_mon_day": "%b %d, %Y",
    "en_weekday_month_day": "%A, %B %d, %Y",
    "en_year_month_day": "%Y %B %d",
    "en_day_mon_yy": "%d-%b-%y",
    "us_numeric": "%m/%d/%Y",
    "us_numeric_short": "%m/%d/%Y",
    "us_numeric_yy": "%m/%d/%y",
    "de_day_month": "%d. %B %Y",
    "de_weekday_day_month": "%A, %d. %B %Y",
    "de_weekday_den": "%A, den %d. %B %Y",
    "de_day_mon": "%d. %B %Y",
    "de_numeric": "%d.%m.%Y",
    "de_numeric_short": "%d.%m.%Y",
    "de_numeric_yy": "%d.%m.%y",
    "de_numeric_short_yy": "%d.%m.%y",
    "iso": "%Y-%m-%d",
    "iso_slash": "%Y/%m/%d",
    "iso_basic": "%Y%m%d",
    "dmy_dash": "%d-%m-%Y",
}
GERMAN_TO_ENGLISH = {
    "januar": "january", "jan.": "january", "februar": "february", "feb.": "february", "märz": "march",
    "april": "april", "apr.": "april", "mai": "may", "juni": "june", "juli": "july", "august": "august",
    "aug.": "august", "september": "september", "sept.": "september", "oktober": "october", "okt.": "october",
    "november": "november", "nov.": "november", "dezember": "december", "dez.": "december",
    "montag": "monday", "dienstag": "tuesday", "mittwoch": "wednesday", "donnerstag": "thursday",
    "freitag": "friday", "samstag": "saturday", "sonntag": "sunday",
}  # fmt: skip
GERMAN_WORD = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in sorted(GERMAN_TO_ENGLISH, key=len, reverse=True)) + r")(?!\w)")
ENGLISH_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Days that exercise ordinals (1st 2nd 3rd 11th-13th 21st-23rd 31st), leap days and both ends.
EDGE_DATES = [dt.date(1900, 1, 1), dt.date(2099, 12, 31), dt.date(2000, 2, 29), dt.date(1904, 2, 29), dt.date(1999, 12, 31)]
EDGE_DATES += [dt.date(2015, 3, day) for day in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)]
EDGE_DATES += [dt.date(1969, 1, 1), dt.date(2068, 12, 31), dt.date(2015, 9, 30), dt.date(2015, 10, 5)]


def as_strptime_text(text: str) -> str:
    text = GERMAN_WORD.sub(lambda m: GERMAN_TO_ENGLISH[m.group(1)], text.lower())
    return re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text)


def parse_back(fmt_name: str, text: str) -> dt.date:
    english = as_strptime_text(text)
    parsed = dt.datetime.strptime(english, STRPTIME_PATTERNS[fmt_name]).date()
    # strptime reads a weekday name but does not check it against the date; check it here.
    named = [day for day in ENGLISH_WEEKDAYS if re.search(rf"\b({day}|{day[:3]})\b", english)]
    if named:
        assert named == [ENGLISH_WEEKDAYS[parsed.weekday()]], f"{text!r} names the wrong weekday"
    return parsed


def test_every_format_has_a_strptime_pattern():
    assert set(STRPTIME_PATTERNS) == {fmt.name for fmt in FORMATS}
    assert len({fmt.name for fmt in FORMATS}) == len(FORMATS)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_every_format_parses_back_to_the_same_date(fmt):
    first, last = fmt.date_range
    rng = np.random.default_rng(0)
    days = [d for d in EDGE_DATES if first <= d <= last]
    days += [first + dt.timedelta(days=int(n)) for n in rng.integers((last - first).days + 1, size=300)]
    for day in days:
        text = fmt.render(day)
        for written in (text, text.lower(), text.upper()):
            assert parse_back(fmt.name, written) == day, f"{fmt.name}: {written!r}"


def test_the_examples_in_the_issue_are_among_the_formats():
    rendered = {fmt.render(dt.date(2015, 3, 3)) for fmt in FORMATS}
    assert {"Tuesday, 3rd of March 2015", "03/03/15", "3 Mar 2015", "March 3rd, 2015", "2015 March 3", "3. März 2015"} <= rendered


def test_generated_examples_are_right_and_span_1900_to_2099():
    examples = make_examples(20_000, seed=0)
    years = [int(e.iso[:4]) for e in examples]
    assert min(years) <= 1902 and max(years) >= 2097
    assert all(1900 <= year <= 2099 for year in years)
    assert {e.format for e in examples} == {fmt.name for fmt in FORMATS}
    for example in examples[:3000]:
        assert parse_back(example.format, example.text).isoformat() == example.iso


def test_two_digit_years_are_generated_only_where_strptime_reads_them_right():
    assert [two_digit_year(f"{y:02d}") for y in range(100)] == [dt.datetime.strptime(f"{y:02d}", "%y").year for y in range(100)]
    for example in make_examples(5_000, seed=3):
        if "yy" in FORMATS_BY_NAME[example.format].fields:
            assert 1969 <= int(example.iso[:4]) <= 2068


def test_every_text_has_exactly_one_right_answer():
    seen: dict[str, str] = {}
    for example in make_examples(60_000, seed=5):
        assert seen.setdefault(example.text.lower(), example.iso) == example.iso, example.text
    # The conventions that decide it: "/" is month first, "." day first.
    assert check_date("03/04/15") == ("2015-03-04", None)
    assert check_date("03.04.15") == ("2015-04-03", None)


def test_letter_case_varies_and_the_seed_fixes_everything():
    examples = make_examples(2_000, seed=7)
    assert examples == make_examples(2_000, seed=7)
    assert examples != make_examples(2_000, seed=8)
    # A shorter run is a prefix of a longer one: `evaluate --limit N` scores the first N test dates.
    assert make_examples(100, seed=7) == examples[:100]
    lettered = [e.text for e in examples if re.search(r"[a-zA-Z]{3}", e.text)]
    assert any(t.islower() for t in lettered) and any(t.isupper() for t in lettered)
    assert any(not t.islower() and not t.isupper() for t in lettered)


def test_english_ordinals():
    assert [english_ordinal(d) for d in (1, 2, 3, 4, 10, 11, 12, 13, 14, 21, 22, 23, 24, 30, 31)] == [
        "1st", "2nd", "3rd", "4th", "10th", "11th", "12th", "13th", "14th", "21st", "22nd", "23rd", "24th", "30th", "31st",
    ]  # fmt: skip


def test_read_date_reads_every_format_back():
    for fmt in FORMATS:
        for day in EDGE_DATES:
            if fmt.date_range[0] <= day <= fmt.date_range[1]:
                assert check_date(fmt.render(day).upper()) == (day.isoformat(), None)
                reading = read_date(fmt.render(day))
                assert (reading.year, reading.month, reading.day) == (day.year, day.month, day.day), fmt.render(day)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("hello", "“hello” is not written in any of the date formats"),
        ("1" * 300, "“1111111111111111111111111111111111111111…” is not written"),
        ("31 February 2015", "“31 February 2015” is not a real date: February 2015 has 28 days"),
        ("29.02.1900", "February 1900 has 28 days"),
        ("13/13/2015", "there is no month 13"),
        ("Monday, 3rd of March 2015", "2015-03-03 was a Tuesday, not a Monday"),
        ("3 March 2150", "it was trained on the years 1900 to 2099 only"),
    ],
)
def test_texts_that_are_not_supported_dates_say_why(text, problem):
    iso, reason = check_date(text)
    assert iso is None
    assert problem in reason


def test_valid_iso():
    assert valid_iso("2015-03-03") and valid_iso("2000-02-29") and valid_iso("1900-01-01")
    for text in ("2015-02-29", "2015-3-03", "2015-13-01", "1899-12-31", "2100-01-01", "hello", "", "2015-03-03 "):
        assert not valid_iso(text), text
