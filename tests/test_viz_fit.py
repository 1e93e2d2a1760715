"""Figures fit the column they are drawn in: labels thinned for its width, projector type by font, never by zoom.

Pure tests of the width-driven thinning (``viz.labels``) and the projector scaling
(``viz.present``) with hand-worked numbers; the page passes each panel's width and presenter
mode to them (AppTest); rendered figures keep their labels apart (kaleido); and in a real
browser every chart is as wide as its column at the laptop's and the projector's sizes, with
the first figure on the laptop's first screen.
"""

from __future__ import annotations

import math
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from tests.helpers.page import figures, heatmap_of, open_page
from views.presenter import column_px
from viz import Panel, alignment_heatmap, heatmap_panels, probability_bars
from viz.labels import SLANTED_EM, STACKED_EM, TICK_FONT_PX, TokenAxis, ordinal, spread, text_px, wrap
from viz.present import PLOT_SCALE, PROJECTOR_SCALE, for_projector
from viz.stats import stat_heatmaps
from viz.strip import token_strips

WORDS = [f"token{i:02d}" for i in range(60)]
HEADLINE = "UN Security Council calls for ceasefire as fighting spreads in the region"


def uniform(n: int) -> np.ndarray:
    return np.full((n, n), 1 / n)


def test_label_widths_follow_the_letters():
    # Source Sans: f, i, r narrow (0.3 em), the other letters of "ceasefire" 0.55 em, at 12 px.
    assert text_px("ceasefire") == pytest.approx((6 * 0.55 + 3 * 0.3) * 12)
    assert text_px("WM") == pytest.approx(2 * 0.85 * 12)  # wide letters
    assert text_px("A1", font_px=10) == pytest.approx(2 * 0.62 * 10)  # capitals and digits
    assert text_px("[CLS]") == pytest.approx((0.3 + 3 * 0.62 + 0.3) * 12)


def test_spread_labels_every_cell_that_fits_and_thins_past_that():
    # 40 labels up to 33 px wide over 400 px: 10 px apart. Upright, a label needs 33 + 4 = 37 px
    # (every 4th); slanted at -60°, 1.45 × 12 = 17.4 px (every 2nd): slanted wins.
    assert spread(40, 400, label_px=33) == (2, -60)
    # 12 words up to 59 px wide over 829 px: 69 px each, more than the 63 px an upright label needs.
    assert spread(12, 829, label_px=59) == (1, 0)
    # The same words over 500 px (41.7 px each) slant, all of them still labelled.
    assert spread(12, 500, label_px=59) == (1, -60)
    # Characters (the date model) stand upright.
    assert spread(12, 300, label_px=text_px("3")) == (1, 0)
    # Rows need a line each (1.15 × 12 = 13.8 px): 100 rows over 1,000 px get every 2nd label.
    assert spread(100, 1000, label_px=33, stacked=True) == (2, 0)
    # The projector's type (16.8 px) needs 24.4 px per slanted label: every 3rd over the same 400 px.
    assert spread(40, 400, label_px=33 * 1.4, font_px=TICK_FONT_PX * PROJECTOR_SCALE) == (3, -60)


def test_ordinals():
    shown = {k: ordinal(k) for k in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112)}
    assert shown == {
        1: "1st",
        2: "2nd",
        3: "3rd",
        4: "4th",
        11: "11th",
        12: "12th",
        13: "13th",
        21: "21st",
        22: "22nd",
        23: "23rd",
        101: "101st",
        111: "111th",
        112: "112th",
    }


def test_token_axis_keeps_every_kth_label_and_says_so():
    tokens = [f"w{i}" for i in range(10)]
    axis = TokenAxis.of(tokens)
    # 6 px per token; "w9" is 17.6 px wide, so upright labels would need every 4th, slanted ones (17.4 px) every 3rd.
    ticks = axis.ticks(60)
    assert (ticks.step, ticks.angle) == (3, -60)
    assert ticks.texts == ["w0", "w3", "w6", "w9"]
    assert ticks.values == ["1 · w0", "4 · w3", "7 · w6", "10 · w9"]
    assert axis.title("source (keys)", ticks) == "source (keys), every 3rd token labelled"
    assert axis.title("source (keys)", axis.ticks(1000)) == "source (keys)"
    blocks = TokenAxis.of([f"w{i}" for i in range(100)], blocks=10)
    assert blocks.title("source", blocks.ticks(60)) == "source, every 3rd block labelled"


