"""The words a figure shows around its data ("weight", "layer 2, head 3"), in the reader's language.

viz knows nothing of the page, so it cannot know the reader's language; a caller that
translates installs its gettext function with ``use_translation`` (the page installs
``views.i18n._``, which answers in each session's own language). Without one the words stay
English, as ``python -m views render`` prints them. The strings are marked with ``_`` so that
``python -m locales.extract`` finds them.
"""

from __future__ import annotations

from collections.abc import Callable

_translate: Callable[[str], str] = str


def use_translation(translate: Callable[[str], str]) -> Callable[[str], str]:
    """Translate figure words with ``translate`` from now on; returns the one it replaces."""
    global _translate
    previous, _translate = _translate, translate
    return previous


def _(message: str) -> str:
    return _translate(message)
