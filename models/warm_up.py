"""What the app's views make a model trace on first use, as steps to run ahead of the users.

TensorFlow traces a function once per input shape, and the first call at a shape pays for it:
on 2 cores about 0.5-2.5 s per MiniLM function (measured: predict 1.5 s, each probability batch
0.5-0.7 s, the gradient pass with attentions 2.5 s, integrated gradients' batch 2.0 s), so a
first attribution on a new headline waited about 20 s. ``views.compute`` runs these steps in a
background thread, one at a time, each only while no user's computation runs or waits.

The shapes come from the code that runs them, never from a copy of its arithmetic:

- ``predict``: one text per padded length it compiles for (``predict_lengths``);
- ablation: ``predict_with_head_mask`` on a text of each headline length, and
  ``single_head_effects``' batches of 1 + layers × heads rows with their head masks
  (``Runner.warm_probs``);
- attribution and faithfulness (``models.explain``): the gradient pass with attentions
  (also head importance), integrated gradients' forward scan of ``SCAN_CELLS`` + 1 rows and its
  ``DEFAULT_STEPS`` gradient rows (``Runner.warm``), and the probabilities of id rows at every
  batch size (leave-one-out and the faithfulness deletions send 1 to 32 rows of one bucket);
- value-aware attention (``models.value_aware``): one call, which runs eagerly (no trace) but
  pays TensorFlow's first-call costs.

Headlines (up to about 25 words, 32 word pieces) fall into the first two buckets, and their
perturbed rows (words left out or deleted) into the same or the one below: explanations are
warmed for every bucket up to ``HEADLINE_TOKENS``. Longer texts still trace on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from models.base import AttentionModel

# Explanations are warmed for every padded length up to this many tokens (models.hf_common.BUCKETS).
HEADLINE_TOKENS = 32
# A word every bundled vocabulary reads as one token, so a text of n of them has n (+ special) tokens.
FILLER_WORD = "news"


@dataclass(frozen=True)
class Step:
    """One traced function at one shape: ``run()`` traces it and runs it once."""

    what: str
    run: Callable[[], object]


def filler_text(tokens: int) -> str:
    """A text that reaches the padded length of ``tokens`` tokens (room left for [CLS] and [SEP])."""
    return " ".join([FILLER_WORD] * max(1, tokens - 4))


def predict_lengths(model: AttentionModel) -> tuple[int, ...]:
    """Token counts whose texts make ``predict`` compile every shape it runs at, shortest first.

    Hugging Face families compile one function per padded length (``models.hf_common.BUCKETS``);
    the Keras families pad every text to one fixed width, so one text covers them.
    """
    from models.hf_common import TransformerClassifier, buckets_up_to

    if isinstance(model, TransformerClassifier):
        return buckets_up_to(model.max_tokens)
    return (min(model.max_tokens, HEADLINE_TOKENS),)


def predict_steps(model: AttentionModel, lengths: tuple[int, ...] | None = None) -> list[Step]:
    """``predict`` at each of ``lengths`` (default: every padded length it compiles for)."""
    return [
        Step(f"{model.model_id}: predict at {length} tokens", partial(model.predict, filler_text(length)))
        for length in (predict_lengths(model) if lengths is None else lengths)
    ]


def explain_lengths(model: AttentionModel) -> tuple[int, ...]:
    """The padded lengths, up to ``HEADLINE_TOKENS``, that explanations of a headline run at."""
    from models.hf_common import buckets_up_to

    return tuple(length for length in buckets_up_to(model.max_tokens) if length <= HEADLINE_TOKENS)


def explain_steps(model: AttentionModel) -> list[Step]:
    """Every function attribution, faithfulness, ablation and value-aware attention trace for a headline.

    Empty for models none of them applies to (the date model).
    """
    from models.explain.ablation import supports_ablation
    from models.explain.attribution import DEFAULT_STEPS, SCAN_CELLS, supports_attribution
    from models.explain.runner import runner_for
    from models.value_aware import supports_value_aware, value_aware

    attributable = supports_attribution(model) is None
    ablatable = attributable and supports_ablation(model) is None
    runner = runner_for(model) if attributable else None
    name = model.model_id
    steps: list[Step] = []
    for length in explain_lengths(model):
        if runner is not None:
            steps += [
                Step(f"{name}: gradients with attentions at {length} tokens", partial(runner.warm, "full", length, 1)),
                Step(f"{name}: integrated-gradients scan at {length} tokens", partial(runner.warm, "probs", length, SCAN_CELLS + 1)),
                Step(f"{name}: integrated gradients at {length} tokens", partial(runner.warm, "gradients", length, DEFAULT_STEPS)),
                Step(f"{name}: probabilities of id rows at {length} tokens", partial(runner.warm_probs, length)),
            ]
        if ablatable:
            grid = tuple(model.attention_grid)  # type: ignore[attr-defined]
            head_mask = np.ones(grid, dtype=np.float32)
            steps.append(Step(f"{name}: predict with a head mask at {length} tokens", partial(model.predict_with_head_mask, filler_text(length), head_mask)))  # type: ignore[attr-defined]
            if runner is not None and model.ablation_mode == "heads":  # type: ignore[attr-defined]
                steps.append(Step(f"{name}: single-head effects at {length} tokens", partial(runner.warm_probs, length, 1 + grid[0] * grid[1])))
        if supports_value_aware(model) is None:
            steps.append(Step(f"{name}: value-aware attention at {length} tokens", partial(value_aware, model, filler_text(length))))
    return steps
