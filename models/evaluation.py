"""Accuracy of an AG News classifier on a labelled split (the CLI's ``evaluate``), in batches."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np

from models.data import Split

T = TypeVar("T")


class Classifier(Protocol):
    """What evaluation reads of a model: its id, its class names and batched probabilities."""

    @property
    def model_id(self) -> str: ...

    @property
    def labels(self) -> tuple[str, ...]: ...

    def predict_probs(self, texts: Sequence[str], batch_size: int = ...) -> np.ndarray: ...


def classification_report(probs: np.ndarray, gold: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy overall and per gold class; per-class accuracy is that class's recall."""
    predicted = probs.argmax(axis=1)
    per_class = {}
    for index, name in enumerate(labels):
        members = gold == index
        per_class[name] = round(float((predicted[members] == index).mean()), 6) if members.any() else None
    return {"accuracy": round(float((predicted == gold).mean()), 6), "per_class": per_class, "n": len(gold)}


def in_batches(model_id: str, texts: Sequence[str], predict: Callable[[list[str]], T], batch_size: int = 256) -> list[T]:
    """``predict`` on consecutive batches of ``texts``, reporting progress on stderr."""
    chunks = []
    for start in range(0, len(texts), batch_size):
        chunks.append(predict(list(texts[start : start + batch_size])))
        print(f"\revaluating {model_id}: {min(start + batch_size, len(texts))}/{len(texts)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return chunks


def evaluate_classifier(model: Classifier, split: Split, batch_size: int = 256) -> dict:
    """Predict every row of ``split`` in batches, reporting progress on stderr."""
    chunks = in_batches(model.model_id, split.texts, model.predict_probs, batch_size)
    return classification_report(np.concatenate(chunks), np.asarray(split.labels), model.labels)
