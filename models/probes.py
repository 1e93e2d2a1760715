"""Linear probes: at which depth of a transformer classifier its classes can be read off linearly.

A probe is a multinomial logistic regression trained on one layer's representation of the
training texts (Alain & Bengio 2016, "Understanding intermediate layers using linear classifier
probes"). Here each layer's token vectors are pooled as the model's own head pools them (the
mean over the real tokens for both shipped transformers, ``Prediction.readout``), the embedding
layer's output counting as layer 0. A probe's accuracy says how much class information a linear
map can find at that depth, not that the model uses it there (Hewitt & Liang 2019, "Designing
and Interpreting Probes with Control Tasks"): the view says so under its figure.

Training (``python -m models train-probes ID``): features of the available AG News training rows
are computed once with the model's ``layer_representations``; for each layer, one probe per
regularisation strength ``C`` is fitted on the seeded 10% validation split's remaining rows
(``models.data.train_validation_split``, as every trainer here splits) and the ``C`` with the
best validation accuracy is kept. The test set is scored once for the report and never chooses
anything. The shipped probe is the one fitted on the training part, so its reported validation
accuracy is that of the very weights the view uses. ``probes.npz`` (weights) and ``probes.json``
(what each probe scored, and on which model files) are written as one set with their SHA-256 in
the model's ``checksums.json``; a load checks both, and that the model's files are still those
the probes were trained on.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from models.base import AssetError, AttentionModel, LensError, retrain_remedy
from models.data import Split
from models.io import CHECKSUMS, PROBE_FILES, atomic_write_files, read_json, recover, sha256, write_json
from models.provenance import git_state

PROBES, REPORT = PROBE_FILES
# Regularisation strengths tried per layer (scikit-learn's C: larger means weaker), on features
# standardised with the training part's mean and deviation.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
MAX_ITERATIONS = 1000
PATIENCE = 2  # larger Cs in a row that do not beat the best before the rest of the grid is skipped
VALIDATION_FRACTION = 0.1
# Code whose changes would change the probes, for the report's "uncommitted changes".
SOURCES = ("models/probes.py", "models/keras_transformer.py", "models/minilm.py", "models/hf_common.py", "models/word_classifier.py")


@runtime_checkable
class Probeable(Protocol):
    """A model that can hand each text's representation after every layer, pooled as its head pools."""

    model_id: str
    labels: tuple[str, ...]

    def layer_representations(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(texts, layers + 1, width), the embeddings' output first."""
        ...


def remedy(model_id: str) -> str:
    return f"run `python -m models train-probes {model_id}` to recreate them"


def can_probe(model: AttentionModel) -> bool:
    return isinstance(model, Probeable)


def asset_dir(model_id: str) -> Path | None:
    """Where ``model_id``'s probes live: its asset folder, or None for a model that ships none (hf:)."""
    from models import registry

    if model_id.startswith(registry.HF_PREFIX) or model_id not in registry.REGISTRY:
        return None
    return registry.REGISTRY[model_id].asset_dir


def shipped(model_id: str) -> bool:
    """Whether probes were trained for ``model_id`` (the files themselves are checked when loaded)."""
    folder = asset_dir(model_id)
    return folder is not None and (folder / REPORT).is_file()


# ---------------------------------------------------------------------------------------------
# One probe


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so that large logits cannot overflow."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return probs


@dataclass(frozen=True)
class Probe:
    """softmax(W x + b) on a layer's raw pooled vector x: ``weights`` (classes, width), ``bias`` (classes,)."""

    weights: np.ndarray
    bias: np.ndarray
    iterations: int = 0
    converged: bool = True

    def probs(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of (..., width) vectors: (..., classes), each row summing to 1."""
        return softmax(np.asarray(x, dtype=np.float64) @ self.weights.T.astype(np.float64) + self.bias)

    def accuracy(self, x: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
        return float(np.mean(np.argmax(self.probs(x), axis=-1) == np.asarray(labels)))


def fit(x: np.ndarray, labels: Sequence[int] | np.ndarray, classes: int, C: float, max_iterations: int = MAX_ITERATIONS) -> Probe:
    """Multinomial logistic regression with an L2 penalty, by L-BFGS.

    Minimises C·Σᵢ −log softmax(W zᵢ + b)[yᵢ] + ½‖W‖², scikit-learn's ``LogisticRegression(C=C)``
    objective (bias unpenalised), on z, the features standardised with their own mean and
    deviation so that one C means the same for every layer's scale. The weights are returned for
    the raw features: W/σ and b − (W/σ)·μ. The objective is divided by C·n for the optimiser,
    which leaves its minimum where it is.
    """
    return next(fit_path(x, labels, classes, (C,), max_iterations))


def fit_path(x: np.ndarray, labels: Sequence[int] | np.ndarray, classes: int, grid: Sequence[float], max_iterations: int = MAX_ITERATIONS) -> Iterator[Probe]:
    """``fit`` for every C of ``grid`` in turn, each optimisation started where the previous one ended.

    The objective is convex, so the start changes only how many steps L-BFGS takes; from the
    solution for a nearby C it takes far fewer than from zero. A generator: a caller that has
    seen enough stops before the weakly regularised fits, which take the most steps.
    """
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels, dtype=np.intp)
    rows, width = x.shape
    mean = x.mean(axis=0)
    deviation = x.std(axis=0)
    deviation = np.where(deviation > 0, deviation, 1.0)
    z = (x - mean) / deviation
    onehot = np.eye(classes)[y]
    theta = np.zeros(classes * (width + 1))
    for C in grid:
        scale = 1.0 / (C * rows)

        def objective(theta: np.ndarray, scale: float = scale) -> tuple[float, np.ndarray]:
            w, b = theta[: classes * width].reshape(classes, width), theta[classes * width :]
            logits = z @ w.T + b
            log_probs = logits - logsumexp(logits, axis=1, keepdims=True)
            loss = -np.sum(onehot * log_probs) / rows + scale * 0.5 * np.sum(w * w)
            error = (np.exp(log_probs) - onehot) / rows
            return float(loss), np.concatenate([(error.T @ z + scale * w).ravel(), error.sum(axis=0)])

        result = minimize(objective, theta, jac=True, method="L-BFGS-B", options={"maxiter": max_iterations})
        theta = result.x
        w, b = theta[: classes * width].reshape(classes, width), theta[classes * width :]
        raw = w / deviation
        # Stored as float32, and scored as stored: a probe's reported accuracy is that of the shipped weights.
        yield Probe(weights=raw.astype(np.float32), bias=(b - raw @ mean).astype(np.float32), iterations=int(result.nit), converged=bool(result.success))


# ---------------------------------------------------------------------------------------------
# A model's probes


@dataclass(frozen=True)
class LayerProbes:
    """One probe per layer of one model (layer 0 is the embeddings' output), as shipped.

    ``weights`` (layers + 1, classes, width) and ``bias`` (layers + 1, classes) are float32;
    ``validation_accuracy`` is each probe's accuracy on the held-out training rows.
    """

    model_id: str
    labels: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray
    validation_accuracy: tuple[float, ...]
    C: tuple[float, ...]
    readout: str
    validation_rows: int
    validation_seen: bool = False  # the model itself was trained on the validation rows (keras-transformer refits on all)
    test_accuracy: tuple[float, ...] = ()  # reported only (empty when the training run scored no test rows)

    def __post_init__(self) -> None:
        layers, classes, _ = self.weights.shape
        if (
            self.bias.shape != (layers, classes)
            or len(self.validation_accuracy) != layers
            or len(self.test_accuracy) not in (0, layers)
            or classes != len(self.labels)
        ):
            raise ValueError(f"probes of {self.model_id} do not fit together: weights {self.weights.shape}, bias {self.bias.shape}, {len(self.labels)} labels")

    @property
    def layers(self) -> int:
        """How many probes: the model's layers plus the embeddings."""
        return int(self.weights.shape[0])

    def probe(self, layer: int) -> Probe:
        return Probe(self.weights[layer], self.bias[layer])

    def probs(self, states: np.ndarray) -> np.ndarray:
        """(layers + 1, classes): each layer's probe on that layer's pooled vector of one text (states: (layers + 1, width))."""
        states = np.asarray(states)
        if states.shape != (self.layers, self.weights.shape[2]):
            raise LensError(
                f"the probes of {self.model_id} read {self.layers} layers of width {self.weights.shape[2]}, the model gave {states.shape}; {remedy(self.model_id)}"
            )
        return np.stack([self.probe(layer).probs(states[layer]) for layer in range(self.layers)])


def model_files(sums: Mapping[str, str]) -> dict[str, str]:
    """The SHA-256 of the model's own files among a folder's ``checksums.json`` (all but the probes)."""
    return {name: digest for name, digest in sorted(sums.items()) if name not in PROBE_FILES}


def load(model_id: str, folder: Path | None = None) -> LayerProbes:
    """``model_id``'s probes from its asset folder (or ``folder``), checked; cached per folder."""
    folder = folder or asset_dir(model_id)
    if folder is None:
        raise LensError(f"{model_id} ships no probes; {remedy(model_id)}")
    return _load(model_id, Path(folder).resolve())


@functools.lru_cache(maxsize=8)
def _load(model_id: str, folder: Path) -> LayerProbes:
    fix = remedy(model_id)
    recover(folder)
    sums = read_json(folder / CHECKSUMS, fix)
    for name in PROBE_FILES:
        path = folder / name
        if not path.is_file():
            raise AssetError(path, "is missing", fix)
        if name not in sums:
            raise AssetError(path, f"has no SHA-256 in {CHECKSUMS}", fix)
        if sha256(path) != sums[name]:
            raise AssetError(path, f"is damaged or was replaced: its SHA-256 differs from the one recorded in {CHECKSUMS} when it was written", fix)
    report = read_json(folder / REPORT, fix)
    current = model_files(sums)
    if report.get("model_files") != current:
        changed = sorted(name for name in set(current) | set(report.get("model_files", {})) if current.get(name) != report.get("model_files", {}).get(name))
        raise AssetError(folder / REPORT, f"belongs to other model files than these ({', '.join(changed)} changed since the probes were trained)", fix)
    try:
        with np.load(folder / PROBES, allow_pickle=False) as stored:
            weights, bias = stored["weights"], stored["bias"]
        layers = report["layers"]
        return LayerProbes(
            model_id=model_id,
            labels=tuple(report["labels"]),
            weights=weights,
            bias=bias,
            validation_accuracy=tuple(float(layer["validation_accuracy"]) for layer in layers),
            C=tuple(float(layer["C"]) for layer in layers),
            readout=str(report["readout"]),
            validation_rows=int(report["validation_rows"]),
            validation_seen=bool(report["validation_rows_seen_by_model"]),
            test_accuracy=tuple(float(layer["test_accuracy"]) for layer in layers) if all("test_accuracy" in layer for layer in layers) else (),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AssetError(folder / PROBES, f"does not fit {REPORT} ({exc.__class__.__name__}: {exc})", fix) from None


# ---------------------------------------------------------------------------------------------
# Training


def layer_name(layer: int) -> str:
    return "embeddings" if layer == 0 else f"layer {layer}"


def choose(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, classes: int, grid: Sequence[float] = C_GRID
) -> tuple[Probe, float, dict[float, float]]:
    """The probe with the best validation accuracy along ``grid`` (the smaller C on a tie), its C, and each tried C's accuracy.

    C rises along the grid; once ``PATIENCE`` larger Cs in a row have not beaten the best, the
    rest are not tried: validation accuracy over C rises to one peak and falls as the probe
    starts to fit noise, and the weakly regularised fits are the slow ones (minutes per layer of
    MiniLM on two shared cores).
    """
    best: tuple[Probe, float, float] | None = None
    scores: dict[float, float] = {}
    worse = 0
    for C, probe in zip(sorted(grid), fit_path(x_train, y_train, classes, sorted(grid))):
        scores[C] = probe.accuracy(x_val, y_val)
        if best is None or scores[C] > best[2]:
            best, worse = (probe, C, scores[C]), 0
        else:
            worse += 1
            if worse == PATIENCE:
                break
    assert best is not None, "the grid of C values is empty"
    return best[0], best[1], scores


def features(model: Probeable, texts: Sequence[str], what: str) -> np.ndarray:
    """Every layer's pooled vector of ``texts`` (texts, layers + 1, width), with a progress bar on stderr."""
    import keras

    print(f"{what}: {len(texts)} texts through {model.model_id}", file=sys.stderr, flush=True)
    bar = keras.utils.Progbar(len(texts), unit_name="text")
    return model.layer_representations(list(texts), progress=lambda done: bar.add(done))


def train(
    model_id: str,
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
    folder: Path | None = None,
    stamp: Mapping[str, Any] | None = None,
) -> dict:
    """Train one probe per layer of ``model_id`` and write ``probes.npz`` and ``probes.json`` into its folder.

    ``limit`` keeps the first N training rows, ``test_limit`` the first N test rows (None: all;
    0: no test figure). ``stamp`` is added to the report (date, package versions). Returns the report.
    """
    from models import registry
    from models.data import load_split, train_validation_split

    started = time.perf_counter()
    found = registry.entry(model_id)
    if not found.ships_assets:
        raise LensError(f"probes are trained for the models whose files ship in assets/ (keras-transformer, minilm-agnews); {model_id} is not one")
    folder = Path(folder) if folder is not None else found.asset_dir
    recover(folder)
    files = model_files(read_json(folder / CHECKSUMS, retrain_remedy(model_id)))
    _check_model_files(folder, files, model_id)
    # Not registry.load: that checks the probes too, and broken probes are what this replaces.
    model = found.family().load(model_id, folder)
    if not isinstance(model, Probeable):
        raise LensError(f"{model_id} has no stack of transformer layers to probe")

    data = load_split("train", data_dir, limit)
    train_rows, val_rows = train_validation_split(data, VALIDATION_FRACTION, seed)
    seen = model_saw(folder, data, len(train_rows), seed)
    x = features(model, train_rows.texts + val_rows.texts, "training rows")
    x_train, x_val = x[: len(train_rows)], x[len(train_rows) :]
    y_train, y_val = np.asarray(train_rows.labels), np.asarray(val_rows.labels)
    test = load_split("test", data_dir, test_limit) if test_limit != 0 else None
    x_test = features(model, test.texts, "test rows (reported only)") if test is not None else None
    encoded = time.perf_counter()

    classes = len(model.labels)
    probes, layers = [], []
    for layer in range(x.shape[1]):
        probe, C, by_C = choose(x_train[:, layer], y_train, x_val[:, layer], y_val, classes)
        probes.append(probe)
        entry = {
            "layer": layer,
            "name": layer_name(layer),
            "C": C,
            "validation_accuracy": round(by_C[C], 6),
            "validation_accuracy_by_C": {str(c): round(score, 6) for c, score in by_C.items()},
            "iterations": probe.iterations,
            "converged": probe.converged,
        }
        if test is not None and x_test is not None:
            entry["test_accuracy"] = round(probe.accuracy(x_test[:, layer], test.labels), 6)
        layers.append(entry)
        print(f"{layer_name(layer)}: C={C:g}, validation accuracy {by_C[C]:.4f}", file=sys.stderr, flush=True)

    weights = np.stack([probe.weights for probe in probes]).astype(np.float32)
    bias = np.stack([probe.bias for probe in probes]).astype(np.float32)
    report = {
        "model": model_id,
        "labels": list(model.labels),
        "readout": getattr(model, "readout", ""),
        "features": f"each layer's token vectors pooled as the head pools them ({getattr(model, 'readout', '')!r} readout); layer 0 is the embeddings' output",
        "probe": "multinomial logistic regression, L2 on standardised features (scikit-learn's C), L-BFGS from zero",
        "C_grid": list(C_GRID),
        "choice": (
            f"per layer, C rising along the grid until {PATIENCE} in a row do not beat the best validation accuracy; the best is kept "
            "(the smaller C on a tie), and the shipped probe is the one fitted on the training part"
        ),
        "data": str(data.source),
        "train_rows": len(train_rows),
        "validation_rows": len(val_rows),
        "validation_rows_seen_by_model": seen,
        "test_rows": len(test) if test is not None else 0,
        "test_data": str(test.source) if test is not None else None,
        "test_note": "test accuracy is reported only; it chose nothing",
        "seed": seed,
        "layers": layers,
        "model_files": files,
        "encoding_seconds": round(encoded - started, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        **git_state(SOURCES),
        **(stamp or {}),
    }
    atomic_write_files(folder, {PROBES: lambda tmp: np.savez(tmp, weights=weights, bias=bias), REPORT: lambda tmp: write_json(tmp, report)})
    _load.cache_clear()
    return report


def model_saw(folder: Path, data: Split, probe_train_rows: int, seed: int) -> bool:
    """Whether the model was trained on the probes' validation rows too, as far as its training.json tells.

    Every trainer here splits with ``train_validation_split``: with the same data, seed and
    training-part size, the model's held-out rows are the probes' validation rows. keras-transformer
    then refits on all rows, so it has seen them; minilm-agnews's head was fitted on the training
    part only, and its encoder never saw AG News. When training.json cannot tell, the answer is
    yes (the cautious one: the view then calls a deep layer's accuracy optimistic).
    """
    try:
        training = read_json(folder / "training.json", "")
    except AssetError:
        return True
    same_split = training.get("data") == str(data.source) and training.get("seed") == seed
    return not (same_split and training.get("train_rows") == probe_train_rows)


def _check_model_files(folder: Path, files: Mapping[str, str], model_id: str) -> None:
    for name, expected in files.items():
        path = folder / name
        if not path.is_file() or sha256(path) != expected:
            raise AssetError(path, f"is missing or differs from its SHA-256 in {CHECKSUMS}", retrain_remedy(model_id))
