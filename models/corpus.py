"""A corpus pass: every head's statistics over thousands of texts, streamed to Parquet tables.

``python -m models corpus --model ID --out DIR`` runs a classifier over a corpus (the AG News test
set by default, or a CSV/TXT file) in batches and writes one run's folder:

- ``texts.parquet``: one row per text: ``text_id`` (0-based, input order), ``text``, ``gold``
  (index into the model's labels, -1 unknown), ``predicted``, ``confidence`` (its probability),
  ``probs``, ``tokens`` (the model's own tokens) and ``special`` ([CLS]/[SEP]-like flags).
- ``heads.parquet``: one row per text × head: ``text_id``, ``layer`` and ``head`` (numbered from
  1, as the page and ``head_table`` number them), one column per statistic of
  ``models.maths.head_stats.head_statistics`` (the stats view's function, on the model's own
  tokens: special rows left out as that view leaves them out), and for exBERT-style search
  ``strongest`` (per query position, the key position it gives its largest weight) and
  ``strongest_weight`` (that weight).
- ``summary.parquet``: one row per head × measure: ``mean`` over the texts where the measure is
  defined, ``texts`` (how many), and ``low``/``high``, a percentile bootstrap 95% interval over
  texts (``scipy.stats.bootstrap``, as ``models.explain.faithfulness.bootstrap_interval``).
- ``vectors.parquet``: a seeded sample of query and key vectors per head in AttentionViz's joint
  space (``joint_space``), one row group per head: ``layer``, ``head``, ``kind`` ("query" or
  "key"), ``text_id``, ``position``, ``token``, ``special``, ``vector``.
- ``run.json``, written last and atomically: what was run, and the SHA-256 of every table
  (``verify_run`` checks them).

Yeh, Chen, Wattenberg, Viégas et al. (2023), "AttentionViz: A Global View of Transformer
Attention" (IEEE VIS), embed a head's queries and keys in one space. Attention depends on them
only through softmax_j(q_i · k_j): adding one vector c to every key adds q_i · c to all of query
i's scores (the softmax is unchanged), and multiplying queries by s and keys by 1/s changes no
product. So, as they do, the keys are translated so that their centroid is the queries' and both
are scaled to the same mean norm; distances in the joint space then compare queries with keys.
Additive (Bahdanau) attention scores tanh(W q + U k), where neither holds: those models get no
vectors (run.json says why).

The sample is fixed before the run (``VectorSample``): a seeded choice of texts, and in each of
them a seeded choice of positions (seeded by the text id), so that both engines, and any batch
size, sample the same tokens. Each head keeps at most ``2 × sample_tokens`` points.

Engines: ``local`` runs ``compute_batch`` in this process; ``ray`` runs the same function in a
Ray Data ``map_batches`` actor pool (``CorpusWorker`` loads the model once per actor), on a local
Ray or on a cluster (``address``). Either way the driver writes the batches in text order with
the same ``RunWriter``, and only one batch of results (and the bounded vector sample) is held.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from models.base import REPO_ROOT, AttentionModel, LensError
from models.data import AG_NEWS_LABELS, DataError
from models.maths.head_stats import STATISTICS, head_statistics

MEASURES = tuple(STATISTICS)
ENGINES = ("local", "ray")
DEFAULT_BATCH = 32
# 5,000 tokens per head (10,000 points with their keys): MiniLM's 72 heads x 10,000 x 32 floats
# are 92 MB, held until the run ends (the centroids need the whole sample).
DEFAULT_SAMPLE_TOKENS = 5_000
MAX_POINTS_PER_HEAD = 20_000
# Positions per sampled text. Fewer per text would cover more contexts, but each sampled text
# costs a forward pass of its own and a projection per head (models.qkv.head_of): on MiniLM
# about as much as predicting it again.
TOKENS_PER_TEXT = 16
SAMPLE_SEED = 0
CONFIDENCE = 0.95
# 1,999 resamples, drawn in chunks of at most RESAMPLED_VALUES values: all 9,999 at once over
# 7,600 texts would hold 600 MB per head and measure, and chunks of 100 over a million texts 800 MB.
RESAMPLES = 1_999
RESAMPLED_VALUES = 4_000_000
BOOTSTRAP_SEED = 0
AG_NEWS_TEST = "ag_news test"
TABLES = ("texts.parquet", "heads.parquet", "summary.parquet", "vectors.parquet")
RUN_FILE = "run.json"


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    return {
        "texts.parquet": pa.schema(
            [
                ("text_id", pa.int64()),
                ("text", pa.string()),
                ("gold", pa.int32()),
                ("predicted", pa.int32()),
                ("confidence", pa.float64()),
                ("probs", pa.list_(pa.float64())),
                ("tokens", pa.list_(pa.string())),
                ("special", pa.list_(pa.bool_())),
            ]
        ),
        "heads.parquet": pa.schema(
            [
                ("text_id", pa.int64()),
                ("layer", pa.int16()),
                ("head", pa.int16()),
                *[(name, pa.float64()) for name in MEASURES],
                ("strongest", pa.list_(pa.int16())),
                ("strongest_weight", pa.list_(pa.float32())),
            ]
        ),
        "summary.parquet": pa.schema(
            [
                ("layer", pa.int16()),
                ("head", pa.int16()),
                ("measure", pa.string()),
                ("mean", pa.float64()),
                ("low", pa.float64()),
                ("high", pa.float64()),
                ("texts", pa.int64()),
            ]
        ),
        "vectors.parquet": pa.schema(
            [
                ("layer", pa.int16()),
                ("head", pa.int16()),
                ("kind", pa.string()),
                ("text_id", pa.int64()),
                ("position", pa.int32()),
                ("token", pa.string()),
                ("special", pa.bool_()),
                ("vector", pa.list_(pa.float32())),
            ]
        ),
    }


# ---------------------------------------------------------------- input


@dataclass(frozen=True)
class Corpus:
    """Texts to run, read in order: ``name`` for run.json, ``count`` texts, gold labels as class names ("" unknown)."""

    name: str
    count: int
    read: Callable[[], Iterator[tuple[str, str]]]

    def rows(self) -> Iterator[tuple[int, str, str]]:
        """(text_id, text, gold class name or "") for the first ``count`` texts."""
        for text_id, (text, gold) in enumerate(self.read()):
            if text_id >= self.count:
                return
            yield text_id, text, gold


def _ag_news(n: int | None) -> Corpus:
    from models.data import load_split

    split = load_split("test", None, n)
    pairs = [(text, AG_NEWS_LABELS[label]) for text, label in zip(split.texts, split.labels)]
    return Corpus(AG_NEWS_TEST, len(pairs), lambda: iter(pairs))


def _csv_rows(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "text" not in columns:
            raise DataError(f"{path} has no 'text' column (its header: {', '.join(columns) or 'none'}); give a CSV with columns text and optionally label")
        try:
            for row in reader:
                text = row.get("text") or ""
                if not text.strip():
                    raise DataError(f"{path}, line {reader.line_num}: the text is empty")
                yield text, (row.get("label") or "").strip()
        except csv.Error as exc:
            raise DataError(f"{path}, line {reader.line_num}: {exc}") from None


def _txt_rows(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            # Blank lines separate nothing and hold no text: they are not texts of the corpus.
            if line.strip():
                yield line.rstrip("\n"), ""


def _counted(path: Path, rows: Callable[[Path], Iterator[tuple[str, str]]]) -> int:
    try:
        return sum(1 for _ in rows(path))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def corpus_of(data: str | Path | None, n: int | None = None) -> Corpus:
    """The AG News test set (``data`` None) or a user's file: CSV with a ``text`` column (and ``label``), or TXT with one text per line.

    A file is read twice, once to count and check it and once to run, so that a million texts
    are never held at once. Raises DataError naming the file and what is wrong with it.
    """
    if n is not None and n < 1:
        raise LensError(f"--n must be at least 1, got {n}")
    if data is None:
        return _ag_news(n)
    path = Path(data)
    readers = {".csv": _csv_rows, ".txt": _txt_rows}
    if path.suffix.lower() not in readers:
        raise DataError(f"--data must be a .csv (columns text and optionally label) or a .txt file (one text per line), got {path}")
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    rows = readers[path.suffix.lower()]
    found = _counted(path, rows)
    if found == 0:
        raise DataError(f"{path} holds no texts")
    return Corpus(str(path), found if n is None else min(n, found), lambda: rows(path))


def gold_index(gold: str, labels: Sequence[str]) -> int:
    """The index of a gold label given as a class name (any case) or a 0-based index; -1 for none."""
    if not gold:
        return -1
    names = [label.casefold() for label in labels]
    if gold.casefold() in names:
        return names.index(gold.casefold())
    if gold.isdigit() and int(gold) < len(labels):
        return int(gold)
    raise DataError(f"label {gold!r} is none of the model's classes ({', '.join(labels)}) nor an index 0-{len(labels) - 1}")


# ---------------------------------------------------------------- the vector sample


@dataclass(frozen=True)
class VectorSample:
    """Which tokens give their query and key vectors: ``texts`` (text ids) and per text a seeded choice of positions."""

    texts: frozenset[int]
    tokens_per_text: int = TOKENS_PER_TEXT
    seed: int = SAMPLE_SEED

    @classmethod
    def choose(cls, count: int, sample_tokens: int, seed: int = SAMPLE_SEED, tokens_per_text: int = TOKENS_PER_TEXT) -> VectorSample:
        if sample_tokens < 0 or 2 * sample_tokens > MAX_POINTS_PER_HEAD:
            raise LensError(
                f"--sample-tokens must be between 0 and {MAX_POINTS_PER_HEAD // 2} (queries and keys: at most {MAX_POINTS_PER_HEAD:,} points per head)"
            )
        wanted = min(count, sample_tokens // tokens_per_text)
        chosen: Iterable[int] = np.random.default_rng(seed).choice(count, size=wanted, replace=False) if wanted else ()
        return cls(frozenset(int(i) for i in chosen), tokens_per_text, seed)

    def positions(self, text_id: int, length: int) -> np.ndarray:
        """The sorted positions sampled from text ``text_id`` of ``length`` tokens (none if it is not sampled)."""
        if text_id not in self.texts:
            return np.zeros(0, dtype=np.int64)
        rng = np.random.default_rng([self.seed, text_id])
        return np.sort(rng.choice(length, size=min(length, self.tokens_per_text), replace=False))

    def record(self) -> dict[str, Any]:
        """For run.json: ``tokens_per_head`` is the most a head can get (texts shorter than ``tokens_per_text`` give fewer)."""
        return {"texts": len(self.texts), "tokens_per_text": self.tokens_per_text, "tokens_per_head": len(self.texts) * self.tokens_per_text, "seed": self.seed}


def joint_space(queries: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AttentionViz's joint query–key space (Yeh et al. 2023, sec. 4.1): keys translated, then both scaled.

    The keys are moved so that their centroid is the queries' centroid (k + c, c = mean q − mean
    k), then queries are multiplied and keys divided by s = √(mean ‖k + c‖ / mean ‖q‖), which
    makes their mean norms equal. q·(k + c)/1 = q·k + q·c shifts all of one query's scores by the
    same amount and (s q)·(k / s) = q·k: every query's softmax over the keys is unchanged.
    """
    queries = np.asarray(queries, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)
    if not len(queries) or not len(keys):
        return queries, keys
    moved = keys + (queries.mean(axis=0) - keys.mean(axis=0))
    query_norm = float(np.linalg.norm(queries, axis=1).mean())
    key_norm = float(np.linalg.norm(moved, axis=1).mean())
    scale = math.sqrt(key_norm / query_norm) if query_norm > 0 and key_norm > 0 else 1.0
    return queries * scale, moved / scale


