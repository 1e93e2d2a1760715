"""Driving the page through Streamlit's AppTest, and reading what it sends to the browser."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 180  # the first run loads TensorFlow and the model


def open_page(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def figures(at: AppTest) -> list[dict]:
    """The Plotly figures on the page, as the JSON Streamlit sends to the browser."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def decode(array) -> np.ndarray:
    """A Plotly data array: a list, or a typed array base64-encoded by Plotly."""
    if isinstance(array, dict):
        data = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        return data.reshape(tuple(int(n) for n in array["shape"].split(","))) if "shape" in array else data
    return np.asarray(array)


def weights_of(figure: dict) -> np.ndarray:
    return decode(figure["data"][0]["z"])


def heatmap_of(at: AppTest) -> dict:
    for figure in figures(at):
        if figure["data"][0]["type"] == "heatmap" and figure["layout"].get("title"):
            return figure
    raise AssertionError("no alignment heatmap on the page")


def model_runs() -> int:
    """How many predictions the shared cache has computed so far (one model run each)."""
    from views.compute import shared_cache

    return shared_cache().computed["prediction"]
