"""Faults stay local: a damaged model says what is wrong in its own panel, and everything else works.

The checkout is copied to a temporary folder and one file of one model is damaged at a time
(missing, truncated, corrupt, or another model's weights in its place), except the reports below,
which are damaged all at once per model and kind of damage; the copy's pages are
opened with Streamlit's AppTest in one separate process (tests/helpers/fault_pages.py), where
the copy's own ``models`` package, and so its own ``assets``, are imported. Each damaged model is shown side by side with a healthy one,
in either panel; every view is opened on a healthy model beside a damaged one (the views shared
out among the damaged models, each page run costing a second), and the lesson beside each. ``hf:`` checkpoints that cannot be used fail the same way.

Nothing reads ``metrics.json``, ``training.json`` or ``faithfulness.json`` while the app runs
(``grep -rn`` for each name: only ``python -m models evaluate --write-metrics``, ``train`` and
``faithfulness --write`` write them, and tests read them), so damaging them must change nothing
on the page: one page per model and kind of damage shows that none of them is read (a report the
app read would name itself in the damaged panel). That metrics.json is written atomically is
checked on the CLI. Every other file in an asset folder is taken to be read by the app, so a new
file is covered (or must be listed here).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from models.base import ASSETS_DIR, REPO_ROOT
from models.data import SHARED_DIR
from models.io import PROBE_FILES, REPORTS
from models.registry import ALLOW_HF_ENV, REGISTRY

# One worker runs every scenario test, so the driver run behind them (``results``) is made once (conftest).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

COPIED = ("app.py", "models", "views", "viz", "assets", "locales", ".streamlit")
DRIVER = Path(__file__).parent / "helpers" / "fault_pages.py"
INTERRUPT = Path(__file__).parent / "helpers" / "interrupt.py"
PYTHON = sys.executable
# Read by no part of the app at run time (see the module docstring).
NOT_READ_BY_THE_APP = REPORTS
KINDS = ("missing", "truncated", "corrupt")
HEALTHY_BESIDE = {model_id: [other for other in REGISTRY if other != model_id] for model_id in REGISTRY}


def asset_files(model_id: str) -> list[str]:
    return sorted(path.name for path in (ASSETS_DIR / model_id).iterdir() if path.is_file())


def foreign_weights(model_id: str, name: str) -> str | None:
    """Another model's file of the same name (a Keras weights file of another graph), if there is one."""
    others = [other for other in REGISTRY if other != model_id and (ASSETS_DIR / other / name).is_file()]
    return f"assets/{others[0]}/{name}" if name.endswith(".weights.h5") and others else None


def damage_cases() -> list[tuple[str, str, str]]:
    cases = []
    for model_id in REGISTRY:
        for name in asset_files(model_id):
            kinds = ("missing", "corrupt") if name in NOT_READ_BY_THE_APP else KINDS
            cases += [(model_id, name, kind) for kind in kinds]
            if foreign_weights(model_id, name):
                cases.append((model_id, name, "foreign"))
    return cases


DAMAGE = damage_cases()


def scenario_key(model_id: str, name: str, kind: str) -> str:
    """The scenario that damages ``name``: its own, or for a report one that damages all of the model's reports the same way.

    Reloading a model costs seconds, and a model with a damaged report loads in full: one
    scenario per model and kind instead of one per report saves about 20 reloads.
    """
    return f"{model_id}/{'reports' if name in NOT_READ_BY_THE_APP else name}/{kind}"


# In DAMAGE's order: a model's reports are damaged missing, then corrupt, one scenario after the other.
SCENARIO_KEYS = list(dict.fromkeys(scenario_key(*case) for case in DAMAGE))

HF_FAILURES = ("missing folder", "no classification head", "unsupported architecture", "hub name while offline")


# Healthy models for the views opened beside a damaged one, cheapest to compute first: each view
# is opened on the first of these it applies to, else on MiniLM (qkv and attribution on MiniLM
# took 55 s at load 14, most of the views' share of the driver's time).
SMALL_FIRST = ("keras-transformer", "keras-transformer-shortcut", "bahdanau-rnn")