def vectors_reason(model: AttentionModel) -> str | None:
    """None if the model's heads have queries and keys in one dot-product space, else why not."""
    from models.qkv import DOT_PRODUCT, kind_of, supports_qkv

    reason = supports_qkv(model)
    if reason is not None:
        return reason
    if kind_of(model) != DOT_PRODUCT:
        return "additive (Bahdanau) attention scores tanh(W q + U k): its queries and keys share no dot-product space to embed"
    return None


# ---------------------------------------------------------------- one batch


@dataclass
class BatchTables:
    """One batch's rows of texts.parquet and heads.parquet, and its raw (untranslated) vector sample."""

    texts: Any
    heads: Any
    vectors: Any
    layers: int = 0
    heads_per_layer: int = 0
    labels: tuple[str, ...] = ()
    no_vectors: str = ""  # why the model gives none (``vectors_reason``), "" when it does

    def to_bytes(self) -> dict[str, Any]:
        """Arrow IPC streams of the three tables, for a Ray Data row (one row per batch)."""
        record = {name: _ipc(getattr(self, name)) for name in ("texts", "heads", "vectors")}
        return {**record, "shape": json.dumps([self.layers, self.heads_per_layer, list(self.labels), self.no_vectors])}

    @classmethod
    def from_bytes(cls, record: dict[str, Any]) -> BatchTables:
        import pyarrow as pa

        layers, heads, labels, no_vectors = json.loads(record["shape"])
        tables = {name: pa.ipc.open_stream(pa.py_buffer(bytes(record[name]))).read_all() for name in ("texts", "heads", "vectors")}
        return cls(tables["texts"], tables["heads"], tables["vectors"], layers, heads, tuple(labels), no_vectors)


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return sink.getvalue()


