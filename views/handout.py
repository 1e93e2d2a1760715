"""The lesson as one HTML file for the class: every step's text, answer and figure, and the lab's, readable offline.

Each step's figure is drawn by the view the step names (``Step.figure``, a view KEY): that view's
``data`` (through ``views.compute.view_data``, so the page's cached result is reused) and its
``figure``, exactly as the page draws it, for what the step showed in this session: its own
example, or the text, layer, head, word and token settings the teacher changed it to before
revealing. Plotly's JavaScript is embedded once (``include_plotlyjs=True`` on the first figure)
and the overview's thumbnails are a PNG data URI, so the file opens with no network and no CDN.
All text is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import plotly.graph_objects as go

from models.contract import Prediction
from views import compute
from views.i18n import _
from views.lesson_steps import PAGES, Step, lab_part
from views.spec import Settings, Style, Subject
from views.widgets import class_name
from viz import probability_bars

STYLESHEET = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #000; line-height: 1.45; }
section { border-top: 2px solid #000; margin-top: 2rem; padding-top: 1rem; page-break-inside: avoid; }
.question { font-weight: bold; }
.answer { background: #f2f2f2; padding: 0.5rem 1rem; border-left: 4px solid #000; }
code { background: #f2f2f2; padding: 0 0.2rem; }
"""
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STANDALONE_TEMPLATE = "plotly_white"
# Drawn instead of the step's own view when that view does not apply to the model the teacher
# switched to (flow on a one-layer model): every model has a heatmap.
FALLBACK_VIEW = "heatmap"


@dataclass(frozen=True)
class Shown:
    """What a step showed: its own settings, or the ones the teacher changed them to.

    ``query`` is the shown token the flow looks from (1-based), as the page's ``query`` field.
    """

    model: str
    text: str
    layer: int
    head: int
    query: int
    scheme: str
    words: bool = False
    hide_special: bool = False
    scale: str = "auto"


def step_settings(step: Step) -> Shown:
    return Shown(step.model, step.text, step.layer, step.head, step.query, step.scheme, scale=step.scale)


def _clamp(value: int, limit: int) -> int:
    return min(max(1, value), limit)


def step_figure(step: Step, shown: Shown, prediction: Prediction) -> go.Figure:
    """The step's figure, drawn by the step's view (``step.figure``) with what the step showed.

    ``prediction`` is ``shown.model``'s prediction of ``shown.text``.
    """
    from views import BY_KEY  # views/__init__ imports the lesson, which imports this module

    model = compute.load_model(shown.model)
    view = BY_KEY[step.figure]
    if not view.applies(compute.shown_prediction(shown.model, shown.text, shown.words), model)[0]:
        view = BY_KEY[FALLBACK_VIEW]
    values = step.field_values | {"query": shown.query}
    settings = Settings.of(
        {field.name: values.get(field.name, field.default) for field in view.FIELDS},
        layer=_clamp(shown.layer, prediction.num_layers),
        head=_clamp(shown.head, prediction.num_heads),
        words=shown.words,
        hide_special=shown.hide_special,
    )
    d = compute.view_data(view, Subject(shown.model, model, shown.text, prediction), settings)
    return view.figure(d, settings, Style(scheme=shown.scheme, scale=shown.scale))


def _answer_line(prediction: Prediction) -> str:
    if prediction.is_seq2seq:
        return f"{html.escape(_('Output'))}: <code>{html.escape(prediction.output or '')}</code>"
    label = class_name(prediction.predicted_label or "")
    return html.escape(_("Prediction: {label} ({probability:.0%})").format(label=label, probability=float(prediction.probs.max())))


def _heading(number: int, step: Step) -> str:
    """``3. Title`` for a step of the lesson, ``Lab: Title`` for a page of the lab (as its button says)."""
    title = _(step.title)
    return html.escape(_("Lab: {title}").format(title=title) if lab_part(number) else f"{number}. {title}")


def _paragraph(text: str, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


def build_handout(shown: Mapping[int, Shown], *, language: str) -> str:
    """The whole lesson and its lab as one self-contained HTML page, in the active language.

    ``shown`` maps page numbers (1-based, the lab's pages after the lesson's steps, as the page
    counts them) to what they showed; pages not in it use their own settings. Raises
    ``models.base.LensError`` if a model cannot be loaded.
    """
    parts = []
    plotly_included = False
    for number, step in enumerate(PAGES, start=1):
        settings = shown.get(number, step_settings(step))
        prediction = compute.prediction(settings.model, settings.text)
        figures = [step_figure(step, settings, prediction)]
        if not prediction.is_seq2seq:
            figures.insert(0, probability_bars([class_name(label) for label in prediction.labels], prediction.probs))
        drawn = []
        for index, figure in enumerate(figures):
            # Streamlit makes its own theme the process-wide default; outside its page that theme
            # has no margins for the tick labels, so the handout uses Plotly's plain white one.
            figure.update_layout(template=STANDALONE_TEMPLATE)
            drawn.append(figure.to_html(full_html=False, include_plotlyjs=not plotly_included, config=PLOT_CONFIG, div_id=f"step-{number}-figure-{index}"))
            plotly_included = True
        parts.append(
            "\n".join(
                [
                    f'<section id="step-{number}">',
                    f"<h2>{_heading(number, step)}</h2>",
                    _paragraph(step.say(step.explanation)),
                    _paragraph(step.say(step.question), "question"),
                    f"<p>{html.escape(_('Model'))}: <code>{html.escape(settings.model)}</code> · {html.escape(_('Text'))}: "
                    f"<code>{html.escape(settings.text)}</code></p>",
                    f"<p>{_answer_line(prediction)}</p>",
                    *drawn,
                    _paragraph(step.say(step.answer), "answer"),
                    "</section>",
                ]
            )
        )
    title = _("Attention Lens: the lesson")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            f'<html lang="{html.escape(language)}">',
            '<head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{STYLESHEET}</style>",
            "</head><body>",
            f"<h1>{html.escape(title)}</h1>",
            _paragraph(_("The news classifiers read English text only; the date model reads English and German dates.")),
            *parts,
            "</body></html>",
        ]
    )
