"""The page's stylesheet and the widths it lays figures out for; presenter mode (``present=1``).

Every page gets a compact top: Streamlit's default padding above the title (6rem) and beside the
main column (5rem) would push the answer and the figure below a laptop's first screen.

Presenter mode makes the page readable from the back of a classroom. Page text is enlarged by
the root font size (Streamlit sizes text, widgets and spacing in rem), figures by
``viz.present.for_projector`` (Plotly sets its type in pixels), both ``PAGE_SCALE`` times; never
by CSS ``zoom``, which draws a figure wider than the column Plotly measured, so its right part
fell off the page. The sidebar starts collapsed so the main column gets the whole width; text is
black on white, with borders a projector does not wash out. Colours inside figures are left
alone, so the paper's grayscale stays as chosen.

The stylesheets are fixed strings: nothing a user types ever reaches them.
"""

from __future__ import annotations

import streamlit as st

from viz.present import PROJECTOR_SCALE

PAGE_SCALE = PROJECTOR_SCALE
# The screens the page is laid out for (the server never learns the browser's width): a
# 1366-px laptop with the sidebar open, and a 1920-px projector in presenter mode, sidebar
# collapsed. Figures stretch to whatever column they get; these widths decide how many token
# labels an axis has room for, so a wider screen shows them with room to spare.
LAPTOP_PX = 1366
PROJECTOR_PX = 1920
SIDEBAR_PX = 300
ROOT_FONT_PX = 16
# The main column's side padding and the gap between st.columns ("small"), in rem, as below.
SIDE_PADDING_REM = 1.5
COLUMN_GAP_REM = 1.0

PAGE_STYLESHEET = """
<style>
/* The header is a bar across the page's top that would hide the title now standing under it. */
[data-testid="stHeader"] {
    background: transparent;
}
[data-testid="stMainBlockContainer"] {
    padding: 2.5rem 1.5rem 4rem 1.5rem;
    max-width: none;
}
[data-testid="stMain"] h1 {
    font-size: 1.75rem;
    padding: 0 0 0.25rem 0;
}
[data-testid="stMain"] h2 {
    font-size: 1.5rem;
}
[data-testid="stMain"] h3 {
    font-size: 1.25rem;
    padding: 0.25rem 0 0 0;
}
</style>
"""

PRESENTER_STYLESHEET = """
<style>
html {
    font-size: 140%;
}
[data-testid="stAppViewContainer"], [data-testid="stMain"] {
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
    """Call before drawing the page: its stylesheet; when presenting, collapse the sidebar and enlarge the page."""
    st.set_page_config(initial_sidebar_state="collapsed" if present else "auto")
    # st.html with nothing but a stylesheet takes no room on the page (st.markdown would take a row).
    st.html(PAGE_STYLESHEET + (PRESENTER_STYLESHEET if present else ""))


def column_px(present: bool, columns: int = 1) -> int:
    """The width of one of ``columns`` side-by-side panels on the screen the page is laid out for.

    1,018 px for one panel on the laptop, 501 px side by side; on the projector 1,852 and 915 px
    (its padding and gap are in rem, so they grow with the presenter's larger root font).
    """
    rem = ROOT_FONT_PX * (PAGE_SCALE if present else 1.0)
    main = (PROJECTOR_PX if present else LAPTOP_PX - SIDEBAR_PX) - 2 * SIDE_PADDING_REM * rem
    return int((main - (columns - 1) * COLUMN_GAP_REM * rem) / columns)
