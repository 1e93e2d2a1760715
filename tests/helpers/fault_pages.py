"""Open pages of a copy of the app with one file damaged at a time; record what each panel showed.

Run as a script inside the copy (``PYTHONPATH=<copy> python fault_pages.py plan.json``), so that
``models``, ``views`` and ``assets`` are the copy's own: models find their files relative to
``models/base.py``. One process serves every scenario, so TensorFlow and the healthy models load
once (on first use); the damaged model's cached instance is dropped before and after its scenario.

The plan is a JSON list of scenarios ``{"damage": [{"path", "kind", "source"?}, …], "evict": [model ids],
"pages": [{"query": {...}, "reveal": bool}]}`` under "scenarios", beside "app" (the copy's
app.py) and "out"; the output (one JSON document written to "out") has one
entry per page: the script's exceptions and, per panel, its errors, infos, whether the model's
answer was shown and how many charts were drawn.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

TIMEOUT = 300


def damage(path: Path, kind: str, source: Path | None = None) -> None:
    """Damage ``path`` as a crash, a full disk or a bad copy would; "foreign" puts ``source``'s bytes in its place."""
    data = path.read_bytes()
    if kind == "foreign":
        path.write_bytes(source.read_bytes())
    elif kind == "missing":
        path.unlink()
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        # The middle third inverted, the size kept: what bit rot or a bad copy leaves behind.
        start, end = len(data) // 3, 2 * len(data) // 3
        path.write_bytes(data[:start] + bytes(byte ^ 0xFF for byte in data[start:end]) + data[end:])
    else:
        raise ValueError(f"unknown damage {kind!r}")


def panel_report(block) -> dict:
    subheaders = [s.value for s in block.subheader]
    return {
        "errors": [e.value for e in block.error],
        "infos": [i.value for i in block.info],
        "answered": any(s.startswith("Prediction:") for s in subheaders) or (subheaders[:1] == ["Output"] and bool(block.code)),
        "charts": len(block.get("plotly_chart")) + len(block.get("imgs")) + len(block.get("arrow_data_frame")),
    }


def panels(at: AppTest) -> list[dict]:
    """One report per model panel: the two columns of the side-by-side mode, else the main area."""
    for child in at.main.children.values():
        columns = [c for c in getattr(child, "children", {}).values() if type(c).__name__ == "Column"]
        if getattr(child, "type", "") == "flex_container" and len(columns) == 2 and columns[0].markdown and columns[0].markdown[0].value.startswith("####"):
            return [panel_report(column) for column in columns]
    return [panel_report(at.main)]


def open_page(app: str, query: dict, reveal: bool) -> dict:
    at = AppTest.from_file(app, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if reveal and not at.exception:
        at.button(key="lesson-reveal").click().run()
    return {"query": query, "exceptions": [e.message for e in at.exception], "panels": panels(at)}


def main(plan_path: str) -> None:
    from models import probes
    from views import compute

    plan = json.loads(Path(plan_path).read_text())
    app = plan["app"]
    root = Path(app).parent
    # The page's first run starts a background warm-up that would load every model and trace the
    # explanation views (about 40 s here), and could read a file while a scenario damages it. It
    # is stopped before it starts work: the pages load each model on first use, and every
    # scenario drops the damaged model's instance, so its load always reads the damaged file.
    compute._STOP_WARM_UP.set()
    open_page(app, {}, reveal=False)
    compute.start_warm_up().join()
    results = []
    for scenario in plan["scenarios"]:
        originals = {root / damaged["path"]: (root / damaged["path"]).read_bytes() for damaged in scenario["damage"]}
        for model_id in scenario["evict"]:
            compute._load_model.clear(model_id)
        probes._load.cache_clear()  # the layers view's probes are cached apart from the models
        try:
            for damaged in scenario["damage"]:
                source = damaged.get("source")
                damage(root / damaged["path"], damaged["kind"], root / source if source else None)
            pages = [open_page(app, page["query"], page.get("reveal", False)) for page in scenario["pages"]]
        finally:
            for target, original in originals.items():
                target.write_bytes(original)
            for model_id in scenario["evict"]:
                compute._load_model.clear(model_id)
            probes._load.cache_clear()
        results.append({"damage": scenario["damage"], "pages": pages})
        print(f"[faults] {scenario['damage']}: done", file=sys.stderr, flush=True)
    Path(plan["out"]).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
