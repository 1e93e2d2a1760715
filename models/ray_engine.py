"""Ray for the dataset-scale commands: a Ray session, and a per-text function mapped over an actor pool in order.

``python -m models corpus|faithfulness|ground-truth --engine ray`` run their per-text work through
Ray Data's ``map_batches`` with an actor pool: each actor loads the model once (``registry.load``)
and applies the command's own per-text function, so the figures are the local engine's. A
LensError in a worker (bad input) comes back as data and is raised again by the driver, one line. Ray is
imported here only, and only for ``--engine ray``: the app never imports it.

Without an address, a local Ray with 2 CPUs is started for the command and stopped after it; its
workers import this repository (``PYTHONPATH``) and run offline like the driver. With an address
(``ray://host:10001``, or ``auto`` on a cluster's head node), every worker must already have the
requirements, this repository and its ``assets/`` (README, "On a Ray cluster").
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from models.base import REPO_ROOT, LensError

LOCAL_CPUS = 2
# Variables the local Ray's workers need from the driver: offline hub, quiet TensorFlow, the data.
PASSED_ENVIRONMENT = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TF_CPP_MIN_LOG_LEVEL", "AG_NEWS_DIR", "OPENBLAS_NUM_THREADS")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise LensError("--engine ray needs Ray: pip install -r requirements.txt (it pins ray[data])") from None
    return ray


@contextlib.contextmanager
def session(address: str | None) -> Iterator[Any]:
    """The ``ray`` module with Ray running: the cluster at ``address``, else a local Ray with ``LOCAL_CPUS`` CPUs.

    A Ray this function started is shut down on exit; one already running is left alone. Ray
    Data keeps the input order and shows no progress bars of its own (the commands print theirs).
    """
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, logging_level="ERROR")
        else:
            passed = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
            ray.init(
                num_cpus=LOCAL_CPUS,
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), **passed}},
            )
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        yield ray
    finally:
        if started:
            ray.shutdown()


def actors(ray: Any, workers: int | None) -> int:
    """How many model actors: ``workers``, else one per CPU Ray has."""
    if workers is not None and workers < 1:
        raise LensError(f"--workers must be at least 1, got {workers}")
    return workers or max(1, int(ray.cluster_resources().get("CPU", 1)))


class Applier:
    """A Ray Data actor: loads the model once, then applies ``function(model, item)`` to each item of a batch."""

    def __init__(self, model_id: str, function: Callable[[Any, Any], Any]):
        from models import registry

        self.model = registry.load(model_id)
        self.function = function

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results, errors = [], []
        for item in batch["item"]:
            try:
                results.append(pickle.dumps(self.function(self.model, pickle.loads(item))))
                errors.append("")
            except LensError as exc:
                # Sent back as data: Ray wraps a worker's exception and its cause does not survive the trip.
                results.append(b"")
                errors.append(str(exc))
        return {"index": batch["index"], "result": np.array(results, dtype=object), "error": np.array(errors, dtype=object)}


def mapper(model_id: str, address: str | None = None, workers: int | None = None) -> Callable[[Callable[[Any, Any], Any], Sequence[Any]], Iterator[Any]]:
    """A ``map(function, items)`` for ``function(model, item)`` that runs on Ray actors, one item per call, results in item order.

    The commands take it in place of their in-process loop: ``function`` must be importable by
    the workers (a module-level function of ``models``) and ``item`` and its result picklable.
    """

    def run(function: Callable[[Any, Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        if not items:
            return
        with session(address) as ray:
            rows = [{"index": index, "item": pickle.dumps(item)} for index, item in enumerate(items)]
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
            results = dataset.map_batches(
                Applier,
                fn_constructor_kwargs={"model_id": model_id, "function": function},
                batch_size=1,
                batch_format="numpy",
                concurrency=actors(ray, workers),
                num_cpus=1,
            )
            for expected, row in enumerate(results.iter_rows()):
                if int(row["index"]) != expected:
                    raise RuntimeError(f"Ray returned item {row['index']} where {expected} was expected")
                if row["error"]:
                    raise LensError(str(row["error"]))
                yield pickle.loads(bytes(row["result"]))

    return run