def compute_batch(model: AttentionModel, text_ids: Sequence[int], texts: Sequence[str], golds: Sequence[str], sample: VectorSample) -> BatchTables:
    """The model's prediction, head statistics, strongest keys and sampled q/k vectors for one batch of texts.

    The one function both engines run: the tables are the same whatever runs it.
    """
    import pyarrow as pa

    from models.qkv import head_of

    schemas = _schemas()
    predictions = model.predict_batch(list(texts))
    text_rows: dict[str, list] = {name: [] for name in schemas["texts.parquet"].names}
    head_rows: dict[str, list] = {name: [] for name in schemas["heads.parquet"].names}
    vector_rows: dict[str, list] = {name: [] for name in schemas["vectors.parquet"].names}
    reason = vectors_reason(model)
    embeddable = reason is None
    layers = heads = 0
    for text_id, text, gold, prediction in zip(text_ids, texts, golds, predictions):
        if prediction.is_seq2seq:
            raise LensError(f"{prediction.model} generates text; the corpus pass is for classifiers")
        probs = np.asarray(prediction.probs, dtype=np.float64)
        predicted = int(probs.argmax())
        for name, value in (
            ("text_id", int(text_id)),
            ("text", text),
            ("gold", gold_index(gold, prediction.labels)),
            ("predicted", predicted),
            ("confidence", float(probs[predicted])),
            ("probs", probs.tolist()),
            ("tokens", list(prediction.source_tokens)),
            ("special", list(prediction.source_special)),
        ):
            text_rows[name].append(value)
        attentions = np.asarray(prediction.attentions)
        layers, heads = attentions.shape[:2]
        stats = head_statistics(attentions, prediction.source_special, prediction.target_special, self_attention=prediction.self_attention)
        strongest = attentions.argmax(axis=-1)
        strongest_weight = attentions.max(axis=-1).astype(np.float32)
        for layer in range(layers):
            for head in range(heads):
                head_rows["text_id"].append(int(text_id))
                head_rows["layer"].append(layer + 1)
                head_rows["head"].append(head + 1)
                for name in MEASURES:
                    head_rows[name].append(float(stats[name][layer, head]))
                head_rows["strongest"].append(strongest[layer, head].astype(np.int16))
                head_rows["strongest_weight"].append(strongest_weight[layer, head])
        positions = sample.positions(int(text_id), len(prediction.source_tokens)) if embeddable else ()
        for layer in range(layers if len(positions) else 0):
            for head in range(heads):
                found = head_of(model, text, layer, head, prediction)
                if found.real != len(prediction.source_tokens):
                    raise LensError(f"{prediction.model}: the rebuilt head has {found.real} tokens, the prediction {len(prediction.source_tokens)}")
                for kind, vectors in (("query", found.queries), ("key", found.keys)):
                    for position in positions:
                        for name, value in (
                            ("layer", layer + 1),
                            ("head", head + 1),
                            ("kind", kind),
                            ("text_id", int(text_id)),
                            ("position", int(position)),
                            ("token", prediction.source_tokens[position]),
                            ("special", prediction.source_special[position]),
                            ("vector", np.asarray(vectors[position], dtype=np.float32)),
                        ):
                            vector_rows[name].append(value)
    return BatchTables(
        pa.Table.from_pydict(text_rows, schema=schemas["texts.parquet"]),
        pa.Table.from_pydict(head_rows, schema=schemas["heads.parquet"]),
        pa.Table.from_pydict(vector_rows, schema=schemas["vectors.parquet"]),
        layers,
        heads,
        tuple(predictions[0].labels) if predictions else (),
        reason or "",
    )


