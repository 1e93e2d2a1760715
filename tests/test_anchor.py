"""The PyTorch anchor's results reach the README as measured, and the app itself never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import readme
from bench.readme import Sources, load_sources

ROOT = Path(__file__).resolve().parent.parent


def timing(median: float) -> dict:
    return {"median": median, "p25": median - 1.0, "p75": median + 1.0}


def anchor_row(tokens: int, tf_ms: float, predict_ms: float, torch_ms: float) -> dict:
    return {
        "requested_tokens": tokens,
        "tokens": tokens,
        "repeats": 20,
        "tensorflow_forward_ms": timing(tf_ms),
        "tensorflow_predict_ms": timing(predict_ms),
        "pytorch_forward_ms": timing(torch_ms),
        "tensorflow_forward_cpu_ms": timing(tf_ms * 1.5),
        "tensorflow_predict_cpu_ms": timing(predict_ms * 1.5),
        "pytorch_forward_cpu_ms": timing(torch_ms * 1.8),
        "ratio_forward": round(tf_ms / torch_ms, 3),
        "ratio_predict": round(predict_ms / torch_ms, 3),
        "max_abs_attention_difference": 2e-6 * tokens / 16,
        "load_average_1min": {"before": 1.2, "after": 1.4},
    }


def table_rows(block: str) -> list[list[str]]:
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if not set(line) <= {"|", "-"}]


def test_anchor_table_shows_each_length_as_measured():
    result = {
        "lengths": [anchor_row(16, 9.0, 10.0, 12.0), anchor_row(512, 180.0, 230.0, 120.0)],
        "tensorflow": {"intra_op": 0, "inter_op": 0},
        "pytorch": {"torch": "2.13.0+cpu", "transformers": "4.54.1", "threads": 2},
        "versions": {"tensorflow-cpu": "2.21.0"},
        "cpus": 2,
        "timestamp": "2026-12-06T19:00:00+00:00",
        "app": {"commit": "abcdef0123", "uncommitted_changes": False},
    }
    block = readme.anchor_table(Sources(results={"anchor.json": result}, assets={}, asset_bytes={}))
    header, *rows = table_rows(block)
    assert [row[0] for row in rows] == ["16", "512"]
    ratio, predict = header.index("ratio"), header.index("`predict` (ratio)")
    # 9 / 12 and 180 / 120: the ratio is TensorFlow's median over PyTorch's, not the other way round.
    assert [row[ratio] for row in rows] == ["**0.75×**", "**1.50×**"]
    assert rows[1][predict] == "230.0 ms (1.92×)"
    assert rows[1][header.index("PyTorch forward")] == "120.0 ms"
    assert rows[0][header.index("load average")] == "1.2 → 1.4"
    assert "at most 6.4e-05" in block and "(intra-op threads: one per core)" in block and "2026-12-06, abcdef0" in block


def test_readme_anchor_block_is_bench_results_anchor_json():
    text = readme.README.read_text(encoding="utf-8")
    start, end = "<!-- generated: anchor -->\n", "\n<!-- /generated: anchor -->"
    shown = text[text.index(start) + len(start) : text.index(end)]
    assert shown == readme.anchor_table(load_sources())


# Every module a page or the command line may import, then the MiniLM family's load and forward
# pass, with a torch that is "installed" (transformers sees its metadata) but fails on import.
NO_TORCH = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    for package in ("models", "views", "viz"):
        for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            importlib.import_module(module.name)
    importlib.import_module("app")
    from models import registry
    print(registry.load("minilm-agnews").predict("Stocks rallied on Friday.").predicted_label)
    assert "torch" not in sys.modules
    """
)


@pytest.mark.slow
def test_the_app_never_imports_torch_even_when_it_is_installed(tmp_path):
    fake = tmp_path / "site"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text('raise ImportError("the app imported torch")\n')
    (fake / "torch-2.13.0.dist-info").mkdir()
    (fake / "torch-2.13.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\n")
    env = {
        **{key: value for key, value in os.environ.items() if key not in ("USE_TF", "USE_TORCH")},
        "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    # The stand-in is really found: the check below cannot pass for want of a torch to import.
    found = subprocess.run([sys.executable, "-c", "import torch"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "the app imported torch" in found.stderr
    run = subprocess.run([sys.executable, "-c", NO_TORCH], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "Business"
