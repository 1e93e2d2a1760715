"""What each head does across thousands of texts: a corpus run (``python -m models corpus``) on the page.

Four parts, one shown at a time (each reads only the tables it needs, so opening the view on a
7,600-text run stays quick):

- **texts**: the run's data table, filtered by gold label, prediction, confidence and a text
  search, with the slice's confusion matrix and accuracy (LIT's data table and metrics);
- **atlas**: a layer × head map of one head statistic's corpus mean with its bootstrap 95%
  interval, and the heads clustered by all their means (scipy's hierarchical clustering, Ward
  linkage on standard scores), in dendrogram order;
- **embedding**: the joint query–key space of the chosen head (AttentionViz, Yeh et al. 2023),
  by PCA (always) or UMAP (``umap-learn``, when installed);
- **search**: texts where the chosen head sends its strongest weight from a token matching one
  pattern to a token matching another (exBERT's corpus search, Hoover et al. 2020, on the run's
  per-token strongest key).

The run's files are those ``models.corpus`` writes (``run.json`` and four Parquet tables), checked
by its ``verify_run`` against their SHA-256 once per process before the first read. Runs live under
``corpus/`` in the repository (``make corpus``) or the folder ``ATTENTION_LENS_CORPUS`` names.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel, LensError
from models.contract import Prediction
from models.corpus import RUN_FILE, verify_run
from models.maths.head_stats import STATISTICS
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Style, Subject, Table
from views.widgets import class_name, clicked, escape_markdown, layer_head_pickers, matrix_downloads, show_figure
from viz import corpus as figures

KEY = "corpus"
TITLE = N_("Corpus")
CAPTION = N_(
    "What the model and its heads do across a whole data set, from a corpus run: filter the texts, compare every head's "
    "statistics with their 95% intervals, see a head's queries and keys in one space, search for a pattern. Click a text, "
    "a point or a head to open it."
)

ROOT_ENV = "ATTENTION_LENS_CORPUS"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "corpus"
PARTS = ("atlas", "texts", "embedding", "search")
PROJECTIONS = ("pca", "umap")
COLOURINGS = ("kind", "position", "class")
# The embedding draws at most this many points (queries and keys together): a seeded sample
# beyond it. 20,000 points are the budget of 5 MB sent (bench/views.py --corpus).
MAX_POINTS = 20_000
# The data table sends this many rows at most; the filters narrow it, the exports hold all.
MAX_TABLE_ROWS = 1_000
SNIPPET_CHARS = 60
TOP_PAIRS = 15
# UMAP needs a neighbourhood: below this many points it is not run (PCA instead, and the page says so).
UMAP_MIN_POINTS = 20
# What the lesson's last step asks of the run: on how many headlines is a head's share on the
# token just before above this (Clark et al. 2019 call a head whose share is mostly there a
# previous-token head).
PREVIOUS_THRESHOLD = 0.5


def _run_name(value: str) -> str:
    """A run's folder below the root, as the URL names it: no way out of the root."""
    if value and (not re.fullmatch(r"[\w.+:=-]+(/[\w.+:=-]+)?", value) or ".." in value.split("/")):
        raise ValueError(value)
    return value


FIELDS = (
    state.Field("run", _run_name, ""),
    state.Field("part", state.choice(PARTS), PARTS[0]),
    # Classes are numbered from 1 in links; 0 is every class.
    state.Field("gold", state.count, 0),
    state.Field("predicted", state.count, 0),
    state.Field("min_confidence", state.fraction, 0.0),
    state.Field("max_confidence", state.fraction, 1.0),
    state.Field("find", state.url_text, ""),
    state.Field("measure", state.choice(tuple(STATISTICS)), "previous"),
    state.Field("projection", state.choice(PROJECTIONS), PROJECTIONS[0]),
    state.Field("colour", state.choice(COLOURINGS), COLOURINGS[0]),
    state.Field("from_token", state.url_text, ""),
    state.Field("to_token", state.url_text, ""),
    state.Field("regex", state.flag, False, write=state.write_flag),
)


class CorpusError(LensError):
    """A corpus run that cannot be read: the message names the file and what to run."""


# ---------------------------------------------------------------- reading runs


def root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def remedy(model_id: str) -> str:
    return f"python -m models corpus --model {model_id} --out corpus/{model_id}"


@dataclass(frozen=True)
class Run:
    """One corpus run's ``run.json``: where it is, what it holds."""

    name: str  # its folder below the root
    path: Path
    model: str
    n: int
    created: str
    engine: str
    labels: tuple[str, ...]
    layers: int
    heads: int
    measures: tuple[str, ...]
    no_vectors: str  # why the run has no query and key vectors (an additive model), "" when it has them
    stamp: int  # run.json's modification time: a run made again is read again

    def file(self, name: str) -> Path:
        return self.path / name