# ---------------------------------------------------------------- writing a run


def bootstrap_interval(values: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap ``CONFIDENCE`` interval of the mean of ``values`` (NaN, NaN for fewer than two).

    The definition of ``models.explain.faithfulness.bootstrap_interval`` (scipy, percentile,
    seeded), with ``RESAMPLES`` resamples drawn a few at a time (``RESAMPLED_VALUES``) so that memory
    does not grow with the number of texts times the resamples.
    """
    from scipy.stats import bootstrap

    if values.size < 2:
        return math.nan, math.nan
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    result = bootstrap(
        (values,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        batch=max(1, min(RESAMPLES, RESAMPLED_VALUES // values.size)),
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarise(heads_path: Path, layers: int, heads: int) -> Any:
    """summary.parquet's table from heads.parquet, reading one head's rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list] = {name: [] for name in _schemas()["summary.parquet"].names}
    for layer in range(1, layers + 1):
        for head in range(1, heads + 1):
            table = pq.read_table(heads_path, columns=list(MEASURES), filters=[("layer", "=", layer), ("head", "=", head)])
            for name in MEASURES:
                values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
                values = values[np.isfinite(values)]
                low, high = bootstrap_interval(values)
                for key, value in (
                    ("layer", layer),
                    ("head", head),
                    ("measure", name),
                    ("mean", float(values.mean()) if values.size else math.nan),
                    ("low", low),
                    ("high", high),
                    ("texts", int(values.size)),
                ):
                    rows[key].append(value)
    return pa.Table.from_pydict(rows, schema=_schemas()["summary.parquet"])


