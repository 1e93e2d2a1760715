"""Presenter mode (``present=1``): the page made readable from the back of a classroom.

Everything in the main column is drawn 1.4 times larger with CSS ``zoom``, figures included
(their fonts are set in pixels inside Plotly, so a larger root font alone would leave the tick
labels small); the sidebar starts collapsed so the main column gets the whole width; text is
black on white, with borders a projector does not wash out. Colours inside figures are left
alone, so the paper's grayscale stays as chosen.

The stylesheet is a fixed string: nothing a user types ever reaches it.
"""

from __future__ import annotations

import streamlit as st

STYLESHEET = """
<style>
[data-testid="stMainBlockContainer"] {
    zoom: 1.4;
    max-width: none;
    padding-top: 1rem;
}
[data-testid="stAppViewContainer"], [data-testid="stMain"], [data-testid="stHeader"] {
    background: #ffffff;
}
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label,
[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3,
[data-testid="stCaptionContainer"], [data-testid="stWidgetLabel"], [data-testid="stAlertContentInfo"],
[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentWarning"] {
    color: #000000 !important;
}
[data-testid="stMain"] p, [data-testid="stMain"] li {
    line-height: 1.45;
}
[data-testid="stCaptionContainer"] {
    font-size: 0.95rem;
    opacity: 1 !important;
}
[data-testid="stMain"] button, [data-testid="stMain"] textarea, [data-testid="stMain"] input,
[data-testid="stMain"] [data-baseweb="select"] > div {
    border: 2px solid #000000 !important;
    color: #000000;
}
[data-testid="stMain"] button[kind="primary"] {
    background: #000000;
    color: #ffffff;
}
[data-testid="stMain"] a {
    color: #0000b0;
    text-decoration: underline;
}
[data-testid="stMain"] :focus-visible {
    outline: 4px solid #000000 !important;
    outline-offset: 2px;
}
</style>
"""


def apply(present: bool) -> None:
    """Call before drawing the page: collapse the sidebar and enlarge the page when presenting."""
    st.set_page_config(initial_sidebar_state="collapsed" if present else "auto")
    if present:
        st.markdown(STYLESHEET, unsafe_allow_html=True)
