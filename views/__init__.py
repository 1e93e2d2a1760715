"""The page's views: one module each, listed once in ``VIEWS`` in menu order.

A view module defines:

- ``KEY``: stable id, used in the URL (``view=<KEY>``);
- ``TITLE`` and ``CAPTION``: menu label and one line on how to read it (marked with ``N_`` and
  translated where shown);
- ``applies(prediction, model) -> tuple[bool, str]``: whether the view can show this model's
  prediction, and if not, the reason the page shows instead;
- ``render(ctx: views.context.ViewContext) -> None``: draws the view for one panel. Only the
  chosen view's ``render`` runs, and it reads derived arrays through ``ctx.cached`` so that a
  widget change recomputes nothing.

Optionally ``HOLDS_BACK_OUTPUT = True``: the page does not show the model's answer above the
view, because the view shows it itself when the time comes (the lesson's "predict, then reveal";
``views.widgets.show_output`` draws it).

Adding a view is one new module and one line below.
"""

from __future__ import annotations

from types import ModuleType

from views import ablation, attribution, compare, corpus, flow, headview, heatmap, layers, lesson, norms, overview, qkv, rollout, stats

VIEWS: tuple[ModuleType, ...] = (heatmap, overview, headview, stats, qkv, rollout, flow, norms, layers, compare, attribution, ablation, corpus, lesson)
BY_KEY = {view.KEY: view for view in VIEWS}