def _tmp(out_dir: Path, name: str) -> Path:
    return out_dir / f".tmp-{name}"


class RunWriter:
    """Writes one run's tables in ``out_dir``, a batch at a time, each under a temporary name until ``finish``.

    A previous run's run.json is removed first: until the new one is written, the folder holds
    no complete run for a reader to trust.
    """

    def __init__(self, out_dir: Path):
        import pyarrow.parquet as pq

        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / RUN_FILE).unlink(missing_ok=True)
        schemas = _schemas()
        self._writers = {name: pq.ParquetWriter(_tmp(self.out_dir, name), schemas[name]) for name in ("texts.parquet", "heads.parquet")}
        self._vectors: dict[tuple[int, int], list[Any]] = {}
        self.next_id = 0
        self.layers = self.heads = 0
        self.labels: tuple[str, ...] = ()
        self.no_vectors = ""
        self.points_per_head = 0

    def add(self, batch: BatchTables) -> None:
        ids = batch.texts.column("text_id").to_pylist()
        if ids != list(range(self.next_id, self.next_id + len(ids))):
            raise RuntimeError(f"batch of texts {ids[:1]}..{ids[-1:]} arrived out of order (expected {self.next_id} next)")
        self.next_id += len(ids)
        if not ids:
            return
        self.layers, self.heads, self.labels, self.no_vectors = batch.layers, batch.heads_per_layer, batch.labels, batch.no_vectors
        self._writers["texts.parquet"].write_table(batch.texts)
        self._writers["heads.parquet"].write_table(batch.heads)
        if batch.vectors.num_rows:
            import pyarrow.compute as pc

            for layer in range(1, batch.layers + 1):
                for head in range(1, batch.heads_per_layer + 1):
                    mask = pc.and_(pc.equal(batch.vectors["layer"], layer), pc.equal(batch.vectors["head"], head))
                    self._vectors.setdefault((layer, head), []).append(batch.vectors.filter(mask))

    def _write_vectors(self, path: Path) -> None:
        """One row group per head: queries then keys, in AttentionViz's joint space (``joint_space``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schemas()["vectors.parquet"]
        with pq.ParquetWriter(path, schema) as writer:
            written = False
            for layer, head in sorted(self._vectors):
                table = pa.concat_tables(self._vectors.pop((layer, head)))
                kinds = np.asarray(table.column("kind").to_pylist())
                vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
                queries, keys = joint_space(vectors[kinds == "query"], vectors[kinds == "key"])
                ordered = pa.concat_tables([table.filter(pa.array(kinds == "query")), table.filter(pa.array(kinds == "key"))])
                moved = np.concatenate([queries, keys]).astype(np.float32)
                offsets = pa.array(np.arange(0, moved.size + 1, moved.shape[1], dtype=np.int32))
                column = pa.ListArray.from_arrays(offsets, pa.array(moved.ravel()))
                writer.write_table(ordered.set_column(ordered.schema.get_field_index("vector"), "vector", column))
                self.points_per_head = max(self.points_per_head, len(moved))
                written = True
            if not written:
                writer.write_table(schema.empty_table())

    def finish(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Close the tables, write the summary and the vectors, rename them into place, then write run.json."""
        from models.io import atomic_write_json, sha256

        for writer in self._writers.values():
            writer.close()
        if self.next_id == 0:
            raise LensError("no texts were run")
        import pyarrow.parquet as pq

        pq.write_table(summarise(_tmp(self.out_dir, "heads.parquet"), self.layers, self.heads), _tmp(self.out_dir, "summary.parquet"))
        self._write_vectors(_tmp(self.out_dir, "vectors.parquet"))
        for name in TABLES:
            os.replace(_tmp(self.out_dir, name), self.out_dir / name)
        record = {
            **meta,
            "n": self.next_id,
            "labels": list(self.labels),
            "layers": self.layers,
            "heads": self.heads,
            "numbering": "layer and head from 1; text_id and positions from 0",
            "measures": list(MEASURES),
            "vector_sample": {**meta.get("vector_sample", {}), "points_per_head": self.points_per_head},
            "files": {name: sha256(self.out_dir / name) for name in TABLES},
        }
        atomic_write_json(self.out_dir / RUN_FILE, record)
        return record

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.close()
        for name in TABLES:
            _tmp(self.out_dir, name).unlink(missing_ok=True)