def test_a_narrower_figure_labels_fewer_tokens_and_the_axis_title_says_which():
    steps = {}
    for width in (column_px(False), column_px(False, 2)):
        figure = alignment_heatmap(uniform(60), WORDS, WORDS, width_px=width)
        x = figure.layout.xaxis
        step = WORDS.index(x.ticktext[1])
        steps[width] = step
        assert list(x.ticktext) == WORDS[::step] and len(x.tickvals) == math.ceil(60 / step)
        assert x.title.text == f"source (keys), every {ordinal(step)} token labelled"
        assert len(figure.data[0].x) == 60  # every cell stays; hover still names each token
    assert 1 < steps[column_px(False)] < steps[column_px(False, 2)]


def test_presenter_mode_thins_as_a_figure_narrower_by_the_projector_scale():
    projector = alignment_heatmap(uniform(60), WORDS, WORDS, width_px=1400, presenter=True)
    screen = alignment_heatmap(uniform(60), WORDS, WORDS, width_px=1400 / PROJECTOR_SCALE)
    assert list(projector.layout.xaxis.ticktext) == list(screen.layout.xaxis.ticktext)
    assert len(projector.layout.xaxis.ticktext) < len(alignment_heatmap(uniform(60), WORDS, WORDS, width_px=1400).layout.xaxis.ticktext)


def test_a_headline_keeps_every_label_upright_in_one_panel():
    words = HEADLINE.lower().split()
    figure = alignment_heatmap(uniform(len(words)), words, words, width_px=column_px(False))
    assert list(figure.layout.xaxis.ticktext) == words and list(figure.layout.yaxis.ticktext) == words
    assert figure.layout.xaxis.tickangle == 0
    assert figure.layout.xaxis.title.text == "source (keys)"
    assert figure.layout.width is None  # the page's column decides the width


def test_strips_and_stat_maps_fit_their_width():
    rows = {"Integrated gradients (Sundararajan et al. 2017)": np.linspace(-1, 1, 60), "Leave one out": np.linspace(1, -1, 60)}
    wide, narrow = (token_strips(rows, WORDS, width_px=width) for width in (column_px(True), column_px(False, 2)))
    assert len(narrow.layout.xaxis.ticktext) < len(wide.layout.xaxis.ticktext)
    step = WORDS.index(narrow.layout.xaxis.ticktext[1])
    assert narrow.layout.xaxis.title.text == f"tokens, every {ordinal(step)} token labelled"
    # Half a laptop: the citation goes on a second line; the rows keep their names (hover).
    assert list(narrow.layout.yaxis.ticktext) == ["Integrated gradients<br>(Sundararajan et al. 2017)", "Leave one out"]
    assert list(wide.layout.yaxis.ticktext) == list(narrow.data[0].y) == list(rows)
    # MiniLM's 6 layers × 12 heads: a map needs 12 × 18 + 100 = 316 px, so 1, 3 and 4 maps per row.
    stats = {name: np.zeros((6, 12)) for name in "abcdefg"}

    def maps_per_row(width: float, presenter: bool = False) -> int:
        figure = stat_heatmaps(stats, {}, width_px=width, presenter=presenter)
        return len({tuple(figure.layout[name].domain) for name in figure.layout if name.startswith("xaxis")})

    assert (maps_per_row(column_px(False, 2)), maps_per_row(column_px(False)), maps_per_row(column_px(True), True)) == (1, 3, 4)


def test_a_title_wider_than_its_map_is_broken_into_lines_that_fit():
    # At 16 px: "Eingeschaltete Köpfe" 154 px, with " (zum" 195 px; "(zum Umschalten" 127 px, with
    # " klicken)" 190 px. Over 180 px each of those longer lines breaks.
    assert wrap("Eingeschaltete Köpfe (zum Umschalten klicken)", 180, 16) == ["Eingeschaltete Köpfe", "(zum Umschalten", "klicken)"]
    assert wrap("Eingeschaltete Köpfe (zum Umschalten klicken)", 200, 16) == ["Eingeschaltete Köpfe (zum", "Umschalten klicken)"]
    assert wrap("short", 10, 16) == ["short"]  # a word wider than the line keeps a line of its own
    # The German ablation grid on a laptop: three maps side by side, each title within its map.
    maps = {key: np.zeros((2, 4)) for key in ("on", "drop", "importance")}
    titles = {
        "on": "Eingeschaltete Köpfe (zum Umschalten klicken)",
        "drop": "Rückgang von p(vorhergesagt), wenn allein abgeschaltet",
        "importance": "Wichtigkeit (Michel et al. 2019)",
    }
    for presenter in (False, True):
        figure = stat_heatmaps(maps, titles, width_px=column_px(presenter), presenter=presenter)
        drawn = for_projector(figure) if presenter else figure
        font_px = 16 * (PROJECTOR_SCALE if presenter else 1)
        for annotation, xaxis in zip(drawn.layout.annotations, ("xaxis", "xaxis2", "xaxis3"), strict=True):
            low, high = drawn.layout[xaxis].domain
            map_px = (high - low) * (column_px(presenter) - drawn.layout.margin.l - drawn.layout.margin.r)
            assert max(text_px(line, font_px) for line in annotation.text.split("<br>")) <= map_px
        assert len(drawn.layout.annotations[0].text.split("<br>")) >= 2