def _read_run(path: Path, base: Path) -> Run | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return Run(
            name=path.parent.relative_to(base).as_posix(),
            path=path.parent,
            model=str(meta["model"]),
            n=int(meta["n"]),
            created=str(meta.get("created", "")),
            engine=str(meta.get("engine", "")),
            labels=tuple(str(label) for label in meta["labels"]),
            layers=int(meta["layers"]),
            heads=int(meta["heads"]),
            measures=tuple(str(m) for m in meta["measures"]),
            no_vectors=str(sample.get("none", "")) if isinstance(sample := meta.get("vector_sample"), dict) else "",
            stamp=path.stat().st_mtime_ns,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a run still being written, or not a run: not offered


def runs(model_id: str) -> tuple[Run, ...]:
    """The readable runs of ``model_id`` below the root: the one named after the model first, then newest first."""
    base = root()
    if not base.is_dir():
        return ()
    found = [run for path in [*base.glob(f"*/{RUN_FILE}"), *base.glob(f"*/*/{RUN_FILE}")] if (run := _read_run(path, base)) and run.model == model_id]
    found.sort(key=lambda run: run.created, reverse=True)
    found.sort(key=lambda run: run.name != model_id.replace("/", "_"))
    return tuple(found)


def chosen_run(model_id: str, name: str) -> Run:
    """The run the field names, or the model's first run when it names none (or one not there)."""
    found = runs(model_id)
    if not found:
        raise CorpusError(f"there is no corpus run for {model_id} under {root()}: make one with `make corpus` or `{remedy(model_id)}`")
    return next((run for run in found if run.name == name), found[0])


_VERIFIED: set[tuple[str, int]] = set()
_VERIFY_LOCK = threading.Lock()


def verified(run: Run) -> Run:
    """``run`` after ``models.corpus.verify_run`` checked every table's SHA-256: once per process and run.json version."""
    key = (str(run.path), run.stamp)
    with _VERIFY_LOCK:
        if key not in _VERIFIED:
            try:
                verify_run(run.path)
            except LensError as error:
                raise CorpusError(f"{error}; or make it again: {remedy(run.model)}") from None
            _VERIFIED.add(key)
    return run


def _read(run: Run, name: str, columns: list[str], filters: list | None = None):
    import pyarrow.parquet as pq  # on first use: the other views never need it

    path = verified(run).file(name)
    try:
        return pq.read_table(path, columns=columns, filters=filters)
    except Exception as error:  # pyarrow's own errors for a damaged file or a missing column
        raise CorpusError(f"corpus run {run.path}: {name} cannot be read ({error}); make the run again: {remedy(run.model)}") from None


def _numbers(table, column: str, dtype) -> np.ndarray:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=dtype)


@dataclass(frozen=True)
class Texts:
    """The run's per-text table, as arrays (one entry per text, in the run's order)."""

    text_id: np.ndarray
    text: tuple[str, ...]
    gold: np.ndarray  # -1 where unknown
    predicted: np.ndarray
    confidence: np.ndarray

    def row(self, text_id: int) -> int:
        return int(np.searchsorted(self.text_id, text_id)) if self.sorted else int(np.flatnonzero(self.text_id == text_id)[0])

    @property
    def sorted(self) -> bool:
        return bool(np.all(np.diff(self.text_id) > 0))


@functools.lru_cache(maxsize=4)
def texts(run: Run) -> Texts:
    table = _read(run, "texts.parquet", ["text_id", "text", "gold", "predicted", "confidence"])
    return Texts(
        text_id=_numbers(table, "text_id", np.int64),
        text=tuple(table.column("text").to_pylist()),
        gold=_numbers(table, "gold", np.int32),
        predicted=_numbers(table, "predicted", np.int32),
        confidence=_numbers(table, "confidence", np.float64),
    )


@functools.lru_cache(maxsize=2)
def tokens(run: Run) -> dict[int, tuple[str, ...]]:
    """Each text's tokens (the model's own, special ones included), by text id."""
    table = _read(run, "texts.parquet", ["text_id", "tokens"])
    return {int(i): tuple(t) for i, t in zip(table.column("text_id").to_pylist(), table.column("tokens").to_pylist(), strict=True)}


@dataclass(frozen=True)
class Summary:
    """Per head and measure: the corpus mean and its bootstrap 95% interval, each (measures, layers, heads)."""

    measures: tuple[str, ...]
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


@functools.lru_cache(maxsize=4)
def summary(run: Run) -> Summary:
    table = _read(run, "summary.parquet", ["layer", "head", "measure", "mean", "low", "high"])
    measures = tuple(m for m in STATISTICS if m in run.measures)
    shape = (len(measures), run.layers, run.heads)
    arrays = {column: np.full(shape, np.nan) for column in ("mean", "low", "high")}
    layer, head = _numbers(table, "layer", np.int64) - 1, _numbers(table, "head", np.int64) - 1
    index = {m: i for i, m in enumerate(measures)}
    measure = np.array([index.get(m, -1) for m in table.column("measure").to_pylist()], dtype=np.int64)
    keep = measure >= 0
    for column, values in arrays.items():
        values[measure[keep], layer[keep], head[keep]] = _numbers(table, column, np.float64)[keep]
    return Summary(measures, arrays["mean"], arrays["low"], arrays["high"])


def head_rows(run: Run, layer: int, head: int, columns: list[str]):
    """The per-text rows of one head (1-based layer and head) of heads.parquet."""
    return _read(run, "heads.parquet", ["text_id", *columns], filters=[("layer", "==", layer), ("head", "==", head)])


@functools.lru_cache(maxsize=8)
def strongest(run: Run, layer: int, head: int) -> dict[int, np.ndarray]:
    """Per text id: for each query position, the key position the head weighs most."""
    table = head_rows(run, layer, head, ["strongest"])
    return {int(i): np.asarray(s, dtype=np.int64) for i, s in zip(table.column("text_id").to_pylist(), table.column("strongest").to_pylist(), strict=True)}


@dataclass(frozen=True)
class Vectors:
    """One head's sampled query and key vectors (keys translated and scaled as in AttentionViz)."""

    is_key: np.ndarray
    text_id: np.ndarray
    position: np.ndarray
    token: tuple[str, ...]
    vectors: np.ndarray  # (points, head size), float32


