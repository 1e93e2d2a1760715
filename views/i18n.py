"""The page's language: gettext catalogs (``locales/<lang>/LC_MESSAGES/attention_lens.po``).

The ``.po`` files are compiled in memory with Babel when first used, so there is no build step
and no ``.mo`` file to forget; ``python -m locales.extract`` keeps them in step with the source.

Every piece of UI text goes through ``_``. Sessions run in threads of one process and each may
have its own language, so the active catalog is per thread (``use_language`` at the start of
each script run), never a process-wide ``gettext.install``.

Module-level constants (view titles and captions) are marked with ``N_`` so Babel extracts them,
and are translated where they are shown, with ``_(TITLE)``.
"""

from __future__ import annotations

import gettext
import io
import threading
from functools import cache
from pathlib import Path

from viz.words import use_translation

DOMAIN = "attention_lens"
LOCALES = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT_LANGUAGE = "en"

_active = threading.local()


@cache
def catalog(language: str) -> gettext.NullTranslations:
    """The catalog of ``language``, compiled once per process; a missing file means the source text."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return gettext.NullTranslations()
    with open(path, "rb") as handle:
        messages = read_po(handle, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, messages)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def use_language(language: str) -> None:
    """Translate this thread's (this session's) text into ``language`` from now on."""
    _active.catalog = catalog(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    # Figures speak it too: viz asks this module's ``_``, which answers in each thread's language.
    use_translation(_)


def _(message: str) -> str:
    return getattr(_active, "catalog", catalog(DEFAULT_LANGUAGE)).gettext(message)


def N_(message: str) -> str:  # gettext's conventional name for "mark now, translate where shown"
    return message