def test_panels_too_narrow_side_by_side_are_stacked():
    words = HEADLINE.lower().split()
    panels = [Panel(name, uniform(len(words)), words, words) for name in ("weights", "norm", "all heads", "ALTI")]

    def columns(width: int) -> int:
        figure = heatmap_panels(panels, width_px=width)
        return len({tuple(figure.layout[name].domain) for name in figure.layout if name.startswith("xaxis")})

    # One panel on a laptop: (998 px / 4) less 30 + 7 × 9 px of row labels leaves each 156 px, above MIN_PANEL_PX (140).
    assert columns(column_px(False)) == 4
    # Half a laptop: 27 px each side by side, so one above the other.
    assert columns(column_px(False, 2)) == 1


def test_for_projector_scales_type_margins_and_height_and_leaves_the_width_alone():
    figure = alignment_heatmap(np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"], ["c", "d"], title="Layer 1, head 1")
    before = figure.to_plotly_json()
    big = for_projector(figure)
    assert figure.to_plotly_json() == before  # pure: the screen's figure is untouched
    layout, bar = big.layout, big.data[0].colorbar
    # Sizes the figure left to the theme are scaled from its defaults: 12 px text, 14 px titles, 16 px title.
    assert layout.font.size == pytest.approx(12 * 1.4)
    assert layout.xaxis.tickfont.size == pytest.approx(16.8) and layout.yaxis.tickfont.size == pytest.approx(16.8)
    assert layout.xaxis.title.font.size == pytest.approx(14 * 1.4)
    assert layout.title.font.size == pytest.approx(16 * 1.4)
    assert bar.tickfont.size == pytest.approx(16.8) and bar.thickness == pytest.approx(12 * 1.4)
    assert bar.len == pytest.approx(figure.data[0].colorbar.len * PLOT_SCALE)
    old = figure.layout.margin
    assert (layout.margin.l, layout.margin.t, layout.margin.b) == pytest.approx((old.l * 1.4, old.t * 1.4, old.b * 1.4))
    plot_px = figure.layout.height - old.t - old.b
    assert layout.height == round(plot_px * 1.2 + (old.t + old.b) * 1.4)
    assert layout.width is None
    # A size the figure set itself (make_subplots' 16 px subplot titles) grows by the same factor.
    maps = for_projector(stat_heatmaps({"entropy": np.zeros((2, 2))}, {"entropy": "Entropy"}))
    assert maps.layout.annotations[0].font.size == pytest.approx(16 * 1.4)


def test_probability_bars_are_compact_with_every_percentage():
    figure = probability_bars(["World", "Sports", "Business", "Sci/Tech"], np.array([0.997, 0.001, 0.0, 0.002]))
    assert figure.layout.height == 8 + 24 * 4  # about a third of the old 204 px
    assert list(figure.data[0].text) == ["99.7%", "0.1%", "0.0%", "0.2%"]
    assert figure.data[0].cliponaxis is False  # "100.0%" is drawn in the margin, not cut off
    assert figure.layout.xaxis.visible is False and figure.layout.width is None


# The page (AppTest): each panel's width and presenter mode reach the figure.


def page_ticks(figure: dict) -> list[str]:
    return figure["layout"]["xaxis"]["ticktext"]


@pytest.mark.slow
def test_the_page_thins_labels_for_its_panel_width_and_presenter_mode():
    from views import compute

    text = " ".join([HEADLINE] * 4)
    prediction = compute.prediction("keras-transformer", text)
    tokens, n = list(prediction.source_tokens), len(prediction.source_tokens)

    def expected(width: int, presenter: bool = False) -> list[str]:
        return list(alignment_heatmap(uniform(n), tokens, tokens, width_px=width, presenter=presenter).layout.xaxis.ticktext)

    one = heatmap_of(open_page(model="keras-transformer", text=text))
    assert page_ticks(one) == expected(column_px(False))
    both = [f for f in figures(open_page(model="keras-transformer", compare="bahdanau-rnn", text=text)) if f["layout"].get("title")]
    assert page_ticks(both[0]) == expected(column_px(False, 2))
    assert len(page_ticks(both[0])) < len(page_ticks(one)) < n
    presenting = open_page(model="keras-transformer", text=text, present="1")
    drawn = heatmap_of(presenting)
    assert page_ticks(drawn) == expected(column_px(True), presenter=True)
    assert drawn["layout"]["font"]["size"] == pytest.approx(16.8) and drawn["layout"]["xaxis"]["tickfont"]["size"] == pytest.approx(16.8)
    bars = next(f for f in figures(presenting) if f["data"][0]["type"] == "bar")
    assert bars["layout"]["font"]["size"] == pytest.approx(16.8)
    assert all("width" not in figure["layout"] for figure in (one, *both, drawn, bars))


# Rendered (kaleido): the labels kept stand apart on the figure as drawn at the width it was made for.


def tick_positions(svg: str, axis: str) -> list[float]:
    """Where each tick label of ``axis`` ("x" or "y") stands, in the order drawn."""
    found = re.findall(rf'class="{axis}tick"><text[^>]*transform="translate\(([-\d.]+),([-\d.]+)\)', svg)
    return [float(x if axis == "x" else y) for x, y in found]


@pytest.mark.slow  # starts Chromium
@pytest.mark.parametrize("width", [column_px(False), column_px(False, 2)])
def test_rendered_labels_never_crowd_each_other(width):
    from viz.export import figure_svg

    figure = alignment_heatmap(uniform(60), WORDS, WORDS, width_px=width)
    assert figure.layout.xaxis.tickangle == -60
    drawn = go.Figure(figure).update_layout(width=width)  # kaleido has no column to stretch to
    svg = figure_svg(drawn).decode("utf-8")
    columns, rows = tick_positions(svg, "x"), tick_positions(svg, "y")
    assert len(columns) == len(figure.layout.xaxis.tickvals) and len(rows) == len(figure.layout.yaxis.tickvals)
    assert min(np.diff(columns)) >= SLANTED_EM * TICK_FONT_PX
    assert min(np.diff(rows)) >= STACKED_EM * TICK_FONT_PX


# The real page in a real browser.

LAYOUTS = {
    "laptop": ({"width": 1366, "height": 768}, {"model": "keras-transformer"}),
    "laptop, side by side": ({"width": 1366, "height": 768}, {"model": "minilm-agnews", "compare": "keras-transformer"}),
    "projector": ({"width": 1920, "height": 1080}, {"model": "keras-transformer", "present": "1"}),
    "projector, side by side": ({"width": 1920, "height": 1080}, {"model": "minilm-agnews", "compare": "keras-transformer", "present": "1"}),
}
CHARTS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map(chart => {
    const box = chart.getBoundingClientRect(), svg = chart.querySelector('.main-svg').getBoundingClientRect();
    const plot = chart.querySelector('.nsewdrag');
    return {box: box.width, svg: svg.width, top: box.top, plotBottom: plot ? plot.getBoundingClientRect().bottom : null, bars: !!chart.querySelector('.barlayer .point')};
})"""


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_chart_is_as_wide_as_its_column_and_the_heatmap_starts_on_the_first_screen(browser_session, layout):
    from tests.helpers.browser import open_page as open_in_browser

    viewport, query = LAYOUTS[layout]
    page = browser_session.new_page()
    try:
        page.set_viewport_size(viewport)
        open_in_browser(browser_session, page, text=HEADLINE, **query)
        charts = page.evaluate(CHARTS)
        assert len(charts) == (4 if "side by side" in layout else 2)
        for chart in charts:
            assert chart["svg"] <= chart["box"] + 0.5, chart  # CSS zoom drew them 1.4 times as wide
        heatmaps = [chart for chart in charts if not chart["bars"]]
        presenting = "projector" in layout
        root_px = page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
        assert root_px == pytest.approx(16 * (PROJECTOR_SCALE if presenting else 1))
        assert page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=\"stMainBlockContainer\"]')).zoom") == "1"
        assert all(heatmap["top"] < viewport["height"] for heatmap in heatmaps)
        if layout == "projector":  # a headline's whole heatmap under the text box and the prediction
            assert heatmaps[0]["plotBottom"] <= viewport["height"]
    finally:
        page.close()