def verify_run(out_dir: Path) -> dict[str, Any]:
    """run.json of the run in ``out_dir`` after checking every table's SHA-256; LensError naming the file otherwise."""
    from models.io import read_json, sha256

    out_dir = Path(out_dir)
    remedy = f"rerun `python -m models corpus --model ID --out {out_dir}`"
    record = read_json(out_dir / RUN_FILE, remedy)
    for name, digest in record.get("files", {}).items():
        path = out_dir / name
        if not path.is_file():
            raise LensError(f"{path} is missing; {remedy}")
        if sha256(path) != digest:
            raise LensError(f"{path} does not match its SHA-256 in run.json (changed or damaged); {remedy}")
    return record


# ---------------------------------------------------------------- engines


def _batches(corpus: Corpus, size: int) -> Iterator[list[tuple[int, str, str]]]:
    batch: list[tuple[int, str, str]] = []
    for row in corpus.rows():
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _local(model: AttentionModel, corpus: Corpus, size: int, sample: VectorSample) -> Iterator[BatchTables]:
    for batch in _batches(corpus, size):
        ids, texts, golds = zip(*batch)
        yield compute_batch(model, ids, texts, golds, sample)


class CorpusWorker:
    """A Ray Data actor: loads the model once, then runs ``compute_batch`` on each batch it is given."""

    def __init__(self, model_id: str, sample: VectorSample):
        from models import registry

        self.model = registry.load(model_id)
        self.sample = sample

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = [int(i) for i in batch["text_id"]]
        golds = [str(g) for g in batch["gold"]]
        try:
            record = {**compute_batch(self.model, ids, [str(t) for t in batch["text"]], golds, self.sample).to_bytes(), "error": ""}
        except LensError as exc:
            # Sent back as data: Ray wraps a worker's exception and its cause does not survive the trip.
            record = {"texts": b"", "heads": b"", "vectors": b"", "shape": "", "error": str(exc)}
        return {name: np.array([value], dtype=object) for name, value in record.items()}


