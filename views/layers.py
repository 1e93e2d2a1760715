"""Where in the depth the class appears: a linear probe's class probabilities after each layer (models/probes.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models import probes
from models.base import AttentionModel, LensError
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Style, Subject, Table
from views.widgets import class_name, matrix_downloads, show_figure
from viz.layers import probe_grid

KEY = "layers"
TITLE = N_("Layers (probes)")
CAPTION = N_(
    "After each layer, a linear probe trained on that layer's vectors reads the class off this text: it shows where the "
    "class can be read, not that the model reads it there (Hewitt & Liang 2019)."
)
NO_LAYERS = N_(
    "Linear probes are trained for the transformer classifiers shipped here (keras-transformer and minilm-agnews, with "
    "`python -m models train-probes ID`); {model} has none."
)
NOT_TRAINED = N_("{model} has no probes yet: run `python -m models train-probes {model}`.")
POOLING_NOTES = {
    "mean": N_("Each probe reads the mean of the layer's token vectors, as the model's head does."),
    "first": N_("Each probe reads the layer's first ([CLS]) vector, as the model's head does."),
}
ACCURACY_NOTE = N_("Probe accuracy: on {rows} validation rows held out of the training rows.")
SEEN_NOTE = N_("The model itself was trained on those rows, which makes that figure optimistic.")
TEST_NOTE = N_("In brackets: on the test set, which chose nothing.")
FIELDS: tuple[state.Field, ...] = ()
# Every layer's probe at once: the chosen layer and head change nothing here.
DEPENDS_ON: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayersData:
    """Each probe's class probabilities for the text, beside the model's own.

    ``probs`` is (layers + 1, classes), layer 0 the embeddings' output; ``accuracy`` each probe's
    validation accuracy, ``test_accuracy`` its test accuracy (reported only; empty when not
    measured); ``output`` the model's own probabilities for the same text.
    """

    labels: tuple[str, ...]
    probs: np.ndarray
    accuracy: np.ndarray
    test_accuracy: np.ndarray
    output: np.ndarray
    readout: str
    validation_rows: int
    validation_seen: bool  # the model itself was trained on the probes' validation rows

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(range(len(self.probs)))


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if not probes.can_probe(model):
        return False, _(NO_LAYERS).format(model=model.model_id)
    if not probes.shipped(model.model_id):
        return False, _(NOT_TRAINED).format(model=model.model_id)
    return True, ""


def data(subject: Subject, settings: Settings) -> LayersData:
    """Raises AssetError (a LensError) when the probes are missing, damaged or belong to other model files."""
    layer_probes = probes.load(subject.model_id)
    model = subject.model
    if not isinstance(model, probes.Probeable):
        raise LensError(f"{subject.model_id} has no layers to probe")
    # One forward pass gives every layer; the page caches the result for every session.
    (states,) = model.layer_representations([subject.text])
    return LayersData(
        labels=layer_probes.labels,
        probs=layer_probes.probs(states),
        accuracy=np.asarray(layer_probes.validation_accuracy),
        test_accuracy=np.asarray(layer_probes.test_accuracy, dtype=np.float64),
        output=np.asarray(subject.prediction.probs, dtype=np.float64),
        readout=layer_probes.readout,
        validation_rows=layer_probes.validation_rows,
        validation_seen=layer_probes.validation_seen,
    )


def figure(d: LayersData, settings: Settings, style: Style) -> go.Figure:
    return probe_grid(
        d.probs,
        d.accuracy,
        d.output,
        [class_name(label) for label in d.labels],
        test_accuracy=d.test_accuracy if d.test_accuracy.size else None,
        scheme=style.scheme,
        width_px=style.width_px,
        presenter=style.presenter,
    )


def record(d: LayersData) -> dict:
    """Each layer's entry (``layers``: its probe's ``probs`` and ``probe_accuracy``) and the model's own answer."""
    names = tuple(probes.layer_name(layer) for layer in d.layers)
    entries = [
        {"layer": layer, "name": name, "probs": d.probs[layer].tolist(), "probe_accuracy": float(d.accuracy[layer])}
        | ({"probe_test_accuracy": float(d.test_accuracy[layer])} if d.test_accuracy.size else {})
        for layer, name in zip(d.layers, names)
    ]
    return {
        "layers": entries,
        "probe_accuracy": "each probe's accuracy on the validation rows held out of the training rows (probe_test_accuracy: on the test set, reported only)",
        "validation_rows_seen_by_model": d.validation_seen,
        "output": {"probs": d.output.tolist(), "label": d.labels[int(np.argmax(d.output))]},
        "readout": d.readout,
    }


def rows(d: LayersData) -> dict[str, Table]:
    """One row per layer (the embeddings first): the probe's class probabilities; the meta is ``record(d)``."""
    names = tuple(probes.layer_name(layer) for layer in d.layers)
    return {"layers": Table(d.probs, names, d.labels, record(d))}


def render(ctx: ViewContext) -> None:
    try:
        with st.spinner(_("Running the text through every layer…")):
            d = ctx.data()
    except LensError as error:
        st.error(str(error))
        return
    show_figure(ctx, figure(d, ctx.settings, ctx.style), "layers")
    st.caption(notes(d))
    matrix_downloads(ctx, rows(d))


def notes(d: LayersData) -> str:
    """What the probes read and what their accuracy was measured on, in one line."""
    parts = [_(POOLING_NOTES[d.readout])] if d.readout in POOLING_NOTES else []
    parts.append(_(ACCURACY_NOTE).format(rows=d.validation_rows))
    if d.validation_seen:
        parts.append(_(SEEN_NOTE))
    if d.test_accuracy.size:
        parts.append(_(TEST_NOTE))
    return " ".join(parts)
