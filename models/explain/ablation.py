"""Switch attention off and watch the prediction: what did it actually depend on?

Heads are switched off per call through the model's head mask (1 keeps a head, 0 removes its
output; see ``models.hf_common.bert_style_encoder`` and the Keras families), never by changing
the shared model, so sessions running at the same time never see each other's ablations. The
Bahdanau RNN has one attention distribution and no heads: its ablation replaces the weights by
1/T over the words instead (Wiegreffe & Pinter 2019, "Attention is not not Explanation").

Heads are written "L:H" with 1-based layer and head (as on the page and the command line) and
handled as 0-based (layer, head) pairs in code.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from models.base import LensError
from models.contract import Prediction
from models.explain.runner import runner_for

_HEAD = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
Heads = frozenset[tuple[int, int]]


def supports_ablation(model) -> str | None:
    """None if heads (or the RNN's attention) of ``model`` can be switched off, else why not."""
    if not getattr(model, "labels", ()):
        return f"{model.model_id} generates text; switching attention off is shown for classifiers"
    if not hasattr(model, "predict_with_head_mask"):
        return f"{model.model_id} cannot switch its attention off per call"
    return model.head_mask_unsupported


def _check_supported(model) -> None:
    reason = supports_ablation(model)
    if reason:
        raise LensError(reason)


def parse_heads(spec: str, grid: tuple[int, int]) -> Heads:
    """0-based (layer, head) pairs from "L:H,L:H" (1-based); a LensError names a bad entry.

    An empty or blank ``spec`` is no head. ``grid`` is the model's (layers, heads).
    """
    layers, heads = grid
    found = set()
    for part in spec.split(","):
        if not part.strip():
            continue
        match = _HEAD.match(part)
        if not match:
            raise LensError(f"{part.strip()!r} is not a head: write LAYER:HEAD, e.g. 1:2 (several separated by commas)")
        layer, head = int(match.group(1)), int(match.group(2))
        if not (1 <= layer <= layers and 1 <= head <= heads):
            raise LensError(f"there is no head {layer}:{head}: this model has layers 1-{layers} with heads 1-{heads}")
        found.add((layer - 1, head - 1))
    return frozenset(found)


def format_heads(heads: Heads) -> str:
    """The "L:H,L:H" (1-based, sorted) spelling of 0-based pairs, as in the URL."""
    return ",".join(f"{layer + 1}:{head + 1}" for layer, head in sorted(heads))


def head_mask(grid: tuple[int, int], heads_off: Heads) -> np.ndarray:
    """float32 (layers, heads): 0 for the heads switched off, 1 elsewhere."""
    mask = np.ones(grid, dtype=np.float32)
    for layer, head in heads_off:
        if not (0 <= layer < grid[0] and 0 <= head < grid[1]):
            raise LensError(f"there is no head {layer + 1}:{head + 1}: this model has layers 1-{grid[0]} with heads 1-{grid[1]}")
        mask[layer, head] = 0.0
    return mask


def predict_with_heads_off(model, text: str, heads_off: Heads, *, uniform: bool = False) -> Prediction:
    """``model.predict(text)`` with the 0-based (layer, head) pairs ``heads_off`` switched off.

    For the RNN (``ablation_mode`` "uniform") pass ``uniform=True`` instead: its attention is
    replaced by 1/T over the words. With nothing switched off, the result equals ``predict``
    bit for bit. The prediction's attention is what each head computed (a removed head's
    pattern no longer reaches the output) and its notes say what was switched off.
    """
    _check_supported(model)
    grid = tuple(model.attention_grid)
    if model.ablation_mode == "uniform":
        if heads_off:
            raise LensError(f"{model.model_id} has one attention distribution, not heads: use uniform attention instead")
        mask = np.full(grid, 0.0 if uniform else 1.0, dtype=np.float32)
        note = "attention replaced by uniform weights over the words" if uniform else None
    else:
        if uniform:
            raise LensError(f"uniform attention is the ablation of the RNN; switch {model.model_id}'s heads off instead")
        mask = head_mask(grid, heads_off)
        note = f"heads switched off: {format_heads(heads_off)}" if heads_off else None
    prediction = model.predict_with_head_mask(text, mask)
    return dataclasses.replace(prediction, notes=(*prediction.notes, note)) if note else prediction


def single_head_effects(model, text: str) -> np.ndarray:
    """(layers, heads): p(ŷ) with that one head switched off minus p(ŷ) with every head on.

    ŷ is the class predicted with every head on. The original and all layers × heads variants
    run as one batch. For the RNN the one entry is the effect of uniform attention.
    """
    _check_supported(model)
    grid = tuple(model.attention_grid)
    row = model.explain_tokens(text)
    masks = [np.ones(grid, dtype=np.float32)]
    for layer in range(grid[0]):
        for head in range(grid[1]):
            masks.append(head_mask(grid, frozenset({(layer, head)})))
    probs = runner_for(model).probs([row.ids] * len(masks), masks)
    predicted = int(np.argmax(probs[0]))
    return (probs[1:, predicted] - probs[0, predicted]).reshape(grid).astype(np.float64)


def head_importance(model, text: str) -> np.ndarray:
    """Head importance of Michel, Levy & Neubig (2019), normalised per layer, (layers, heads).

    "Are Sixteen Heads Really Better than One?" (NeurIPS), eq. 2: I_h = |Σ_ij A^h_ij ∂L/∂A^h_ij|.
    Computed in the paper's other form, from one backward pass: a mask variable ξ_h multiplies
    each head's output, and ∂L/∂ξ_h at ξ = 1 equals Σ_ij A^h_ij ∂L/∂A^h_ij (a head's output is
    linear in its attention). L = −log p(ŷ) for the predicted class ŷ (one text has no label);
    as their code does, each layer's scores are divided by their L2 norm, which also cancels
    the 1/p(ŷ) between ∂L/∂ξ and the ∂p(ŷ)/∂ξ that is differentiated here.
    """
    _check_supported(model)
    if model.ablation_mode != "heads":
        raise LensError(f"{model.model_id} has one attention distribution: head importance compares the heads of a transformer")
    runner = runner_for(model)
    row = model.explain_tokens(text)
    predicted = int(np.argmax(runner.probs([row.ids])[0]))
    gradients = runner.gradients(runner.embed(row.ids)[np.newaxis], len(row), predicted, full=True)
    assert gradients.d_heads is not None  # _check_supported refused models that take no head mask
    return normalise_per_layer(np.abs(gradients.d_heads[0]))


def normalise_per_layer(importance: np.ndarray) -> np.ndarray:
    """Each layer's row divided by its L2 norm (rows of zeros stay zero)."""
    importance = np.asarray(importance, dtype=np.float64)
    norms = np.linalg.norm(importance, axis=-1, keepdims=True)
    return np.divide(importance, norms, out=np.zeros_like(importance), where=norms > 0)