def _ray(model_id: str, corpus: Corpus, size: int, sample: VectorSample, address: str | None, workers: int | None) -> Iterator[BatchTables]:
    """``compute_batch`` through Ray Data ``map_batches`` on an actor pool (``models.ray_engine``), results in text order.

    The driver never loads the model: each actor does, once.
    """
    from models import ray_engine

    with ray_engine.session(address) as ray:
        items = [{"text_id": i, "text": t, "gold": g} for i, t, g in corpus.rows()]
        dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / size)))
        results = dataset.map_batches(
            CorpusWorker,
            fn_constructor_kwargs={"model_id": model_id, "sample": sample},
            batch_size=size,
            batch_format="numpy",
            concurrency=ray_engine.actors(ray, workers),
            num_cpus=1,
        )
        for record in results.iter_rows():
            if record["error"]:
                raise LensError(str(record["error"]))
            yield BatchTables.from_bytes(record)


# ---------------------------------------------------------------- the command


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def _versions(engine: str) -> dict[str, str]:
    import platform

    versions = {"python": platform.python_version()}
    for name in ("tensorflow-cpu", "keras", "transformers", "numpy", "pyarrow", "scipy", *(("ray",) if engine == "ray" else ())):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class Progress:
    """Texts done, with texts per second and the time left, on one line of stderr."""

    total: int
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, done: int) -> None:
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else math.nan
        eta = f", {left:.0f} s left" if math.isfinite(left) and done < self.total else ""
        end = "\n" if done >= self.total else ""
        print(f"\r{done}/{self.total} texts, {rate:.1f} texts/s{eta}   ", end=end, file=sys.stderr, flush=True)


def run_corpus(
    model_id: str,
    texts: Iterable[str] | None,
    out_dir: str | Path,
    *,
    engine: str = "local",
    labels: Sequence[str] | None = None,
    data: str | Path | None = None,
    n: int | None = None,
    batch: int = DEFAULT_BATCH,
    sample_tokens: int = DEFAULT_SAMPLE_TOKENS,
    address: str | None = None,
    workers: int | None = None,
    model: AttentionModel | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run ``model_id`` over a corpus into ``out_dir`` and return run.json's record.

    The corpus is ``texts`` (with optional gold ``labels``, class names or indices) when given,
    else ``data`` (a CSV/TXT path, or None for the AG News test set), cut to the first ``n``.
    ``model`` reuses a loaded model for the local engine (tests); Ray actors load their own.
    """
    from models import registry

    if engine not in ENGINES:
        raise LensError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if batch < 1:
        raise LensError(f"--batch must be at least 1, got {batch}")
    found = registry.entry(model_id)
    if found.kind != "classifier":
        raise LensError(
            f"{model_id} generates text rather than classifying it; the corpus pass runs classifiers ({', '.join(m for m in registry.available() if registry.entry(m).kind == 'classifier')})"
        )
    if texts is not None:
        given = list(texts)[:n] if n is not None else list(texts)
        golds = [str(g) for g in labels] if labels is not None else [""] * len(given)
        if len(golds) != len(given):
            raise LensError(f"{len(golds)} labels for {len(given)} texts")
        if not given:
            raise LensError("no texts to run")
        pairs = list(zip(given, golds))
        corpus = Corpus("texts given", len(pairs), lambda: iter(pairs))
    else:
        corpus = corpus_of(data, n)
    sample = VectorSample.choose(corpus.count, sample_tokens)
    started, created = time.perf_counter(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if engine == "local":
        batches = _local(model or registry.load(model_id), corpus, batch, sample)
    else:
        batches = _ray(model_id, corpus, batch, sample, address, workers)
    report = progress or Progress(corpus.count)
    writer = RunWriter(Path(out_dir))
    try:
        for tables in batches:
            writer.add(tables)
            report(writer.next_id)
        seconds = time.perf_counter() - started
        meta = {
            "model": model_id,
            "data": corpus.name,
            "engine": engine,
            "address": address,
            "batch": batch,
            "created": created,
            "commit": _commit(),
            "versions": _versions(engine),
            "seconds": round(seconds, 3),
            "texts_per_second": round(corpus.count / seconds, 3) if seconds > 0 else None,
            "vector_sample": {
                **sample.record(),
                "space": "AttentionViz joint space: keys translated to the queries' centroid, both scaled to equal mean norm",
                **({"none": writer.no_vectors} if writer.no_vectors else {}),
            },
            "bootstrap": {"method": "percentile", "confidence": CONFIDENCE, "resamples": RESAMPLES, "seed": BOOTSTRAP_SEED},
        }
        return writer.finish(meta)
    except BaseException:
        writer.abort()
        raise
