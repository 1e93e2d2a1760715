"""Accuracy of an AG News classifier on a labelled split (the CLI's ``evaluate``)."""

from __future__ import annotations

import sys

import numpy as np

from models.base import AttentionModel
from models.data import Split


def classification_report(probs: np.ndarray, gold: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy overall and per gold class; per-class accuracy is that class's recall."""
    predicted = probs.argmax(axis=1)
    per_class = {}
    for index, name in enumerate(labels):
        members = gold == index
        per_class[name] = round(float((predicted[members] == index).mean()), 6) if members.any() else None
    return {"accuracy": round(float((predicted == gold).mean()), 6), "per_class": per_class, "n": int(len(gold))}


def evaluate_classifier(model: AttentionModel, split: Split, batch_size: int = 256) -> dict:
    """Predict every row of ``split`` in batches, reporting progress on stderr."""
    chunks = []
    for start in range(0, len(split), batch_size):
        chunks.append(model.predict_probs(list(split.texts[start : start + batch_size])))
        print(f"\revaluating {model.model_id}: {min(start + batch_size, len(split))}/{len(split)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return classification_report(np.concatenate(chunks), np.asarray(split.labels), model.labels)
