"""Texts per second and peak memory of the corpus pass (python -m models corpus), with each engine.

Each engine runs the command in a fresh process on the first N AG News test texts (default: all
7,600, on minilm-agnews), into a temporary folder. Memory is the peak resident memory of that
process and all its descendants, sampled every 0.25 s: with --engine ray that includes the local
Ray's own processes and its model actors, each of which loads the model. Texts per second are
N over the run's own seconds (run.json: model load, every batch, the summary and the vectors), and
the wall time of the whole command (Python, TensorFlow and Ray start-up included) is kept beside it.

    python bench/corpus.py                        # writes bench/results/corpus.json
    python bench/corpus.py --n 500 --out /tmp/corpus.json --engines local
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.server import PYTHON, REPO, RssSampler, app_state, load_average, machine
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "corpus.json"
ENGINES = ("local", "ray")


def run_engine(model: str, n: int, engine: str, batch: int, sample_tokens: int, out_dir: Path) -> dict:
    command = [str(PYTHON), "-m", "models", "corpus", "--model", model, "--n", str(n), "--out", str(out_dir), "--engine", engine, "--batch", str(batch)]
    command += ["--sample-tokens", str(sample_tokens)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    load_before, started = load_average(), time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = RssSampler(process.pid).start()
    out, err = process.communicate()
    sampler.stop()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{err[-2000:]}")
    record = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    print(out.strip(), file=sys.stderr)
    return {
        "engine": engine,
        "n": record["n"],
        "batch": batch,
        "sampled_texts": record["vector_sample"]["texts"],
        "seconds": record["seconds"],
        "texts_per_second": round(record["n"] / record["seconds"], 2),
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": sampler.peak_mb,
        "load_average_1min": {"before": load_before, "after": load_average()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-agnews")
    parser.add_argument("--n", type=int, default=7600, help="texts (default: the whole AG News test set, 7,600)")
    parser.add_argument("--batch", type=int, default=32)
    # Each sampled text costs MiniLM about one more prediction: a short run with the default
    # sample would sample every text, a full run 4% of them.
    parser.add_argument("--sample-tokens", type=int, default=5000, help="as the command's (default 5000: 312 texts of 7,600)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = load_average()
    app = app_state("models", "bench/corpus.py")
    runs = []
    for engine in args.engines:
        with tempfile.TemporaryDirectory(prefix=f"corpus-{engine}-") as folder:
            runs.append(run_engine(args.model, args.n, engine, args.batch, args.sample_tokens, Path(folder)))
        print(f"{engine}: {runs[-1]['texts_per_second']} texts/s, peak {runs[-1]['peak_rss_mb']} MB", file=sys.stderr)
    report = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "app": app,
        "machine": machine(load_before),
        "model": args.model,
        "n": args.n,
        "runs": runs,
    }
    atomic_write_json(args.out, report)
    print(f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
