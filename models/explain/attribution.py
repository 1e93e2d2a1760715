"""Which input tokens a classifier's prediction depends on, by several methods side by side.

Attention weights say where a model looked, not what its prediction depends on (Jain & Wallace
2019, "Attention is not Explanation"; Wiegreffe & Pinter 2019). This module puts attention next
to attributions that are defined by the model's behaviour, so that ``models.explain.faithfulness``
can measure which of them the model follows:

- ``attention``: the attention row the classifier reads, last layer, averaged over heads;
- ``rollout``: that row of attention rollout (Abnar & Zuidema 2020, ``models.maths.rollout``);
- ``flow``: that row of attention flow (Abnar & Zuidema 2020, ``models.maths.flow``), where it
  is affordable (see ``_flow_unavailable``);
- ``attention_x_gradient``: Chefer, Gur & Wolf (2021), ``attention_x_gradient``;
- ``gradient_x_input``: gradient × input on the word embeddings, ``gradient_x_input``;
- ``integrated_gradients``: Sundararajan, Taly & Yan (2017), ``integrated_gradients``;
- ``occlusion``: leave one token (or word) out, ``occlusion``.

Every method explains the probability of one class (the predicted one unless another is picked),
so all scores are in probability units or, for the attention family, attention weights.

Contrast ("why this class and not that one?", as inseq and LIT offer): with a *foil* class the
gradient methods and occlusion explain F = log p(target) − log p(foil) instead. For a softmax
classifier this is exactly the difference of the two classes' logits (the normaliser cancels),
which is why it is the quantity chosen, and it is computable from probabilities alone (minilm-agnews
exposes no logits). The difference of probabilities p(target) − p(foil) was not chosen: it moves
with every other class through the shared normaliser, and it flattens where the model is sure.
Which methods are the difference of two single-class explanations of log p (tests/test_contrastive.py):

- gradient × input and occlusion: exactly, both are linear in the function explained;
- integrated gradients: linear too along the same path points; here the points are placed by a scan
  of F itself, so it equals the difference of the two single-class integrals up to the quadrature
  error, and its completeness is Σ IG = F(x) − F(x');
- attention × gradient: not, the positive part of ∇A ⊙ A and the product over layers are not linear;
  it is Chefer et al.'s relevance of the gradient of F;
- attention, rollout and flow do not depend on the class at all, so they have no contrast to show.
"Reads" depends on the model: BERT-style classifiers with a [CLS] head read the first row; the
Keras transformer and minilm-agnews average every token's output, so their row is the mean of
all rows (the issue asked for the first row; for a mean-pooled model that row is one token's
view among many, not what the classifier reads).

The pure functions take arrays and callbacks, so tests check them on tiny hand-built models;
``attribute`` runs them on a loaded model through its hooks (``models.explain.runner``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.base import LensError
from models.contract import Prediction
from models.explain.runner import LOG_FLOOR, runner_for
from models.maths.flow import attention_flow
from models.maths.rollout import attention_rollout
from models.maths.tokens import WORDS, Groups, merge_tokens, word_groups

METHODS = ("attention", "rollout", "flow", "attention_x_gradient", "gradient_x_input", "integrated_gradients", "occlusion")
# Weights computed without any class: the same for every class, so no answer to "why not the foil?".
CLASS_FREE = ("attention", "rollout", "flow")
DEFAULT_STEPS = 32
# How integrated gradients places its steps (see ``path_points``): a forward scan of the path
# at SCAN_CELLS + 1 points, a density with this uniform share, tabulated on this many points.
SCAN_CELLS = 16
UNIFORM_SHARE = 0.4
DENSITY_GRID = 4097
MIN_STEPS, MAX_STEPS = 32, 256
# From three layers on, attention flow needs one maximum flow per (input token, query row):
# measured about 0.09 s per query row at 64 tokens through 6 layers, so every row (for a
# mean-pooled classifier) or long texts are too slow to show live.
FLOW_MAX_TOKENS = 128


@dataclass(frozen=True)
class Attributions:
    """Scores of every method for one text and one class, over tokens or words ("units").

    Attributes:
        model: registry id.
        labels / probs: the classes and the model's probabilities for the whole text.
        target: index of the explained class.
        foil: index of the class it is contrasted with, or None. With a foil every score, the
            completeness gap and ``baseline_probability`` are of F = log p(target) − log p(foil)
            (see the module's docstring), and attention, rollout and flow are unavailable.
        tokens / special: the units shown (tokens, or words with ``words``) and which are
            special tokens ([CLS], [SEP]).
        groups: for each unit, the positions of the model's tokens it covers.
        token_ids: the model's ids of the whole text (what faithfulness deletes from).
        scores: method name -> float array (len(tokens),), in ``METHODS`` order; read-only.
        completeness_gap: |Σ integrated gradients − (f(x) − f(baseline))| / |f(x) − f(baseline)|
            (nan when the two probabilities are equal).
        baseline: what integrated gradients starts from; baseline_probability: f(baseline), the
            target's probability there or, with a foil, F there.
        steps: integrated-gradients steps. seconds: method -> wall time it took (a pass
            shared by several methods counts for each). unavailable: method -> why not shown.
    """

    model: str
    labels: tuple[str, ...]
    probs: np.ndarray
    target: int
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    groups: Groups
    token_ids: tuple[int, ...]
    scores: dict[str, np.ndarray]
    completeness_gap: float
    baseline: str
    baseline_probability: float
    steps: int
    words: bool
    seconds: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    dropped_tokens: int = 0
    foil: int | None = None

    def __post_init__(self) -> None:
        units = len(self.tokens)
        if len(self.special) != units or len(self.groups) != units:
            raise ValueError("tokens, special flags and groups must have one entry per unit")
        for name, values in self.scores.items():
            if name not in METHODS or np.shape(values) != (units,):
                raise ValueError(f"scores[{name!r}] must be a known method with one value per unit")
            values.setflags(write=False)

    @property
    def target_label(self) -> str:
        return self.labels[self.target]

    @property
    def foil_label(self) -> str | None:
        return None if self.foil is None else self.labels[self.foil]

    def explained(self, probs: np.ndarray) -> np.ndarray:
        """What these scores explain, for rows of class probabilities (``explained_values``)."""
        return explained_values(probs, self.target, self.foil)


def supports_attribution(model) -> str | None:
    """None if ``attribute`` can explain ``model``, else a one-line reason."""
    if not getattr(model, "labels", ()):
        return f"{model.model_id} generates text; attributions explain a classifier's class probabilities"
    if not all(hasattr(model, hook) for hook in ("explain_tokens", "embed", "forward_embedded")):
        return f"{model.model_id} does not expose its input embeddings, which attributions need"
    return None


def explained_values(probs: np.ndarray, target: int, foil: int | None = None) -> np.ndarray:
    """The explained quantity for rows of class probabilities (rows, classes): p(target), or with a
    foil log p(target) − log p(foil), in float64."""
    probs = np.asarray(probs, dtype=np.float64)
    if foil is None:
        return probs[:, target]
    # Floored as the gradient passes floor it (runner.LOG_FLOOR): float32 softmax can reach 0.
    return np.log(np.maximum(probs[:, target], LOG_FLOOR)) - np.log(np.maximum(probs[:, foil], LOG_FLOOR))


def gradient_x_input(inputs: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Σ_e x_te · ∂f/∂x_te per token: gradient × input on the embeddings (length, width).

    Shrikumar, Greenside, Shcherbina & Kundaje (2016), "Not Just a Black Box: Learning Important
    Features Through Propagating Activation Differences"; for text, Denil, Demiraj & de Freitas
    (2014). Summing over the embedding dimension gives one signed score per token.
    """
    return (np.asarray(inputs, dtype=np.float64) * np.asarray(gradients, dtype=np.float64)).sum(axis=-1)


def path_points(steps: int, scan: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions α in (0, 1) along the straight path and their quadrature weights.

    Without ``scan``: the midpoint rule, α_k = (k − ½)/m, each weighing 1/m (Captum's
    "riemann_middle"). With ``scan``, f at the edges of K equal cells (α = 0, 1/K, ..., 1): the
    midpoint rule after the change of variables α = Φ⁻¹(u), ∫₀¹ g(α) dα = ∫₀¹ g(Φ⁻¹(u)) / φ(Φ⁻¹(u)) du,
    with the density φ = ``UNIFORM_SHARE`` + the rest spread as Gaussians (σ = one cell) on the
    cells' centres, in proportion to |f(α_{j+1}) − f(α_j)|. Steps gather where f changes.

    Why: along the path from [PAD] to a text a confident classifier's probability often switches
    within a twentieth of the path (measured on minilm-agnews: 0.01 to 0.98 between α = 0.34 and
    0.41), and 32 even steps left completeness gaps up to 16-35%. Handing the extra steps to the
    cells piecewise did better on such switches but worse on gentle ones (its density jumps at
    the cells' edges, which costs the midpoint rule its accuracy on smooth integrands); a smooth
    density kept gaps below 0.3% on both, simulated on 13 minilm-agnews paths and on logistic
    switches. Gauss–Legendre nodes (Captum's default) are sparse mid-path and did worse. Every
    choice computes the same integral: this is integrated gradients with a smaller quadrature
    error, not a different method.
    """
    u = (np.arange(steps, dtype=np.float64) + 0.5) / steps
    change = None if scan is None else np.abs(np.diff(np.asarray(scan, dtype=np.float64)))
    if change is None or change.sum() == 0:
        return u, np.full(steps, 1.0 / steps)
    cells = len(change)
    fine = np.linspace(0.0, 1.0, DENSITY_GRID)
    bumps = np.exp(-0.5 * ((fine[:, np.newaxis] - (np.arange(cells) + 0.5) / cells) * cells) ** 2)
    bumps /= np.trapezoid(bumps, fine, axis=0)  # each truncated Gaussian integrates to 1 on [0, 1]
    density = UNIFORM_SHARE + (1.0 - UNIFORM_SHARE) * bumps @ (change / change.sum())
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2.0 * np.diff(fine))])
    alphas = np.interp(u, cumulative / cumulative[-1], fine)
    return alphas, 1.0 / (steps * np.interp(alphas, fine, density / cumulative[-1]))


def integrated_gradients(
    inputs: np.ndarray, baseline: np.ndarray, path_gradients: Callable[[np.ndarray], np.ndarray], steps: int, scan: np.ndarray | None = None
) -> np.ndarray:
    """Integrated gradients per token (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks", eq. 1).

    IG_t = Σ_e (x − x')_te · ∫₀¹ ∂f/∂x_te (x' + α (x − x')) dα, the integral computed with
    ``path_points(steps, scan)``. ``path_gradients(points)`` maps (steps, length, width)
    embeddings to the gradients of f there. Completeness (their Proposition 1): the scores sum to
    f(x) − f(x') up to the integration error.
    """
    inputs, baseline = np.asarray(inputs, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    alphas, weights = path_points(steps, scan)
    points = baseline + alphas[:, np.newaxis, np.newaxis] * (inputs - baseline)
    gradients = np.asarray(path_gradients(points.astype(np.float32)), dtype=np.float64)
    return ((inputs - baseline) * np.tensordot(weights, gradients, axes=1)).sum(axis=-1)


def completeness_gap(total: float, difference: float) -> float:
    """|Σ attributions − (f(x) − f(x'))| relative to |f(x) − f(x')| (nan if that is 0)."""
    return abs(total - difference) / abs(difference) if difference != 0 else float("nan")


def attention_x_gradient(attentions: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Relevance matrix R (T, T) of Chefer, Gur & Wolf (2021), eqs. 5-6 for self-attention.

    "Generic Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder
    Transformers" (ICCV): start from R = I, and for each layer l in order
    Ā_l = mean_h (∇A_l ⊙ A_l)⁺ and R ← R + Ā_l R. ``attentions`` and ``gradients`` are
    (layers, heads, T, T); row i of R is how much each input token is relevant to token i.
    """
    attentions, gradients = np.asarray(attentions, dtype=np.float64), np.asarray(gradients, dtype=np.float64)
    relevance = np.eye(attentions.shape[-1])
    for layer_attention, layer_gradient in zip(attentions, gradients):
        averaged = np.maximum(layer_gradient * layer_attention, 0.0).mean(axis=0)
        relevance = relevance + averaged @ relevance
    return relevance


def without_units(ids: Sequence[int], groups: Groups, removed: Sequence[int]) -> list[int]:
    """``ids`` with the tokens of the units ``removed`` deleted (the rest keep their order)."""
    gone = {position for unit in removed for position in groups[unit]}
    return [token for position, token in enumerate(ids) if position not in gone]


def occlusion(
    ids: Sequence[int], groups: Groups, special: Sequence[bool], target: int, probs: Callable[[list[list[int]]], np.ndarray], foil: int | None = None
) -> np.ndarray:
    """Leave-one-out: f(x) − f(x without unit u), for every ordinary unit u, with f = p(target) or,
    given a foil, log p(target) − log p(foil) (``explained_values``).

    Removing a unit deletes its tokens (Li, Monroe & Jurafsky 2016, "Understanding Neural
    Networks through Representation Erasure"); special tokens are never removed and score 0.
    ``probs(rows)`` returns class probabilities for id rows; the whole text and every
    leave-one-out row go to it in one call, so a model can run them as one batch.
    """
    ordinary = [unit for unit, is_special in enumerate(special) if not is_special]
    rows = [list(ids)] + [without_units(ids, groups, [unit]) for unit in ordinary]
    values = explained_values(np.asarray(probs(rows)), target, foil)
    scores = np.zeros(len(groups))
    scores[ordinary] = values[0] - values[1:]
    return scores


def sum_groups(values: np.ndarray, groups: Groups) -> np.ndarray:
    """Token scores summed within each group (word)."""
    values = np.asarray(values, dtype=np.float64)
    return np.array([values[list(group)].sum() for group in groups])


def _flow_unavailable(prediction: Prediction, length: int) -> str | None:
    if prediction.num_layers <= 2:
        return None  # closed forms, no maximum flow needed
    if prediction.readout == "mean":
        return "this classifier averages every token, and flow into every token takes one maximum flow per pair of tokens: too slow to show live"
    if length > FLOW_MAX_TOKENS:
        return f"attention flow is shown for texts of up to {FLOW_MAX_TOKENS} tokens (one maximum flow per token)"
    return None


def readout_flow(prediction: Prediction) -> np.ndarray:
    """Attention flow into the row(s) the classifier reads, averaged as its readout averages them."""
    # Flow into every query row costs one maximum flow per pair: only the rows read are computed.
    rows = [0] if prediction.readout == "first" else list(range(len(prediction.target_tokens)))
    return attention_flow(prediction.attentions, rows).mean(axis=0)


def _read(prediction: Prediction, matrix: np.ndarray) -> np.ndarray:
    """The row of ``matrix`` (queries, T) the classifier reads, in float64 as every score is."""
    return prediction.readout_row(np.asarray(matrix, dtype=np.float64))


class _Work:
    """One text's shared intermediate results, computed on first use by the methods that need them."""

    def __init__(self, model, row, target: int, steps: int, prediction, predict_seconds: float, foil: int | None = None):
        self.model, self.runner, self.row, self.target, self.steps, self.foil = model, runner_for(model), row, target, steps, foil
        self.prediction, self.predict_seconds = prediction, predict_seconds
        self.seconds: dict[str, float] = {}
        self.unavailable: dict[str, str] = {}
        self.gap = self.f_baseline = float("nan")
        self._full = None
        self._full_seconds = 0.0

    def timed(self, name: str, compute: Callable[[], np.ndarray], shared: float = 0.0) -> np.ndarray:
        clock = time.perf_counter()
        values = compute()
        self.seconds[name] = shared + time.perf_counter() - clock
        return values

    def class_free(self, name: str) -> bool:
        """True (and the reason recorded) when ``name`` cannot contrast two classes."""
        if self.foil is not None and name in CLASS_FREE:
            self.unavailable[name] = "attention weights are the same whichever class is explained, so they cannot say why one class and not another"
            return True
        return False

    def attention(self) -> np.ndarray | None:
        if self.class_free("attention"):
            return None
        return self.timed("attention", lambda: _read(self.prediction, self.prediction.attentions[-1].mean(axis=0)), self.predict_seconds)

    def rollout(self) -> np.ndarray | None:
        if self.class_free("rollout"):
            return None
        if not self.prediction.self_attention:
            self.unavailable["rollout"] = "the model has one attention layer of one query, nothing to compose"
            return None
        return self.timed("rollout", lambda: _read(self.prediction, attention_rollout(self.prediction.attentions)[-1]), self.predict_seconds)

    def flow(self) -> np.ndarray | None:
        if self.class_free("flow"):
            return None
        reason = (
            "the model has one attention layer of one query, nothing to compose"
            if not self.prediction.self_attention
            else _flow_unavailable(self.prediction, len(self.row))
        )
        if reason:
            self.unavailable["flow"] = reason
            return None
        return self.timed("flow", lambda: readout_flow(self.prediction), self.predict_seconds)

    def _full_pass(self):
        """One forward and backward pass at x, for gradient × input and attention × gradient."""
        if self._full is None:
            clock = time.perf_counter()
            self._full = self.runner.gradients(self.runner.embed(self.row.ids)[np.newaxis], len(self.row), self.target, full=True, foil=self.foil)
            self._full_seconds = time.perf_counter() - clock
        return self._full

    def gradient_x_input(self) -> np.ndarray:
        full = self._full_pass()
        return self.timed("gradient_x_input", lambda: gradient_x_input(full.embeds[0], full.d_embeds[0]), self._full_seconds)

    def attention_x_gradient(self) -> np.ndarray | None:
        if not self.prediction.self_attention:
            self.unavailable["attention_x_gradient"] = "attention × gradient propagates relevance through self-attention layers"
            return None
        full = self._full_pass()

        def relevance() -> np.ndarray:
            # ∇ log p = ∇p / p: Chefer et al. differentiate the class score before the softmax, and
            # log p is that score up to a shift shared by all classes (minilm-agnews has no logits).
            # A contrast's gradient is already of log-probabilities.
            scale = 1.0 if self.foil is not None else max(float(full.probs[0, self.target]), 1e-12)
            matrix = attention_x_gradient(full.attentions[0], full.d_attentions[0] / scale)
            # R starts as I: each token's own 1 says nothing about the others (and under a mean
            # readout it is a constant 1/T), so what is shown is the relevance attention adds.
            return _read(self.prediction, matrix - np.eye(len(self.row)))

        return self.timed("attention_x_gradient", relevance, self._full_seconds)

    def integrated_gradients(self) -> np.ndarray:
        def compute() -> np.ndarray:
            # A forward scan of the path (its ends are f(x') and f(x)) places the steps, then one
            # batched backward pass over them.
            length, runner = len(self.row), self.runner
            inputs = runner.embed(self.row.ids)
            baseline = baseline_embeddings(self.model, runner, self.row.ids, self.row.special, inputs)
            edges = np.linspace(0.0, 1.0, SCAN_CELLS + 1)[:, np.newaxis, np.newaxis]
            scan = explained_values(runner.embedded_probs(baseline + edges * (inputs - baseline), length), self.target, self.foil)
            scores = integrated_gradients(
                inputs, baseline, lambda points: runner.gradients(points, length, self.target, foil=self.foil).d_embeds, self.steps, scan
            )
            self.f_baseline = float(scan[0])
            self.gap = completeness_gap(float(scores.sum()), float(scan[-1]) - self.f_baseline)
            return scores

        return self.timed("integrated_gradients", compute)


def attribute(
    model,
    text: str,
    *,
    target: int | None = None,
    foil: int | None = None,
    steps: int = DEFAULT_STEPS,
    words: bool = False,
    methods: Sequence[str] | None = None,
) -> Attributions:
    """Every applicable method's scores for ``text`` and class ``target`` (default: the predicted one).

    With ``foil`` (another class) the scores explain log p(target) − log p(foil) instead: "why
    ``target`` and not ``foil``?" (see the module's docstring).

    ``words`` sums token scores within words (``models.maths.tokens.word_groups`` with the
    model's ``subword_scheme``); occlusion then removes whole words. ``methods`` limits the work
    to some of ``METHODS`` (the page shows the fast ones first); ``merge`` joins such parts.
    Without integrated gradients, ``completeness_gap`` and ``baseline_probability`` are nan.
    """
    reason = supports_attribution(model)
    if reason:
        raise LensError(reason)
    if isinstance(steps, bool) or not isinstance(steps, int) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise LensError(f"integrated gradients needs {MIN_STEPS} to {MAX_STEPS} steps, got {steps!r}")
    wanted = METHODS if methods is None else tuple(methods)
    unknown = sorted(set(wanted) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown attribution methods {unknown}; choose from {METHODS}")
    clock = time.perf_counter()
    prediction = model.predict(text)
    predict_seconds = time.perf_counter() - clock
    row = model.explain_tokens(text)
    if target is None:
        target = int(np.argmax(prediction.probs))
    target = _class_index(model, target)
    if foil is not None:
        foil = _class_index(model, foil)
        if foil == target:
            raise LensError(f"the foil must be another class than the one explained ({model.labels[target]})")
    groups = word_groups(row.tokens, row.special, model.subword_scheme) if words else tuple((i,) for i in range(len(row)))
    units, special = merge_tokens(row.tokens, row.special, groups, model.subword_scheme if words else WORDS)
    work = _Work(model, row, target, steps, prediction, predict_seconds, foil)
    scores: dict[str, np.ndarray] = {}
    for name in (name for name in METHODS if name in wanted):
        if name == "occlusion":
            scores[name] = work.timed(name, lambda: occlusion(row.ids, groups, special, target, work.runner.probs, foil))
            continue
        token_scores = getattr(work, name)()
        if token_scores is not None:
            scores[name] = sum_groups(token_scores, groups) if words else token_scores
    return Attributions(
        model=model.model_id,
        labels=tuple(model.labels),
        probs=prediction.probs,
        target=target,
        tokens=units,
        special=special,
        groups=groups,
        token_ids=tuple(row.ids),
        scores={name: np.asarray(values, dtype=np.float64) for name, values in scores.items()},
        completeness_gap=work.gap,
        baseline=model.baseline_description,
        baseline_probability=work.f_baseline,
        steps=steps,
        words=words,
        seconds=work.seconds,
        unavailable=work.unavailable,
        dropped_tokens=row.dropped,
        foil=foil,
    )


def _class_index(model, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < len(model.labels):
        raise LensError(f"the class must be one of 0..{len(model.labels) - 1} ({', '.join(model.labels)}), got {value!r}")
    return int(value)


def merge(parts: Sequence[Attributions]) -> Attributions:
    """One record from several ``attribute`` calls on one text, class (and foil) and unit choice.

    Scores and times are united in ``METHODS`` order; the integrated-gradients figures come from
    the part that computed them.
    """
    first = parts[0]
    for part in parts[1:]:
        if (part.model, part.token_ids, part.groups, part.target, part.foil) != (first.model, first.token_ids, first.groups, first.target, first.foil):
            raise ValueError("only attributions of one model, text, class, foil and unit choice can be merged")
    scores = {name: part.scores[name] for name in METHODS for part in parts if name in part.scores}
    with_ig = next((part for part in parts if "integrated_gradients" in part.scores), first)
    return dataclasses.replace(
        first,
        scores=scores,
        seconds={name: seconds for part in parts for name, seconds in part.seconds.items()},
        unavailable={name: why for part in parts for name, why in part.unavailable.items()},
        completeness_gap=with_ig.completeness_gap,
        baseline_probability=with_ig.baseline_probability,
        steps=with_ig.steps,
    )


def baseline_embeddings(model, runner, ids: Sequence[int], special: Sequence[bool], inputs: np.ndarray) -> np.ndarray:
    """The integrated-gradients baseline x' (length, width) the model's family states.

    Zero vectors for word-level models (``baseline_id`` None); otherwise the embedding of
    ``baseline_id`` ([PAD]) at every ordinary token, with special tokens kept as they are.
    """
    if model.baseline_id is None:
        return np.zeros_like(inputs)
    baseline = np.repeat(runner.embed([model.baseline_id]), len(ids), axis=0)
    kept = np.asarray(special, dtype=bool)
    baseline[kept] = inputs[kept]
    return baseline
