"""viz/ is pure drawing: it imports numpy, plotly and its own modules, never the project's models or views."""

import ast
import subprocess
import sys
from pathlib import Path

VIZ = Path(__file__).resolve().parent.parent / "viz"
ALLOWED = {
    "numpy",
    "plotly",
    "viz",
    "PIL",  # viz/overview.py encodes the thumbnails of every head as one PNG
    "kaleido",  # viz/export.py: static images through a headless Chromium
    "choreographer",
}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every import in ``path``, at any depth (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("viz" if node.level else node.module.split(".")[0])
    return found


def test_every_viz_module_imports_only_drawing_libraries_and_the_standard_library():
    modules = sorted(VIZ.glob("*.py"))
    assert len(modules) > 5  # the glob found the package
    outside = {path.name: sorted(imported_packages(path) - ALLOWED - sys.stdlib_module_names) for path in modules}
    assert {name: packages for name, packages in outside.items() if packages} == {}


def test_the_check_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import json\ndef f():\n    from models.base import LensError\n    import streamlit as st\n")
    assert imported_packages(sample) - ALLOWED - sys.stdlib_module_names == {"models", "streamlit"}


def test_importing_every_viz_module_loads_neither_models_views_nor_streamlit():
    code = (
        "import importlib, pkgutil, sys, viz\n"
        "for module in pkgutil.iter_modules(viz.__path__):\n"
        "    importlib.import_module('viz.' + module.name)\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'models', 'views', 'streamlit', 'tensorflow', 'keras'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=VIZ.parent, capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
