"""``python -m models``: the names and JSON keys other tools rely on, and one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import registry
from models.__main__ import main
from models.base import LensError

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args):
    """The CLI as a user runs it, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "models", *args], cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300
    )


def test_list_prints_every_registered_model_with_its_description():
    result = run_cli("list")
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == list(registry.available())
    assert all(len(line.split("\t")) == 2 and line.split("\t")[1] for line in lines)


def test_predict_json_emits_one_object_per_text(capsys, shipped_model):
    assert main(["predict", "--model", "keras-transformer", "--json", "Stocks fall", "Team wins the cup"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 2
    keys = {"model", "labels", "probs", "source_tokens", "target_tokens", "attention_shape", "output", "self_attention", "readout"}
    assert set(records[0]) == keys
    assert records[1]["source_tokens"] == ["team", "wins", "the", "cup"]
    assert records[1]["attention_shape"] == [1, 2, 4, 4]
    assert records[1]["output"] is None
    assert records[1]["self_attention"] is True and records[1]["readout"] == shipped_model("keras-transformer").readout


def test_evaluate_json_has_the_report_keys(capsys, tiny_ag_news):
    assert main(["evaluate", "--model", "keras-transformer", "--json", "--data", str(tiny_ag_news), "--limit", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"model", "accuracy", "per_class", "n"}
    assert report["n"] == 8 and set(report["per_class"]) == {"World", "Sports", "Business", "Sci/Tech"}


def test_write_metrics_refuses_a_partial_test_set(capsys, tiny_ag_news):
    assert main(["evaluate", "--model", "keras-transformer", "--data", str(tiny_ag_news), "--limit", "8", "--write-metrics"]) == 2
    assert "whole test set" in capsys.readouterr().err


USER_ERRORS = [
    (("predict", "--model", "no-such-model", "hi"), "unknown model 'no-such-model'"),
    (("predict", "--model", "keras-transformer", "   "), "the text is empty"),
    (("evaluate", "--model", "keras-transformer", "--data", "/nonexistent"), "AG News test data not found"),
    (("predict", "--model", "keras-transformer", "--ablate", "1:3", "hi there"), "there is no head 1:3"),
    (("predict", "--model", "keras-transformer", "--ablate", "one:two", "hi there"), "'one:two' is not a head"),
    (("predict", "--model", "bahdanau-rnn", "--ablate", "1:1", "hi there"), "use uniform attention instead"),
    (("faithfulness", "--model", "bahdanau-dates", "--n", "2"), "generates text"),
    (("seal", "keras-transformer", "--assets", "/nonexistent"), "is not a folder"),
]


@pytest.mark.parametrize("args, message", USER_ERRORS)
def test_user_errors_exit_2_with_one_error_line(capsys, args, message):
    """In this process: ``main`` returns 2 after one "error:" line; an exception it let through would fail the test."""
    assert main(list(args)) == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        USER_ERRORS[0],  # refused before TensorFlow is imported
        # After a model is loaded, so with TensorFlow's start-up output: 4.5-7 s in a fresh interpreter.
        pytest.param(*USER_ERRORS[1], marks=pytest.mark.slow),
    ],
)
def test_user_errors_exit_non_zero_with_one_line_and_no_traceback(args, message):
    """The same as a user sees it: a fresh interpreter's exit status and everything on its stderr."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_predict_with_heads_off_reports_them_and_moves_the_probabilities(capsys, shipped_model):
    text = "Federer beats Nadal to reach the final"
    assert main(["predict", "--model", "keras-transformer", "--json", text]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["predict", "--model", "keras-transformer", "--ablate", "1:2,1:1", "--json", text]) == 0
    ablated = json.loads(capsys.readouterr().out)
    assert ablated["heads_off"] == "1:1,1:2" and "heads_off" not in plain
    assert ablated["source_tokens"] == plain["source_tokens"]
    # 1-based on the command line: "1:2" alone is the second head of the only layer.
    assert main(["predict", "--model", "keras-transformer", "--ablate", "1:2", "--json", text]) == 0
    second_off = json.loads(capsys.readouterr().out)
    model = shipped_model("keras-transformer")
    # The JSON rounds probabilities to 6 decimals.
    np.testing.assert_allclose(plain["probs"], model.predict(text).probs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ablated["probs"], model.predict_with_head_mask(text, np.array([[0.0, 0.0]], np.float32)).probs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(second_off["probs"], model.predict_with_head_mask(text, np.array([[1.0, 0.0]], np.float32)).probs, rtol=0, atol=1e-6)


def test_predict_with_uniform_attention_for_the_rnn(capsys):
    assert main(["predict", "--model", "bahdanau-rnn", "--uniform", "Stocks fall as oil climbs"]) == 0
    assert "note: attention replaced by uniform weights over the words" in capsys.readouterr().out


def test_faithfulness_json_has_model_n_and_every_method(capsys, tiny_ag_news):
    assert main(["faithfulness", "--model", "keras-transformer", "--n", "3", "--data", str(tiny_ag_news), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["model"] == "keras-transformer" and report["n"] == 3
    methods = set(report) - {"model", "n", "normalized", "bootstrap"}
    assert {"attention", "integrated_gradients", "occlusion", "random"} <= methods
    measures = ("comprehensiveness", "sufficiency", "normalized_comprehensiveness", "normalized_sufficiency")
    assert all(set(report[name]) == {*measures, *(f"{m}_ci" for m in measures), "seconds"} for name in methods)
    assert "3/3 texts" in captured.err


def test_faithfulness_table_names_the_method_followed_best(capsys, tiny_ag_news):
    assert main(["faithfulness", "--model", "keras-transformer", "--n", "2", "--data", str(tiny_ag_news)]) == 0
    out = capsys.readouterr().out
    assert "comprehensiveness" in out and "sufficiency" in out and "followed best" in out and "completeness gap median" in out


def test_seal_records_a_folders_checksums_so_that_it_loads(capsys, tmp_path, shipped_model):
    import shutil

    folder = tmp_path / "keras-transformer"
    shutil.copytree(registry.entry("keras-transformer").asset_dir, folder)
    (folder / "checksums.json").unlink()
    with pytest.raises(LensError, match=r"checksums\.json is missing"):
        registry.load("keras-transformer", folder)
    assert main(["seal", "keras-transformer", "--assets", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "weights.weights.h5" in printed and "metrics.json" not in printed
    # Sealing the shipped files records the shipped sums, and the folder then serves the shipped model.
    shipped = registry.entry("keras-transformer").asset_dir
    assert json.loads((folder / "checksums.json").read_text()) == json.loads((shipped / "checksums.json").read_text())
    text = "Oil prices climb"
    np.testing.assert_array_equal(registry.load("keras-transformer", folder).predict(text).probs, shipped_model("keras-transformer").predict(text).probs)
