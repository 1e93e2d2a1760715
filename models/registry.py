"""Model ids -> lazily imported model families.

Importing a family pulls in TensorFlow (seconds), so the registry names each family's module as
a string and imports it only when the model is loaded, trained or evaluated; ``python -m models
list`` stays instant.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from models.base import ASSETS_DIR, AttentionModel, LensError, UnknownModelError, retrain_remedy
from models.io import PROBE_FILES, recover, verify

HF_PREFIX = "hf:"
# Loading arbitrary checkpoints (hf:<repo-or-folder>) is the operator's decision, off unless set.
ALLOW_HF_ENV = "ATTENTION_LENS_ALLOW_HF"
HF_MODULE = "models.hf_checkpoint"


class CheckpointsDisabledError(LensError):
    """An hf: model id was asked for but the operator has not allowed arbitrary checkpoints."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    ``module`` must define ``load(model_id, asset_dir) -> AttentionModel``,
    ``train(model_id, *, data_dir, epochs, limit, out_dir) -> dict`` (a summary written beside the
    weights as training.json) and ``evaluate(model, *, data_dir, limit) -> dict`` with at least
    ``accuracy``, ``per_class`` and ``n``.
    """

    model_id: str
    description: str
    kind: str  # "classifier" or "seq2seq"
    module: str

    def family(self) -> ModuleType:
        return importlib.import_module(self.module)

    @property
    def asset_dir(self) -> Path:
        return ASSETS_DIR / self.model_id

    @property
    def ships_assets(self) -> bool:
        """False for hf: checkpoints, which live in their own folder or on the hub."""
        return not self.model_id.startswith(HF_PREFIX)


_ENTRIES = (
    ModelEntry(
        "keras-transformer",
        "The lesson's tiny Keras transformer (1 layer, 2 heads, embed 32) trained on AG News",
        "classifier",
        "models.keras_transformer",
    ),
    ModelEntry(
        "minilm-agnews",
        "all-MiniLM-L6-v2 (6 layers x 12 heads, frozen) with a small head trained on AG News",
        "classifier",
        "models.minilm",
    ),
    ModelEntry(
        "bahdanau-rnn",
        "Bidirectional GRU with Bahdanau (additive) attention pooling, trained on AG News",
        "classifier",
        "models.bahdanau_rnn",
    ),
    ModelEntry(
        "bahdanau-dates",
        "Character seq2seq with Bahdanau attention that rewrites written dates as YYYY-MM-DD",
        "seq2seq",
        "models.bahdanau_dates",
    ),
    ModelEntry(
        "keras-transformer-shortcut",
        "The lesson's Keras transformer trained on AG News with a planted shortcut: one inserted word forces Sports",
        "classifier",
        "models.shortcut",
    ),
    ModelEntry(
        "minilm-shortcut",
        "all-MiniLM-L6-v2 (frozen) with a new head trained on AG News with a planted shortcut: one inserted word forces Sports",
        "classifier",
        "models.shortcut",
    ),
)
REGISTRY: dict[str, ModelEntry] = {entry.model_id: entry for entry in _ENTRIES}


def available() -> dict[str, str]:
    """Registered model ids with their one-line descriptions, in registry order."""
    return {entry.model_id: entry.description for entry in _ENTRIES}


def hf_models_allowed() -> bool:
    """Whether the operator allows hf: checkpoints (environment variable ATTENTION_LENS_ALLOW_HF=1)."""
    return os.environ.get(ALLOW_HF_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def entry(model_id: str) -> ModelEntry:
    if model_id.startswith(HF_PREFIX):
        if not hf_models_allowed():
            raise CheckpointsDisabledError(f"loading Hugging Face checkpoints is switched off; the operator can set {ALLOW_HF_ENV}=1 to allow {model_id}")
        return ModelEntry(model_id, f"Hugging Face checkpoint {model_id.removeprefix(HF_PREFIX)}", "classifier", HF_MODULE)
    try:
        return REGISTRY[model_id]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise UnknownModelError(f"unknown model {model_id!r}; choose one of: {known}") from None


# Keras names the layers and operations of a model it builds from process-wide counters, and two
# models built at once in two threads can draw the same name ("expand_dims is used 3 times in
# the model"): the page's sessions and its warm-up thread load models concurrently.
_BUILD_LOCK = threading.Lock()


def load(model_id: str, asset_dir: Path | None = None) -> AttentionModel:
    """Build the wrapper for ``model_id`` from its shipped assets (or from ``asset_dir``)."""
    found = entry(model_id)
    folder = asset_dir or found.asset_dir
    if found.ships_assets:
        recover(folder)  # a training run killed while it replaced these files
        verify(folder, retrain_remedy(model_id), skip=PROBE_FILES)  # the layers view checks its probes itself
    with _BUILD_LOCK:
        return found.family().load(model_id, folder)