@functools.lru_cache(maxsize=4)
def vectors(run: Run, layer: int, head: int) -> Vectors:
    table = _read(run, "vectors.parquet", ["kind", "text_id", "position", "token", "vector"], filters=[("layer", "==", layer), ("head", "==", head)])
    column = table.column("vector").combine_chunks()
    flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    count = len(table)
    return Vectors(
        is_key=np.array([kind == "key" for kind in table.column("kind").to_pylist()], dtype=bool),
        text_id=_numbers(table, "text_id", np.int64),
        position=_numbers(table, "position", np.int64),
        token=tuple(table.column("token").to_pylist()),
        vectors=flat.reshape(count, -1) if count else np.zeros((0, 0), dtype=np.float32),
    )


# ---------------------------------------------------------------- the four parts' data


@dataclass(frozen=True)
class TextsData:
    """The texts of the slice the filters leave, and how the model did on them."""

    run: str
    labels: tuple[str, ...]
    total: int
    text_id: np.ndarray
    text: tuple[str, ...]
    gold: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    confusion: np.ndarray  # (classes, classes): gold down, predicted across; texts of known gold only

    @property
    def known(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """Share of the slice's texts of known gold label that the model got right; NaN when none."""
        return float(np.trace(self.confusion) / self.known) if self.known else float("nan")


def confusion(gold: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    known = (gold >= 0) & (gold < classes) & (predicted >= 0) & (predicted < classes)
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (gold[known], predicted[known]), 1)
    return counts


def slice_rows(table: Texts, classes: int, settings: Settings) -> np.ndarray:
    """Indices of the texts the filters keep: class numbers from 1 (0 = any), confidence bounds inclusive, text search ignoring case."""
    keep = np.ones(len(table.text_id), dtype=bool)
    gold, predicted = settings["gold"], settings["predicted"]
    if 1 <= gold <= classes:
        keep &= table.gold == gold - 1
    if 1 <= predicted <= classes:
        keep &= table.predicted == predicted - 1
    low, high = sorted((settings["min_confidence"], settings["max_confidence"]))
    keep &= (table.confidence >= low) & (table.confidence <= high)
    find = settings["find"].strip().casefold()
    if find:
        keep &= np.array([find in text.casefold() for text in table.text], dtype=bool)
    return np.flatnonzero(keep)


def texts_data(run: Run, settings: Settings) -> TextsData:
    table = texts(run)
    rows_ = slice_rows(table, len(run.labels), settings)
    gold, predicted = table.gold[rows_], table.predicted[rows_]
    return TextsData(
        run=run.name,
        labels=run.labels,
        total=len(table.text_id),
        text_id=table.text_id[rows_],
        text=tuple(table.text[i] for i in rows_.tolist()),
        gold=gold,
        predicted=predicted,
        confidence=table.confidence[rows_],
        confusion=confusion(gold, predicted, len(run.labels)),
    )


@dataclass(frozen=True)
class AtlasData:
    """Every head's corpus means, the chosen measure first among equals, and the heads' clustering."""

    run: str
    n: int
    measure: str
    measures: tuple[str, ...]
    mean: np.ndarray  # (measures, layers, heads)
    low: np.ndarray
    high: np.ndarray
    order: tuple[tuple[int, int], ...]  # 1-based (layer, head) in dendrogram order
    scores: np.ndarray  # (measures, heads) standard scores across heads, in that order
    icoord: np.ndarray
    dcoord: np.ndarray

    @property
    def index(self) -> int:
        return self.measures.index(self.measure)


def standard_scores(mean: np.ndarray) -> np.ndarray:
    """(measures, heads) means as standard scores across heads; a measure undefined or constant is 0."""
    finite = np.isfinite(mean)
    count = finite.sum(axis=1, keepdims=True)
    values = np.where(finite, mean, 0.0)
    centre = values.sum(axis=1, keepdims=True) / np.maximum(count, 1)
    spread_ = np.sqrt((np.where(finite, mean - centre, 0.0) ** 2).sum(axis=1, keepdims=True) / np.maximum(count, 1))
    scores = np.where(finite & (spread_ > 0), (values - centre) / np.where(spread_ > 0, spread_, 1.0), 0.0)
    return scores


def cluster(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dendrogram leaf order and segments of the heads (columns of ``scores``): Ward linkage, Euclidean."""
    from scipy.cluster.hierarchy import dendrogram, linkage

    count = scores.shape[1]
    if count < 2:
        return np.arange(count), np.zeros((0, 4)), np.zeros((0, 4))
    tree = dendrogram(linkage(scores.T, method="ward"), no_plot=True)
    return np.asarray(tree["leaves"], dtype=np.int64), np.asarray(tree["icoord"], dtype=np.float64), np.asarray(tree["dcoord"], dtype=np.float64)


def atlas_data(run: Run, settings: Settings) -> AtlasData:
    found = summary(run)
    flat = found.mean.reshape(len(found.measures), -1)
    scores = standard_scores(flat)
    leaves, icoord, dcoord = cluster(scores)
    heads = [(layer + 1, head + 1) for layer in range(run.layers) for head in range(run.heads)]
    measure = settings["measure"] if settings["measure"] in found.measures else found.measures[0]
    return AtlasData(
        run=run.name,
        n=run.n,
        measure=measure,
        measures=found.measures,
        mean=found.mean,
        low=found.low,
        high=found.high,
        order=tuple(heads[i] for i in leaves.tolist()),
        scores=scores[:, leaves],
        icoord=icoord,
        dcoord=dcoord,
    )


@dataclass(frozen=True)
class EmbeddingData:
    """One head's query and key points in a plane, and what each point is."""

    run: str
    layer: int
    head: int
    method: str  # the projection drawn: "pca" or "umap"
    asked: str  # the projection asked for; differs when UMAP could not run (``note`` says why)
    note: str  # "", "no-umap" (not installed) or "too-few" (fewer than UMAP_MIN_POINTS points)
    coordinates: np.ndarray  # (points, 2) float32
    is_key: np.ndarray
    position: np.ndarray
    text_id: np.ndarray
    token: tuple[str, ...]
    text_class: np.ndarray  # the text's gold class where known, else the predicted one
    snippet: tuple[str, ...]  # the start of the point's text
    labels: tuple[str, ...]
    sampled_from: int  # points in the run for this head, before the budget's sample


def pca(points: np.ndarray) -> np.ndarray:
    """The first two principal components' coordinates of ``points`` (centred; signs as scikit-learn's svd_flip)."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return np.zeros((0, 2), dtype=np.float32)
    centred = points - points.mean(axis=0)
    _u, _s, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:2]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    projected = centred @ components.T
    if projected.shape[1] < 2:  # one dimension (or one point): the second axis is 0
        projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
    return projected.astype(np.float32)


def umap_available() -> bool:
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def umap_projection(points: np.ndarray) -> np.ndarray:
    import umap

    return np.asarray(umap.UMAP(n_components=2, random_state=0).fit_transform(np.asarray(points, dtype=np.float32)), dtype=np.float32)


@functools.lru_cache(maxsize=8)
def projected(run: Run, layer: int, head: int, method: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(indices of the sampled points, their coordinates, points before sampling) for one head."""
    found = vectors(run, layer, head)
    count = len(found.token)
    chosen = np.arange(count) if count <= MAX_POINTS else np.sort(np.random.default_rng(0).choice(count, MAX_POINTS, replace=False))
    points = found.vectors[chosen]
    return chosen, umap_projection(points) if method == "umap" else pca(points), count


def embedding_data(run: Run, settings: Settings) -> EmbeddingData:
    asked = settings["projection"]
    note = ""
    found = vectors(run, settings.layer, settings.head)
    method = asked
    if asked == "umap" and not umap_available():
        method, note = "pca", "no-umap"
    elif asked == "umap" and min(len(found.token), MAX_POINTS) < UMAP_MIN_POINTS:
        method, note = "pca", "too-few"
    chosen, coordinates, count = projected(run, settings.layer, settings.head, method)
    table = texts(run)
    rows_ = np.array([table.row(i) for i in found.text_id[chosen].tolist()], dtype=np.int64)
    text_class = np.where(table.gold[rows_] >= 0, table.gold[rows_], table.predicted[rows_]) if len(rows_) else np.zeros(0, dtype=np.int32)
    return EmbeddingData(
        run=run.name,
        layer=settings.layer,
        head=settings.head,
        method=method,
        asked=asked,
        note=note,
        coordinates=coordinates,
        is_key=found.is_key[chosen],
        position=found.position[chosen],
        text_id=found.text_id[chosen],
        token=tuple(found.token[i] for i in chosen.tolist()),
        text_class=np.asarray(text_class, dtype=np.int32),
        snippet=tuple(table.text[i][:SNIPPET_CHARS] for i in rows_.tolist()),
        labels=run.labels,
        sampled_from=count,
    )


@dataclass(frozen=True)
class SearchData:
    """Texts where the head's strongest weight goes from a token matching ``source`` to one matching ``target``."""

    run: str
    layer: int
    head: int
    source: str
    target: str
    regex: bool
    searched: int  # texts searched (all the run's)
    text_id: np.ndarray  # matching texts, most matches first
    text: tuple[str, ...]
    matches: np.ndarray  # matching query positions per text
    example: tuple[str, ...]  # the first matching pair of each text, "query → key"
    pairs: tuple[tuple[str, str], ...]  # the most frequent matching pairs
    pair_counts: np.ndarray

    @property
    def asked(self) -> bool:
        return bool(self.source or self.target)


def token_matcher(pattern: str, regex: bool) -> Callable[[str], bool]:
    """Whether a token matches ``pattern``: any token when empty; a regular expression searched in
    the token (ignoring case) when ``regex``; else the word itself, ignoring case and word-piece
    marks ("##ing", "▁the", "Ġthe")."""
    if not pattern:
        return lambda token: True
    if regex:
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as error:
            raise CorpusError(f"{pattern!r} is not a regular expression: {error}") from None
        return lambda token: compiled.search(token) is not None
    wanted = pattern.strip().casefold()
    return lambda token: token.lstrip("#▁Ġ").casefold() == wanted or token.casefold() == wanted


def pairs_in(tokens_: tuple[str, ...], strongest_: np.ndarray, source: Callable[[str], bool], target: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(query token, key token) of every query position whose strongest key matches, in position order."""
    found = []
    for query, key in enumerate(strongest_.tolist()[: len(tokens_)]):
        if 0 <= key < len(tokens_) and source(tokens_[query]) and target(tokens_[key]):
            found.append((tokens_[query], tokens_[key]))
    return found


def search_data(run: Run, settings: Settings) -> SearchData:
    source_pattern, target_pattern, regex = settings["from_token"].strip(), settings["to_token"].strip(), bool(settings["regex"])
    table = texts(run)
    found: list[tuple[int, int, str]] = []
    pair_counts: Counter[tuple[str, str]] = Counter()
    if source_pattern or target_pattern:
        source, target = token_matcher(source_pattern, regex), token_matcher(target_pattern, regex)
        cache_source, cache_target = functools.lru_cache(maxsize=None)(source), functools.lru_cache(maxsize=None)(target)
        all_tokens, heads = tokens(run), strongest(run, settings.layer, settings.head)
        for text_id in table.text_id.tolist():
            pairs = pairs_in(all_tokens.get(text_id, ()), heads.get(text_id, np.zeros(0, dtype=np.int64)), cache_source, cache_target)
            if pairs:
                found.append((text_id, len(pairs), f"{pairs[0][0]} → {pairs[0][1]}"))
                pair_counts.update(pairs)
    found.sort(key=lambda row: (-row[1], row[0]))
    top = pair_counts.most_common(TOP_PAIRS)
    return SearchData(
        run=run.name,
        layer=settings.layer,
        head=settings.head,
        source=source_pattern,
        target=target_pattern,
        regex=regex,
        searched=len(table.text_id),
        text_id=np.array([row[0] for row in found], dtype=np.int64),
        text=tuple(table.text[table.row(row[0])] for row in found),
        matches=np.array([row[1] for row in found], dtype=np.int64),
        example=tuple(row[2] for row in found),
        pairs=tuple(pair for pair, _count in top),
        pair_counts=np.array([count for _pair, count in top], dtype=np.int64),
    )


@dataclass(frozen=True)
class Share:
    """On how many of the run's texts one head's statistic is above a threshold (NaN texts left out)."""

    run: str
    n: int  # texts where the statistic is defined
    above: int
    threshold: float
    lowest_text: str  # the text with the lowest value
    lowest: float

    @property
    def fraction(self) -> float:
        return self.above / self.n if self.n else float("nan")


def share_above(run: Run, layer: int, head: int, measure: str = "previous", threshold: float = PREVIOUS_THRESHOLD) -> Share:
    """The lesson's question from the run: on how many texts is head ``layer``:``head``'s ``measure`` above ``threshold``?"""
    table = head_rows(run, layer, head, [measure])
    values = _numbers(table, measure, np.float64)
    ids = _numbers(table, "text_id", np.int64)
    defined = np.isfinite(values)
    values, ids = values[defined], ids[defined]
    if not len(values):
        return Share(run.name, 0, 0, threshold, "", float("nan"))
    lowest = int(np.argmin(values))
    found = texts(run)
    return Share(run.name, len(values), int((values > threshold).sum()), threshold, found.text[found.row(int(ids[lowest]))], float(values[lowest]))


# ---------------------------------------------------------------- the view protocol


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if runs(model.model_id):
        return True, ""
    return False, _(
        "There is no corpus run for this model yet. Make one with `make corpus` (the shipped classifiers) or `{command}`, then reload the page."
    ).format(command=remedy(model.model_id))


CorpusData = TextsData | AtlasData | EmbeddingData | SearchData
PART_DATA: Mapping[str, Callable[[Run, Settings], Any]] = {"texts": texts_data, "atlas": atlas_data, "embedding": embedding_data, "search": search_data}


def data(subject: Subject, settings: Settings) -> CorpusData:
    """The chosen part's data from the chosen run (the model's first when the field names none)."""
    run = chosen_run(subject.model_id, settings["run"])
    layer, head = min(max(1, settings.layer), run.layers), min(max(1, settings.head), run.heads)
    if (layer, head) != (settings.layer, settings.head):
        settings = replace(settings, layer=layer, head=head)
    return PART_DATA[settings["part"]](run, settings)


def measure_title(key: str) -> str:
    return _(STATISTICS[key][0]) if key in STATISTICS else key


def _texts_figure(d: TextsData, style: Style) -> go.Figure:
    accuracy = _("accuracy {accuracy:.1%}").format(accuracy=d.accuracy) if d.known else _("no gold labels")
    title = _("Gold against predicted, {count:,} texts ({accuracy})").format(count=d.known, accuracy=accuracy)
    return figures.confusion_matrix(
        d.confusion, [class_name(label) for label in d.labels], title=title, scheme=style.scheme, width_px=style.width_px, presenter=style.presenter
    )


def _atlas_figure(d: AtlasData, settings: Settings, style: Style) -> go.Figure:
    title = _("{measure}: mean over {n:,} texts, per head (hover: 95% interval)").format(measure=measure_title(d.measure), n=d.n)
    layers, heads = d.mean.shape[1:]
    selected = (min(settings.layer, layers) - 1, min(settings.head, heads) - 1)
    return figures.head_atlas(
        d.mean[d.index],
        d.low[d.index],
        d.high[d.index],
        title=title,
        selected=selected,
        scheme=style.scheme,
        width_px=style.width_px,
        presenter=style.presenter,
    )


def clusters_figure(d: AtlasData, settings: Settings, style: Style) -> go.Figure:
    title = _("Heads that behave alike stand together: every measure's standard score, heads in the clustering's order")
    return figures.head_clusters(
        d.scores,
        d.order,
        [measure_title(m) for m in d.measures],
        d.icoord,
        d.dcoord,
        title=title,
        selected=(settings.layer, settings.head),
        scheme=style.scheme,
        width_px=style.width_px,
        presenter=style.presenter,
    )


def _embedding_figure(d: EmbeddingData, settings: Settings, style: Style) -> go.Figure:
    query, key = _("query"), _("key")
    hover = [f"{key if is_key else query} “{token}” · {snippet}" for is_key, token, snippet in zip(d.is_key.tolist(), d.token, d.snippet, strict=True)]
    colour = settings["colour"]
    if colour == "kind":
        groups = [(_("queries"), ~d.is_key), (_("keys"), d.is_key)]
    elif colour == "class":
        groups = [(class_name(label), d.text_class == index) for index, label in enumerate(d.labels)]
    else:
        groups = None
    method = "UMAP" if d.method == "umap" else "PCA"
    title = _("Layer {layer}, head {head}: {count:,} queries and keys in one space ({method})").format(
        layer=d.layer, head=d.head, count=len(d.token), method=method
    )
    customdata = np.stack([d.text_id, np.full(len(d.text_id), d.layer), np.full(len(d.text_id), d.head)], axis=1) if len(d.text_id) else np.zeros((0, 3))
    return figures.joint_embedding(
        d.coordinates,
        groups,
        d.position,
        hover,
        customdata,
        title=title,
        axes=(f"{method} 1", f"{method} 2"),
        scheme=style.scheme,
        width_px=style.width_px,
        presenter=style.presenter,
    )


def _search_figure(d: SearchData, style: Style) -> go.Figure:
    title = _("Layer {layer}, head {head}: {texts:,} of {searched:,} texts match; the most frequent pairs").format(
        layer=d.layer, head=d.head, texts=len(d.text_id), searched=d.searched
    )
    return figures.pair_bars([f"{a} → {b}" for a, b in d.pairs], d.pair_counts.tolist(), title=title, width_px=style.width_px, presenter=style.presenter)


def figure(d: CorpusData, settings: Settings, style: Style) -> go.Figure:
    """The part's main figure: the confusion matrix, the atlas map, the embedding, or the search's pairs."""
    if isinstance(d, TextsData):
        return _texts_figure(d, style)
    if isinstance(d, AtlasData):
        return _atlas_figure(d, settings, style)
    if isinstance(d, EmbeddingData):
        return _embedding_figure(d, settings, style)
    return _search_figure(d, style)


def rows(d: CorpusData) -> dict[str, Table]:
    """What the export writes: every text of the slice (not only the rows the page sends), the atlas, the points, the matches."""
    if isinstance(d, TextsData):
        values = np.stack([d.gold, d.predicted, d.confidence], axis=1).astype(np.float64) if len(d.text_id) else np.zeros((0, 3))
        labels = tuple(d.labels)
        return {
            "texts": Table(values, tuple(str(i) for i in d.text_id.tolist()), ("gold", "predicted", "confidence"), {"run": d.run, "labels": list(labels)}),
            "confusion": Table(d.confusion, labels, labels, {"run": d.run, "rows": "gold", "columns": "predicted"}),
        }
    if isinstance(d, AtlasData):
        layers, heads = d.mean.shape[1:]
        names = tuple(f"L{layer + 1}H{head + 1}" for layer in range(layers) for head in range(heads))
        columns = tuple(f"{m}_{part}" for m in d.measures for part in ("mean", "low", "high"))
        values = np.stack([array[i].ravel() for i in range(len(d.measures)) for array in (d.mean, d.low, d.high)], axis=1)
        order = tuple(f"L{layer}H{head}" for layer, head in d.order)
        return {
            "atlas": Table(values, names, columns, {"run": d.run, "interval": "bootstrap 95%"}),
            "clusters": Table(d.scores.T, order, d.measures, {"run": d.run, "order": "dendrogram (Ward)", "values": "standard scores"}),
        }
    if isinstance(d, EmbeddingData):
        values = np.column_stack([d.coordinates.astype(np.float64), d.is_key, d.position, d.text_id]) if len(d.token) else np.zeros((0, 5))
        return {
            "embedding": Table(
                values, d.token, ("x", "y", "is_key", "position", "text_id"), {"run": d.run, "layer": d.layer, "head": d.head, "projection": d.method}
            )
        }
    values = np.column_stack([d.matches]).astype(np.float64) if len(d.text_id) else np.zeros((0, 1))
    meta = {"run": d.run, "layer": d.layer, "head": d.head, "from": d.source, "to": d.target, "regex": d.regex}
    return {"search": Table(values, tuple(str(i) for i in d.text_id.tolist()), ("matches",), meta)}


# ---------------------------------------------------------------- the page


def open_text(text: str, layer: int | None, head: int | None, panel: str) -> None:
    """Show ``text`` in the heatmap (at ``layer``/``head`` when given), as picking an example sets the text."""
    st.session_state[state.key("text")] = text
    st.session_state[state.key("view")] = "heatmap"
    if layer is not None and head is not None:
        st.session_state[state.key("layer", panel)] = layer
        st.session_state[state.key("head", panel)] = head


def _open_row(table_key: str, panel: str, shown: tuple[str, ...], layer: int | None, head: int | None) -> None:
    selected = st.session_state[table_key].selection.get("rows", [])
    if selected and 0 <= selected[0] < len(shown):
        open_text(shown[selected[0]], layer, head, panel)


def _choose_head(chart_key: str, panel: str) -> None:
    """A click on a head in the atlas chooses it for the embedding and the search."""
    found = clicked(chart_key)
    if found:
        st.session_state[state.key("layer", panel)] = int(found[0])
        st.session_state[state.key("head", panel)] = int(found[1])


def _open_point(texts_of: Callable[[int], str], chart_key: str, panel: str) -> None:
    found = clicked(chart_key)
    if found:
        open_text(texts_of(int(found[0])), int(found[1]), int(found[2]), panel)


def _run_label(run: Run) -> str:
    return _("{name}: {n:,} texts, {engine}, {created}").format(name=run.name, n=run.n, engine=run.engine or "?", created=run.created[:16].replace("T", " "))


PART_TITLES = {"atlas": N_("Head atlas"), "texts": N_("Texts"), "embedding": N_("Queries and keys"), "search": N_("Search")}
COLOUR_TITLES = {"kind": N_("query or key"), "position": N_("position"), "class": N_("the text's class")}


def _texts_widgets(ctx: ViewContext, run: Run, beside: list) -> None:
    classes = range(len(run.labels) + 1)
    for name in ("gold", "predicted"):
        if st.session_state.get(ctx.key(name), 0) not in classes:
            st.session_state[ctx.key(name)] = 0

    def pick(n: int) -> str:
        return _("every class") if n == 0 else class_name(run.labels[n - 1])

    gold, predicted = beside
    gold.selectbox(_("Gold label"), classes, format_func=pick, key=ctx.key("gold"))
    predicted.selectbox(_("Predicted label"), classes, format_func=pick, key=ctx.key("predicted"))
    confidence, find = st.columns(2)
    slider = ctx.widget_key("corpus-confidence")
    st.session_state[slider] = tuple(sorted((float(ctx.get("min_confidence")), float(ctx.get("max_confidence")))))

    def keep_range() -> None:
        st.session_state[ctx.key("min_confidence")], st.session_state[ctx.key("max_confidence")] = st.session_state[slider]

    confidence.slider(_("Confidence"), 0.0, 1.0, step=0.01, key=slider, on_change=keep_range)
    find.text_input(_("Text contains"), key=ctx.key("find"))


def _head_pickers(ctx: ViewContext, columns: list) -> None:
    """Layer and head beside the run, as ``views.widgets.layer_head_pickers`` draws them on a row of their own."""
    st.session_state[ctx.key("layer")], st.session_state[ctx.key("head")] = ctx.layer, ctx.head
    if ctx.shown.num_layers > 1:
        columns[0].selectbox(_("Layer"), range(1, ctx.shown.num_layers + 1), key=ctx.key("layer"))
    if ctx.shown.num_heads > 1:
        columns[1].selectbox(_("Head"), range(1, ctx.shown.num_heads + 1), key=ctx.key("head"))


def _render_texts(ctx: ViewContext, run: Run, d: TextsData) -> None:
    show_figure(ctx, figure(d, ctx.settings, ctx.style), "corpus-confusion")
    per_class = [
        _("{label}: {accuracy:.0%} of {count:,}").format(label=class_name(label), accuracy=d.confusion[i, i] / row_sum, count=int(row_sum))
        for i, (label, row_sum) in enumerate(zip(d.labels, d.confusion.sum(axis=1).tolist(), strict=True))
        if row_sum
    ]
    st.caption(
        _("{shown:,} of {total:,} texts in this slice. Right per gold class: {classes}.").format(
            shown=len(d.text_id), total=d.total, classes="; ".join(per_class) or "—"
        )
    )
    shown = d.text[:MAX_TABLE_ROWS]
    if len(d.text) > MAX_TABLE_ROWS:
        st.caption(_("The table lists the first {rows:,}; narrow the filters, or download them all below.").format(rows=MAX_TABLE_ROWS))
    key = ctx.widget_key("corpus-texts")

    def label(n: int) -> str:
        return class_name(d.labels[n]) if 0 <= n < len(d.labels) else "—"

    st.dataframe(
        {
            _("text"): list(shown),
            _("gold"): [label(n) for n in d.gold[:MAX_TABLE_ROWS].tolist()],
            _("predicted"): [label(n) for n in d.predicted[:MAX_TABLE_ROWS].tolist()],
            _("confidence"): d.confidence[:MAX_TABLE_ROWS].tolist(),
        },
        hide_index=True,
        width="stretch",
        height=320,
        key=key,
        on_select=functools.partial(_open_row, key, ctx.panel, shown, None, None),
        selection_mode="single-row",
        column_config={_("confidence"): st.column_config.NumberColumn(format="%.3f")},
    )
    st.caption(_("Click a row to open its text in the heatmap."))


def _render_atlas(ctx: ViewContext, run: Run, d: AtlasData) -> None:
    show_figure(ctx, figure(d, ctx.settings, ctx.style), "corpus-atlas", on_click=_choose_head)
    if not np.isfinite(d.mean[d.index]).any():
        st.info(
            _("“{measure}” compares the positions of queries and keys, which this model's attention does not share: choose another measure.").format(
                measure=measure_title(d.measure)
            )
        )
    show_figure(ctx, clusters_figure(d, ctx.settings, ctx.style), "corpus-clusters", on_click=_choose_head)
    st.caption(
        _(
            "Click a head to choose it for “Queries and keys” and “Search”. The tree joins heads whose means over all the "
            "measures are close (Ward's hierarchical clustering on standard scores)."
        )
    )


def _render_embedding(ctx: ViewContext, run: Run, d: EmbeddingData) -> None:
    if not d.token:
        st.info(_("This run holds no query and key vectors for this head: {reason}").format(reason=run.no_vectors or _("none were sampled")))
        return
    show_figure(ctx, figure(d, ctx.settings, ctx.style), f"corpus-embedding-L{d.layer}-H{d.head}", on_click=functools.partial(_open_point, _text_of(run)))
    if d.note == "no-umap":
        st.info(_("UMAP needs the package umap-learn (installed by `make`); the figure shows PCA."))
    elif d.note == "too-few":
        st.info(_("Too few points for UMAP; the figure shows PCA."))
    if d.sampled_from > len(d.token):
        st.caption(_("A seeded sample of {shown:,} of the run's {count:,} points of this head.").format(shown=len(d.token), count=d.sampled_from))
    st.caption(
        _(
            "Each point is one token's query or key vector in this head; keys are moved and scaled as in AttentionViz (Yeh et al. "
            "2023), so a query lies near the keys it weighs most. Click a point to open its text in the heatmap at this head."
        )
    )


def _text_of(run: Run) -> Callable[[int], str]:
    def text_of(text_id: int) -> str:
        found = texts(run)
        return found.text[found.row(text_id)]

    return text_of


def _render_search(ctx: ViewContext, run: Run, d: SearchData) -> None:
    source, target, regex = st.columns([3, 3, 2], vertical_alignment="bottom")
    source.text_input(_("From a token like"), key=ctx.key("from_token"), placeholder=_("any token"))
    target.text_input(_("to a token like"), key=ctx.key("to_token"), placeholder=_("any token"))
    regex.toggle(_("Regular expressions"), key=ctx.key("regex"))
    if not d.asked:
        st.info(_("Type a token (or a pattern) to search for, on one side or both."))
        return
    if not len(d.text_id):
        st.info(_("None of the run's {searched:,} texts matches: in none does this head send its strongest weight that way.").format(searched=d.searched))
        return
    show_figure(ctx, figure(d, ctx.settings, ctx.style), f"corpus-search-L{d.layer}-H{d.head}")
    key = ctx.widget_key("corpus-matches")
    shown = d.text[:MAX_TABLE_ROWS]
    st.dataframe(
        {_("text"): list(shown), _("matches"): d.matches[:MAX_TABLE_ROWS].tolist(), _("first match"): list(d.example[:MAX_TABLE_ROWS])},
        hide_index=True,
        width="stretch",
        height=320,
        key=key,
        on_select=functools.partial(_open_row, key, ctx.panel, shown, d.layer, d.head),
        selection_mode="single-row",
    )
    st.caption(_("Click a row to open its text in the heatmap at this head."))


def render(ctx: ViewContext) -> None:
    found = runs(ctx.model_id)
    names = [run.name for run in found]
    if ctx.get("run") not in names:
        st.session_state[ctx.key("run")] = names[0]
    by_name = {run.name: run for run in found}
    st.radio(_("Part"), PARTS, format_func=lambda p: _(PART_TITLES[p]), key=ctx.key("part"), horizontal=True, label_visibility="collapsed")
    # The run beside the part's first widgets: the first figure stays on a laptop's first screen.
    pick, *beside = st.columns([2, 1, 1])
    pick.selectbox(_("Corpus run"), names, format_func=lambda name: _run_label(by_name[name]), key=ctx.key("run"))
    run = by_name[ctx.get("run")]
    chosen = ctx.get("part")
    if chosen == "atlas":
        measures = [m for m in STATISTICS if m in run.measures]
        if ctx.get("measure") not in measures:
            st.session_state[ctx.key("measure")] = measures[0]
        beside[0].selectbox(_("Measure"), measures, format_func=measure_title, key=ctx.key("measure"), help=_(STATISTICS[ctx.get("measure")][1]))
    elif chosen == "texts":
        _texts_widgets(ctx, run, beside)
    elif chosen == "embedding":
        beside[0].selectbox(_("Projection"), PROJECTIONS, format_func=str.upper, key=ctx.key("projection"))
        beside[1].selectbox(_("Colour by"), COLOURINGS, format_func=lambda c: _(COLOUR_TITLES[c]), key=ctx.key("colour"))
        layer_head_pickers(ctx)
    elif chosen == "search":
        _head_pickers(ctx, beside)
    try:
        with st.spinner(_("Reading the corpus run…")):
            d = ctx.data()
    except LensError as error:
        st.error(str(error))
        return
    {"texts": _render_texts, "atlas": _render_atlas, "embedding": _render_embedding, "search": _render_search}[chosen](ctx, run, d)
    matrix_downloads(ctx, rows(d))


# ---------------------------------------------------------------- the lesson's last step

LESSON_QUESTION = N_("Across a whole corpus: is the previous-token head a previous-token head on every headline?")
LESSON_ANSWER = N_(
    "From the corpus run “{run}”: on {above:,} of its {n:,} headlines ({share:.0%}), layer {layer}, head {head} gives more than "
    "{threshold:.0%} of a word's attention, on average, to the word just before it. Its lowest share, {lowest:.2f}, is on “{text}”."
)
LESSON_NO_RUN = N_("There is no corpus run for {model} yet: `make corpus` makes one, and then the corpus view answers this.")
LESSON_TEXT_CHARS = 120


def lesson_answer(model_id: str, layer: int, head: int) -> str:
    """The answer to ``LESSON_QUESTION`` from the model's first corpus run, in the page's language."""
    from views import compute  # the page's shared cache: each server reads the head's rows once per run

    found = runs(model_id)
    if not found:
        return _(LESSON_NO_RUN).format(model=model_id)
    run = found[0]
    share = compute.cached("corpus-share", lambda: share_above(run, layer, head), str(run.path), run.stamp, layer, head)
    text = share.lowest_text if len(share.lowest_text) <= LESSON_TEXT_CHARS else share.lowest_text[: LESSON_TEXT_CHARS - 1] + "…"
    return _(LESSON_ANSWER).format(
        run=escape_markdown(run.name),
        above=share.above,
        n=share.n,
        share=share.fraction,
        layer=layer,
        head=head,
        threshold=share.threshold,
        lowest=share.lowest,
        text=escape_markdown(text),
    )


def open_corpus(model_id: str, layer: int, head: int) -> None:
    """The lesson's link: the corpus view's head atlas of the share on the previous token, at this head."""
    session = st.session_state
    session[state.key("view")] = KEY
    session[state.key("model")] = model_id
    session[state.key("layer", "")] = layer
    session[state.key("head", "")] = head
    session[state.key("part", "")] = "atlas"
    session[state.key("measure", "")] = "previous"


def lesson_question(model_id: str, layer: int, head: int, revealed: bool) -> None:
    """The lesson's last step asks the class a question only the corpus can answer, and links to the view that does."""
    st.info(_(LESSON_QUESTION), icon=":material/travel_explore:")
    st.button(_("Open the corpus view"), key="lesson-corpus", icon=":material/dataset:", on_click=open_corpus, args=(model_id, layer, head))
    if revealed:
        # Not st.success: the step's own answer, drawn below, is the page's one success box.
        st.info(lesson_answer(model_id, layer, head), icon=":material/lightbulb:")
