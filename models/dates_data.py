"""Written dates and their ISO form, generated in code for the ``bahdanau-dates`` model.

Nothing is downloaded: ``make_examples(n, seed)`` draws a format and a date uniformly and renders
it, so the same seed always gives the same examples. Dates run from 1900-01-01 to 2099-12-31.

The formats (``FORMATS``), each shown for Tuesday 3 March 2015, whose target is ``2015-03-03``:

    English                                         German
    en_weekday_ordinal    Tuesday, 3rd of March 2015    de_day_month          3. März 2015
    en_the_ordinal        the 3rd of March 2015         de_weekday_day_month  Dienstag, 3. März 2015
    en_day_month          3 March 2015                  de_weekday_den        Dienstag, den 3. März 2015
    en_day_mon            3 Mar 2015                    de_day_mon            3. März 2015 (*)
    en_weekday_day_mon    Tue 3 Mar 2015                de_numeric            03.03.2015
    en_month_ordinal      March 3rd, 2015               de_numeric_short      3.3.2015
    en_month_day          March 3, 2015                 de_numeric_yy         03.03.15
    en_mon_day            Mar 3, 2015                   de_numeric_short_yy   3.3.15
    en_weekday_month_day  Tuesday, March 3, 2015
    en_year_month_day     2015 March 3                  Numeric
    en_day_mon_yy         3-Mar-15                      iso                   2015-03-03
    us_numeric            03/03/2015                    iso_slash             2015/03/03
    us_numeric_short      3/3/2015                      iso_basic             20150303
    us_numeric_yy         03/03/15                      dmy_dash              03-03-2015

    (*) Duden abbreviations: Jan., Feb., März, Apr., Mai, Juni, Juli, Aug., Sept., Okt., Nov., Dez.

Conventions, fixed so that every text has exactly one right answer:

- The separator decides the order of a numeric date: ``/`` is month first (US), ``.`` and ``-``
  are day first (German, British), and a four-digit year written first means year, month, day.
  So ``03/04/15`` is 4 March 2015 and ``03.04.15`` is 3 April 2015.
- Two-digit years follow POSIX and Python's ``strptime``: 69-99 are 1969-1999, 00-68 are
  2000-2068. Formats with a two-digit year are generated only for dates in 1969-2068, where that
  reading is the right one.
- Weekdays, where written, are the true weekday of the date.
- The whole text is kept as written (70%), lower-cased (20%) or upper-cased (10%), since people
  type "3 march 2015" too.

``read_date`` reads a text back by the same format definitions; the app uses it only to tell the
user when the input is not a date the model was trained on.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from babel.dates import get_day_names, get_month_names

FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2099, 12, 31)
# The window in which strptime's two-digit-year rule (69 -> 1969, 68 -> 2068) is right.
FIRST_TWO_DIGIT_DATE, LAST_TWO_DIGIT_DATE = dt.date(1969, 1, 1), dt.date(2068, 12, 31)
LOWER_CASE_SHARE, UPPER_CASE_SHARE = 0.2, 0.1


def _months(width: Literal["wide", "abbreviated"], locale: str) -> tuple[str, ...]:
    """January..December as CLDR writes them in a date ("format" context), from Babel."""
    names = get_month_names(width, locale=locale)
    return tuple(names[month] for month in range(1, 13))


def _weekdays(width: Literal["wide", "abbreviated"], locale: str) -> tuple[str, ...]:
    """Monday..Sunday (Babel's 0 = Monday, as date.weekday()) as CLDR writes them in a date."""
    names = get_day_names(width, locale=locale)
    return tuple(names[day] for day in range(7))


# The date model was trained on these exact strings; Babel (pinned) gives each of them unchanged:
# English "Jan".."Dec" and "Mon".."Sun" without dots, and German abbreviated months in the
# format context are Duden's "Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.",
# "Sept.", ... (the stand-alone context would give "Mär", "Jun", "Sep" instead).
EN_MONTHS, EN_MONTHS_SHORT = _months("wide", "en"), _months("abbreviated", "en")
EN_WEEKDAYS, EN_WEEKDAYS_SHORT = _weekdays("wide", "en"), _weekdays("abbreviated", "en")
DE_MONTHS, DE_MONTHS_SHORT = _months("wide", "de"), _months("abbreviated", "de")
DE_WEEKDAYS = _weekdays("wide", "de")


def english_ordinal(day: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st, 22nd, 23rd, ..., 31st."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def two_digit_year(digits: str) -> int:
    """POSIX/strptime reading of a two-digit year: 69-99 -> 1969-1999, 00-68 -> 2000-2068."""
    year = int(digits)
    return 1900 + year if year >= 69 else 2000 + year


@dataclass(frozen=True)
class Field:
    """One placeholder of a format: how to write it for a date and how to read it back."""

    part: str  # "year", "month", "day" or "weekday"
    render: Callable[[dt.date], str]
    pattern: str
    read: Callable[[str], int] = int


def _names(part: str, names: tuple[str, ...]) -> Field:
    """A month (1-12) or weekday (0 = Monday, as date.weekday()) written as a name."""
    offset = 1 if part == "month" else 0
    index = {name.lower(): i + offset for i, name in enumerate(names)}
    # Longest first, so that "Juni" is not read as a prefix match of something shorter.
    alternatives = "|".join(re.escape(name) for name in sorted(set(names), key=len, reverse=True))
    position = (lambda d: d.month - 1) if part == "month" else (lambda d: d.weekday())
    return Field(part, lambda d: names[position(d)], alternatives, lambda text: index[text.lower()])


FIELDS: dict[str, Field] = {
    "d": Field("day", lambda d: str(d.day), r"\d{1,2}"),
    "dd": Field("day", lambda d: f"{d.day:02d}", r"\d{2}"),
    "do": Field("day", lambda d: english_ordinal(d.day), r"\d{1,2}(?:st|nd|rd|th)", lambda text: int(text[:-2])),
    "m": Field("month", lambda d: str(d.month), r"\d{1,2}"),
    "mm": Field("month", lambda d: f"{d.month:02d}", r"\d{2}"),
    "yyyy": Field("year", lambda d: f"{d.year:04d}", r"\d{4}"),
    "yy": Field("year", lambda d: f"{d.year % 100:02d}", r"\d{2}", two_digit_year),
    "month": _names("month", EN_MONTHS),
    "mon": _names("month", EN_MONTHS_SHORT),
    "weekday": _names("weekday", EN_WEEKDAYS),
    "wd": _names("weekday", EN_WEEKDAYS_SHORT),
    "monat": _names("month", DE_MONTHS),
    "mon_de": _names("month", DE_MONTHS_SHORT),
    "wochentag": _names("weekday", DE_WEEKDAYS),
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class DateFormat:
    """A way of writing a date, e.g. ``"{d}. {monat} {yyyy}"`` with placeholders from FIELDS."""

    name: str
    template: str

    @property
    def fields(self) -> list[str]:
        return _PLACEHOLDER.findall(self.template)

    @property
    def date_range(self) -> tuple[dt.date, dt.date]:
        if "yy" in self.fields:
            return FIRST_TWO_DIGIT_DATE, LAST_TWO_DIGIT_DATE
        return FIRST_DATE, LAST_DATE

    def render(self, day: dt.date) -> str:
        return _PLACEHOLDER.sub(lambda match: FIELDS[match.group(1)].render(day), self.template)

    @cached_property
    def regex(self) -> re.Pattern:
        parts = _PLACEHOLDER.split(self.template)  # literal, field, literal, field, ..., literal
        pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>{FIELDS[part].pattern})" for i, part in enumerate(parts))
        return re.compile(pattern, re.IGNORECASE)


FORMATS = (
    DateFormat("en_weekday_ordinal", "{weekday}, {do} of {month} {yyyy}"),
    DateFormat("en_the_ordinal", "the {do} of {month} {yyyy}"),
    DateFormat("en_day_month", "{d} {month} {yyyy}"),
    DateFormat("en_day_mon", "{d} {mon} {yyyy}"),
    DateFormat("en_weekday_day_mon", "{wd} {d} {mon} {yyyy}"),
    DateFormat("en_month_ordinal", "{month} {do}, {yyyy}"),
    DateFormat("en_month_day", "{month} {d}, {yyyy}"),
    DateFormat("en_mon_day", "{mon} {d}, {yyyy}"),
    DateFormat("en_weekday_month_day", "{weekday}, {month} {d}, {yyyy}"),
    DateFormat("en_year_month_day", "{yyyy} {month} {d}"),
    DateFormat("en_day_mon_yy", "{d}-{mon}-{yy}"),
    DateFormat("us_numeric", "{mm}/{dd}/{yyyy}"),
    DateFormat("us_numeric_short", "{m}/{d}/{yyyy}"),
    DateFormat("us_numeric_yy", "{mm}/{dd}/{yy}"),
    DateFormat("de_day_month", "{d}. {monat} {yyyy}"),
    DateFormat("de_weekday_day_month", "{wochentag}, {d}. {monat} {yyyy}"),
    DateFormat("de_weekday_den", "{wochentag}, den {d}. {monat} {yyyy}"),
    DateFormat("de_day_mon", "{d}. {mon_de} {yyyy}"),
    DateFormat("de_numeric", "{dd}.{mm}.{yyyy}"),
    DateFormat("de_numeric_short", "{d}.{m}.{yyyy}"),
    DateFormat("de_numeric_yy", "{dd}.{mm}.{yy}"),
    DateFormat("de_numeric_short_yy", "{d}.{m}.{yy}"),
    DateFormat("iso", "{yyyy}-{mm}-{dd}"),
    DateFormat("iso_slash", "{yyyy}/{mm}/{dd}"),
    DateFormat("iso_basic", "{yyyy}{mm}{dd}"),
    DateFormat("dmy_dash", "{dd}-{mm}-{yyyy}"),
)
FORMATS_BY_NAME = {fmt.name: fmt for fmt in FORMATS}


@dataclass(frozen=True)
class Example:
    text: str
    iso: str  # the target, YYYY-MM-DD
    format: str  # name of the DateFormat it was written in


def make_examples(n: int, seed: int) -> list[Example]:
    """``n`` written dates with their ISO form; the same seed always gives the same list."""
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        fmt = FORMATS[rng.integers(len(FORMATS))]
        first, last = fmt.date_range
        day = first + dt.timedelta(days=int(rng.integers((last - first).days + 1)))
        text = fmt.render(day)
        case = rng.random()
        if case < LOWER_CASE_SHARE:
            text = text.lower()
        elif case < LOWER_CASE_SHARE + UPPER_CASE_SHARE:
            text = text.upper()
        examples.append(Example(text, day.isoformat(), fmt.name))
    return examples


@dataclass(frozen=True)
class Reading:
    """What ``read_date`` found: the parts as written, which need not make a real date."""

    format: DateFormat
    year: int
    month: int
    day: int
    weekday: int | None  # 0 = Monday, or None when the format has no weekday


def read_date(text: str) -> Reading | None:
    """Read ``text`` as one of FORMATS (any letter case), or None if it matches none of them."""
    for fmt in FORMATS:
        match = fmt.regex.fullmatch(text.strip())
        if match:
            parts = {FIELDS[name].part: FIELDS[name].read(value) for name, value in match.groupdict().items()}
            return Reading(fmt, parts["year"], parts["month"], parts["day"], parts.get("weekday"))
    return None


def check_date(text: str) -> tuple[str | None, str | None]:
    """``(iso, None)`` if ``text`` is a real date in one of FORMATS, else ``(None, why not)``.

    The reason is plain words for the user, e.g. "“31 February 2015” is not a real date:
    February 2015 has 28 days".
    """
    reading = read_date(text)
    quoted = _quote(text)
    if reading is None:
        return None, f"{quoted} is not written in any of the date formats it was trained on"
    if not 1 <= reading.month <= 12:
        return None, f"{quoted} is not a real date: there is no month {reading.month}"
    days_in_month = calendar.monthrange(reading.year, reading.month)[1]
    if not 1 <= reading.day <= days_in_month:
        return None, f"{quoted} is not a real date: {EN_MONTHS[reading.month - 1]} {reading.year} has {days_in_month} days"
    day = dt.date(reading.year, reading.month, reading.day)
    if not FIRST_DATE <= day <= LAST_DATE:
        return None, f"it was trained on the years {FIRST_DATE.year} to {LAST_DATE.year} only"
    if reading.weekday is not None and reading.weekday != day.weekday():
        return None, f"{day.isoformat()} was a {EN_WEEKDAYS[day.weekday()]}, not a {EN_WEEKDAYS[reading.weekday]}"
    return day.isoformat(), None


def _quote(text: str, limit: int = 40) -> str:
    return f"“{text if len(text) <= limit else text[:limit] + '…'}”"


def valid_iso(text: str) -> bool:
    """True if ``text`` is a real date written as YYYY-MM-DD within the model's years."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        return FIRST_DATE <= dt.date.fromisoformat(text) <= LAST_DATE
    except ValueError:
        return False
