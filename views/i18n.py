"""The page's language: gettext catalogs (``locales/<lang>/LC_MESSAGES/attention_lens.po``).

Every piece of UI text goes through ``_``. Sessions run in threads of one process and each may
have its own language, so the active catalog is per thread (``use_language`` at the start of
each script run), never a process-wide ``gettext.install``.

Module-level constants (view titles and captions) are marked with ``N_`` so Babel extracts them,
and are translated where they are shown, with ``_(TITLE)``.
"""

from __future__ import annotations

import gettext
import threading
from functools import cache
from pathlib import Path

DOMAIN = "attention_lens"
LOCALES = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT_LANGUAGE = "en"

_active = threading.local()


@cache
def catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language``; English (the source text) needs none."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALES, languages=[language], fallback=True)


def use_language(language: str) -> None:
    """Translate this thread's (this session's) text into ``language`` from now on."""
    _active.catalog = catalog(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def _(message: str) -> str:
    return getattr(_active, "catalog", catalog(DEFAULT_LANGUAGE)).gettext(message)


def N_(message: str) -> str:  # gettext's conventional name for "mark now, translate where shown"
    return message