def healthy_model(view, damaged: str, load) -> str:
    """The first of SMALL_FIRST other than ``damaged`` that ``view`` applies to, else a MiniLM model."""
    for model_id in SMALL_FIRST:
        if model_id != damaged:
            model = load(model_id)
            if view.applies(model.predict("Oil prices climb to a record high"), model)[0]:
                return model_id
    # Six layers: what the small models cannot show (MiniLM is not loaded here to ask).
    return "minilm-agnews" if damaged != "minilm-agnews" else "minilm-shortcut"


def views_beside(model_id: str) -> list:
    """The views opened on a healthy model beside damaged ``model_id``: together, every view once."""
    from views import VIEWS

    share = list(REGISTRY).index(model_id)
    return [view for index, view in enumerate(VIEWS) if index % len(REGISTRY) == share]


def damaged_panel(key: str) -> int:
    """Which panel (0 or 1) shows the damaged model in the scenario ``key`` of SCENARIO_KEYS."""
    return SCENARIO_KEYS.index(key) % 2


def text_for(index: int) -> str:
    # A different text per scenario: no prediction cached by an earlier page can stand in.
    return f"Stocks rally as oil prices fall, report {index}"


def weights_file(model_id: str) -> str:
    return next(name for name in asset_files(model_id) if name.endswith((".weights.h5", ".npz")) and name not in PROBE_FILES)


def copy_checkout(folder: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__")
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, folder / name)
    return folder


def make_hf_folders(folder: Path) -> dict[str, str]:
    """The hf: model id of each checkpoint failure."""
    from tests.helpers.checkpoints import make_checkpoint

    headless = make_checkpoint(folder / "encoder-only", head=False)
    gpt2 = folder / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"]}))
    return {
        "missing folder": f"hf:{folder / 'no-such-folder'}",
        "no classification head": f"hf:{headless}",
        "unsupported architecture": f"hf:{gpt2}",
        "hub name while offline": "hf:someone/some-model",
    }


