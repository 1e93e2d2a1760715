"""The guided lesson (``view=lesson&step=N``): predict, then reveal, one step at a time.

Each step (``views.lesson_steps``) puts its model, text, layer and head into the page state the
rest of the page uses, so the sidebar, the text field and the link all show it, and anyone can
change the text and keep exploring. The model's answer and the step's figure stay hidden until
"Reveal" (remembered per step for this session, not put in the link: a student who opens the
link should guess first too); then the step's view is drawn by that view's own ``render``.

The last step leads on to a short lab (``views.lesson_steps.LAB``), whose pages follow the
steps in the ``step`` field and are drawn the same way, headed "Lab, part N".

The lesson has no ``data``, ``figure`` or ``rows`` of its own: each step is drawn by another view,
so ``python -m views render`` does not offer it; its file for the class is the handout
(``views.handout``), which draws each step with its view's ``data`` and ``figure``.

Page state may only be changed before the widgets bound to it are drawn, so steps are set up
in button callbacks, and by ``prepare`` (called by the page before its widgets) when someone
arrives at the lesson from another view or from a link that names no text.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from models.base import AttentionModel, LensError
from models.contract import Prediction
from views import corpus, share, state
from views.context import ViewContext
from views.handout import Shown, build_handout
from views.i18n import N_, _
from views.lesson_steps import LAB, PAGES, STEPS, Step, lab_part
from views.widgets import escape_markdown, show_output

KEY = "lesson"
TITLE = N_("Lesson")
CAPTION = N_("A class, step by step. Read the question, let the class guess, then press Reveal; change the text at any time to explore.")
FIELDS: tuple[state.Field, ...] = ()
WHOLE_PAGE = True
HOLDS_BACK_OUTPUT = True

_IN_LESSON = "_lesson_in_lesson"  # whether the previous run showed the lesson (None: first run)
_REVEALED = "_lesson_revealed"  # the step numbers whose answer this session has revealed
_SHOWN = "_lesson_shown"  # step number -> Shown, what the step showed when revealed (for the handout)


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def step_number() -> int:
    """The current page, 1-based, clamped to the lesson and its lab (a link may ask for step 20)."""
    return min(max(1, state.get("step")), len(PAGES))


def _first_panel_key(name: str) -> str:
    """The lesson runs in the first panel: the key of ``name`` there, whether per panel or not."""
    field = state.field_by_name()[name]
    return field.key("" if field.per_panel else None)


def setup(number: int) -> None:
    """Put step ``number``'s settings into the page state; only before the page's widgets are drawn."""
    step = PAGES[number - 1]
    session = st.session_state
    values = dict(step=number, model=step.model, text=step.text, layer=step.layer, head=step.head, scheme=step.scheme)
    values |= dict(scale=step.scale, words=False, hide_special=False)
    # A view this installation lacks has no field to set (the ablation step without ablation).
    values |= {name: value for name, value in step.field_values.items() if name in state.field_by_name()}
    for name, value in values.items():
        session[_first_panel_key(name)] = value
    # One panel: the side-by-side switch (the sidebar's compare_on toggle) goes off with it.
    session[state.key("compare")] = ""
    session["compare_on"] = False


def prepare() -> None:
    """Call before the page draws its widgets: set the step up when someone arrives at the lesson.

    Arriving means switching to the lesson from another view, or opening a link without a text
    (``?view=lesson&step=3``). A link with a text carries the state its sender saw and is kept.
    """
    session = st.session_state
    was_in_lesson = session.get(_IN_LESSON)
    in_lesson = state.get("view") == KEY
    session[_IN_LESSON] = in_lesson
    if not in_lesson or was_in_lesson:
        return
    if was_in_lesson is None and "text" in st.query_params:
        return
    setup(step_number())


def _reveal(number: int, shown: bool) -> None:
    revealed = st.session_state.setdefault(_REVEALED, set())
    if shown:
        revealed.add(number)
    else:
        revealed.discard(number)


def _restart(number: int) -> None:
    setup(number)
    _reveal(number, False)


def is_revealed(number: int) -> bool:
    return number in st.session_state.get(_REVEALED, set())


def navigation(number: int) -> None:
    """Step indicator, then Previous / Next; PageUp and PageDown work too (a presenter's clicker sends them).

    The last step also offers the lab; in the lab, Previous goes back to the lesson's last step.
    """
    part = lab_part(number)
    if part:
        st.progress(part / len(LAB), text=_("Lab, part {part} of {total}").format(part=part, total=len(LAB)))
    else:
        st.progress(number / len(STEPS), text=_("Step {step} of {total}").format(step=number, total=len(STEPS)))
    with st.container(horizontal=True):
        st.button(
            _("Previous step"),
            key="lesson-previous",
            icon=":material/arrow_back:",
            disabled=number == 1,
            on_click=setup,
            args=(number - 1,),
            shortcut="PageUp",
        )
        st.button(
            _("Next step"),
            key="lesson-next",
            icon=":material/arrow_forward:",
            icon_position="right",
            disabled=number in (len(STEPS), len(PAGES)),
            on_click=setup,
            args=(number + 1,),
            shortcut="PageDown",
        )
        if number == len(STEPS):
            st.button(
                _("Lab: {title}").format(title=_(LAB[0].title)),
                key="lesson-lab",
                icon=":material/science:",
                on_click=setup,
                args=(len(STEPS) + 1,),
            )


def inner_view(step: Step):
    """The first of the step's views that this installation has, or None."""
    from views import BY_KEY  # views/__init__ imports this module

    return next((BY_KEY[key] for key in step.views if key in BY_KEY), None)


def show_step_view(step: Step, ctx: ViewContext) -> None:
    view = inner_view(step)
    if view is None:
        st.warning(
            _(
                "This step needs a view this installation does not have yet (switching heads off, or gradient attribution). "
                "Discuss the question with the class: the note above is what the experiment shows on this model."
            )
        )
        return
    if step.views[0] != view.KEY:
        st.info(_("The view this step was written for is not available here; it shows “{title}” instead.").format(title=_(view.TITLE)))
    st.caption(_(view.CAPTION))
    applies_here, reason = view.applies(ctx.shown, ctx.model)
    if applies_here:
        view.render(dataclasses.replace(ctx, view=view))
    else:
        st.info(reason)


def handout(language: str) -> None:
    with st.expander(_("Handout for the class"), icon=":material/description:"):
        st.caption(
            _("The whole lesson as one HTML file that opens without a network: each step's text, question, answer and figure, as revealed in this session.")
        )
        if st.button(_("Prepare the handout"), key="lesson-handout"):
            try:
                with st.spinner(_("Drawing every step's figure…")):
                    page = build_handout(st.session_state.get(_SHOWN, {}), language=language)
            except LensError as error:
                st.error(str(error))
                return
            st.download_button(
                _("Download the handout (HTML)"),
                page.encode("utf-8"),
                file_name=f"attention-lens-lesson-{language}.html",
                mime="text/html",
                key="lesson-handout-download",
                on_click="ignore",
            )


def render(ctx: ViewContext) -> None:
    number = step_number()
    step = PAGES[number - 1]
    navigation(number)
    part = lab_part(number)
    st.header(_("Lab, part {part}: {title}").format(part=part, title=_(step.title)) if part else f"{number}. {_(step.title)}")
    st.markdown(step.say(step.explanation))
    st.info(step.say(step.question), icon=":material/help:")
    if number == len(STEPS):
        # A question one headline cannot answer, before the link's large code: the corpus view answers it from a whole run.
        corpus.lesson_question(step.model, step.layer, step.head, is_revealed(number))
        share.show_share("lesson")
    if not is_revealed(number):
        st.button(_("Reveal"), key="lesson-reveal", type="primary", icon=":material/visibility:", on_click=_reveal, args=(number, True))
    else:
        with st.container(horizontal=True):
            st.button(_("Hide the answer"), key="lesson-hide", icon=":material/visibility_off:", on_click=_reveal, args=(number, False))
            st.button(_("Back to this step's example"), key="lesson-restart", icon=":material/restart_alt:", on_click=_restart, args=(number,))
        show_output(ctx.prediction, ctx.panel)
        if (ctx.model_id, ctx.text) != (step.model, step.text):
            st.caption(_("About the step's own example, “{text}”:").format(text=escape_markdown(step.text)))
        st.success(step.say(step.answer), icon=":material/lightbulb:")
        settings, style = ctx.settings, ctx.style
        st.session_state.setdefault(_SHOWN, {})[number] = Shown(
            ctx.model_id, ctx.text, settings.layer, settings.head, ctx.get("query"), style.scheme, settings.words, settings.hide_special, style.scale
        )
        show_step_view(step, ctx)
    handout(state.get("lang"))