def plan(hf_ids: dict[str, str], load) -> list[dict]:
    from views.lesson_steps import STEPS

    scenarios = []
    for index, key in enumerate(SCENARIO_KEYS):
        cases = [(model_id, name, kind) for model_id, name, kind in DAMAGE if scenario_key(model_id, name, kind) == key]
        model_id, name, kind = cases[0]
        others = HEALTHY_BESIDE[model_id]
        text = text_for(index)
        # The damaged model in the first panel for one kind of damage, in the second for the next:
        # every file has at least two kinds, so each file is seen broken in both panels.
        first = damaged_panel(key) == 0
        query = {"model": model_id, "compare": others[index % len(others)]} if first else {"model": others[index % len(others)], "compare": model_id}
        # A probe file is read by the layers view only (models/probes.py): open that view.
        pages = [{"query": {**query, "text": text, **({"view": "layers"} if name in PROBE_FILES else {})}}]
        damage = [
            {"path": f"assets/{model_id}/{file}", "kind": kind, "source": foreign_weights(model_id, file) if kind == "foreign" else None}
            for _, file, _ in cases
        ]
        scenarios.append({"key": key, "damage": damage, "evict": [model_id], "pages": pages})
    for model_id in REGISTRY:
        # Its share of the views, each on the cheapest healthy model it applies to, beside the
        # damaged one, and the lesson: a step of the damaged model, then one of another model, revealed.
        text = f"Oil prices climb to a record high, report {model_id}"
        pages = [
            {"query": {"model": healthy_model(view, model_id, load), "compare": model_id, "view": view.KEY, "text": text}, "reveal": view.KEY == "lesson"}
            for view in views_beside(model_id)
        ]
        # A model no step uses (the shortcut models) has only the other step to open.
        own = [number for number, step in enumerate(STEPS, start=1) if step.model == model_id][:1]
        other = next(number for number, step in enumerate(STEPS, start=1) if step.model != model_id)
        pages += [{"query": {"view": "lesson", "step": str(number)}} for number in own]
        pages.append({"query": {"view": "lesson", "step": str(other)}, "reveal": True})
        damaged = [{"path": f"assets/{model_id}/{weights_file(model_id)}", "kind": "truncated"}]
        scenarios.append({"key": f"views/{model_id}", "damage": damaged, "evict": [model_id], "pages": pages})
    for failure, model_id in hf_ids.items():
        pages = [{"query": {"model": model_id, "compare": "keras-transformer", "text": text_for(len(scenarios))}}]
        scenarios.append({"key": f"hf/{failure}", "damage": [], "evict": [], "pages": pages})
    return scenarios


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    return copy_checkout(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def results(copy: Path, tmp_path_factory, shipped_model) -> dict[str, list[dict]]:
    """Every scenario's pages, opened by one driver process on the copy."""
    work = tmp_path_factory.mktemp("faults")
    scenarios = plan(make_hf_folders(work), shipped_model)
    plan_file, out = work / "plan.json", work / "results.json"
    plan_file.write_text(json.dumps({"app": str(copy / "app.py"), "out": str(out), "scenarios": scenarios}))
    env = {**os.environ, "PYTHONPATH": str(copy), ALLOW_HF_ENV: "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([PYTHON, str(DRIVER), str(plan_file)], cwd=copy, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(out.read_text())
    return {scenario["key"]: result["pages"] for scenario, result in zip(scenarios, found)}


def assert_one_line_error(panel: dict, *needles: str) -> None:
    assert len(panel["errors"]) == 1, panel
    message = panel["errors"][0]
    assert "\n" not in message.strip(), message
    for needle in needles:
        assert needle in message, message
    assert not panel["answered"]


def assert_working(panel: dict) -> None:
    assert panel["errors"] == [], panel
    assert panel["answered"] and panel["charts"] >= 1, panel


@pytest.mark.parametrize(("model_id", "name", "kind"), DAMAGE, ids=[f"{m}/{n}/{k}" for m, n, k in DAMAGE])
def test_a_damaged_file_is_named_in_its_own_panel_and_the_other_panel_works(results, model_id, name, kind):
    key = scenario_key(model_id, name, kind)
    (page,) = results[key]
    assert page["exceptions"] == [], page
    assert len(page["panels"]) == 2, page
    side = damaged_panel(key)
    damaged, beside = page["panels"][side], page["panels"][1 - side]
    if name in PROBE_FILES:
        # The model still answers; its layers view names the command that remakes the probes
        # (a missing file: "no probes yet"; a damaged one: an error naming the file too). The
        # healthy model beside may be one the layers view does not apply to: it says so.
        assert beside["answered"] and beside["errors"] == [] and (beside["charts"] >= 1 or beside["infos"]), beside
        messages = damaged["errors"] + damaged["infos"]
        assert damaged["answered"] and len(messages) == 1 and f"python -m models train-probes {model_id}" in messages[0], damaged
        assert kind == "missing" or (damaged["errors"] and f"assets/{model_id}/{name}" in messages[0]), damaged
        return
    assert_working(beside)
    if name in NOT_READ_BY_THE_APP:
        assert_working(damaged)
        return
    assert_one_line_error(damaged, f"assets/{model_id}/{name}", f"python -m models train {model_id}")


def test_every_file_is_damaged_in_both_panels():
    panels = {}
    for model_id, name, kind in DAMAGE:
        panels.setdefault((model_id, name), set()).add(damaged_panel(scenario_key(model_id, name, kind)))
    assert all(sides == {0, 1} for sides in panels.values()), panels


def test_every_view_is_opened_beside_a_damaged_model():
    from views import VIEWS

    opened = [view.KEY for model_id in REGISTRY for view in views_beside(model_id)]
    assert sorted(opened) == sorted(view.KEY for view in VIEWS)


@pytest.mark.parametrize("model_id", list(REGISTRY))
def test_every_view_and_the_lesson_work_beside_a_damaged_model(results, model_id):
    from views.lesson_steps import STEPS

    pages = results[f"views/{model_id}"]
    broken = f"assets/{model_id}/{weights_file(model_id)}"
    views = views_beside(model_id)
    for view, page in zip(views, pages[: len(views)], strict=True):
        assert page["exceptions"] == [], (view.KEY, page)
        if getattr(view, "WHOLE_PAGE", False):
            # The lesson takes the page over with the first model only (app.py): the damaged
            # second model is not on it; the lesson's own steps with it follow below.
            (healthy,) = page["panels"]
        else:
            healthy, damaged = page["panels"]
            assert_one_line_error(damaged, broken)
        assert healthy["errors"] == [], (view.KEY, healthy)
        # The view draws, or says why it does not apply to this model.
        assert healthy["answered"] and (healthy["charts"] >= 2 or healthy["infos"]), (view.KEY, healthy)
    *own_step, other_step = pages[len(views) :]
    assert len(own_step) == any(step.model == model_id for step in STEPS)
    for page in (*own_step, other_step):
        assert page["exceptions"] == [], page
    for page in own_step:
        assert_one_line_error(page["panels"][0], broken)
    assert_working(other_step["panels"][0])


@pytest.mark.parametrize("failure", HF_FAILURES)
def test_an_unusable_hf_checkpoint_fails_in_its_panel_only(results, failure):
    (page,) = results[f"hf/{failure}"]
    assert page["exceptions"] == [], page
    checkpoint, healthy = page["panels"]
    assert_one_line_error(checkpoint)
    assert_working(healthy)


def frozen(process: subprocess.Popen, timeout: float) -> bool:
    """Wait until ``process`` has stopped itself (SIGSTOP) or exited; True if it stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if psutil.Process(process.pid).status() == psutil.STATUS_STOPPED:
            return True
        time.sleep(0.05)
    raise AssertionError(f"{process.args} neither stopped nor exited within {timeout:.0f} s")


def test_evaluate_writes_metrics_atomically(copy: Path, tmp_path: Path):
    """Killed with the new metrics complete but not yet renamed, the old file is intact; a full run replaces it.

    One run does both: it is stopped just before the rename and its folder copied (what a
    SIGKILL there leaves: a killed process runs no more code and the kernel keeps its writes),
    then continued to the end.
    """
    metrics = copy / "assets" / "bahdanau-dates" / "metrics.json"
    old, old_inode = metrics.read_bytes(), metrics.stat().st_ino
    env = {**os.environ, "PYTHONPATH": str(copy), "AG_NEWS_DIR": str(SHARED_DIR), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = ["evaluate", "--model", "bahdanau-dates", "--write-metrics", "--json"]
    process = subprocess.Popen(
        [PYTHON, str(INTERRUPT), "before:metrics.json", *command], cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert frozen(process, timeout=300), process.communicate()[1][-2000:]
        killed_here = shutil.copytree(metrics.parent, tmp_path / "killed")
        process.send_signal(signal.SIGCONT)
        out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    assert (killed_here / "metrics.json").read_bytes() == old
    leftovers = [path.name for path in killed_here.iterdir() if path.name.startswith(".tmp-")]
    # The killed run's finished temporary file stays behind under a name no loader reads.
    assert [name.endswith("-metrics.json") for name in leftovers] == [True]

    assert process.returncode == 0, err[-2000:]
    written, shipped = json.loads(metrics.read_text()), json.loads(old)
    printed = json.loads(out.strip().splitlines()[-1])
    # The file holds this run's report and the folder's training.json; the shipped weights on
    # the fixed test dates give the shipped figures again.
    figures = ("model", "accuracy", "per_class", "n")
    assert {key: written[key] for key in figures} == printed == {key: shipped[key] for key in figures}
    assert written["training"] == json.loads((metrics.parent / "training.json").read_text())
    assert metrics.stat().st_ino != old_inode  # renamed into place by this run, not the old file left alone
    assert not [path for path in metrics.parent.iterdir() if path.name.startswith(".tmp-")]


def test_a_model_loads_while_other_sessions_finish_their_runs():
    """Streamlit clears Keras' global state after every script run (script_runner._clean_problem_modules).

    On a shared server, models are loaded by the background warm-up or a student's first page
    while other sessions' runs end; each load must still succeed.
    """
    import threading

    from streamlit.runtime.scriptrunner import script_runner

    import views.compute  # noqa: F401 - the app imports it before any model is loaded
    from models import registry

    finished = threading.Event()

    def other_sessions() -> None:
        # 30 students: some session's run ends every few milliseconds.
        while not finished.wait(0.005):
            # Looked up on each call, as the script runner does, so that the app may replace it.
            script_runner._clean_problem_modules()

    runs = threading.Thread(target=other_sessions, daemon=True)
    runs.start()
    failures = {}
    try:
        for model_id in REGISTRY:
            try:
                registry.load(model_id)
            except Exception as exc:
                failures[model_id] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
    finally:
        finished.set()
        runs.join(timeout=30)
    assert failures == {}
