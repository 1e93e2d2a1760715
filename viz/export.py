"""Figures as PNG and SVG, matrices as CSV and JSON: what a user takes to slides and papers.

Static images are drawn by kaleido (1.x), which drives a headless Chromium through
choreographer. Browsers cannot be downloaded here, so kaleido is pointed at the system's
Chromium (Debian's /usr/bin/chromium); the browser takes a second or two to start, so one is
kept running for the life of the process and shared by every caller, one render at a time.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import csv
import io
import json
import math
import os
import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np
import plotly.graph_objects as go

BROWSER_ENV = "BROWSER_PATH"  # choreographer's own override, honoured first
BROWSER_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
RENDER_TIMEOUT_S = 90.0
SIGNIFICANT_DIGITS = 7  # float32 carries about 7 significant decimal digits; more would be noise


class ExportError(Exception):
    """A figure could not be turned into an image (no browser, or the browser failed).

    Its message is one line meant for the user; viz knows nothing of ``models``, so callers that
    report ``LensError`` to the user catch this one too.
    """


def browser_path() -> str:
    """The Chromium kaleido should drive: $BROWSER_PATH, else Debian's chromium, else one on PATH."""
    override = os.environ.get(BROWSER_ENV)
    if override:
        if not os.access(override, os.X_OK):
            raise ExportError(f"{BROWSER_ENV}={override} is not an executable browser; unset it or point it at chromium")
        return override
    for candidate in BROWSER_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise ExportError("PNG and SVG export needs Chromium, which is not installed: run `apt-get install chromium` (or set BROWSER_PATH)")


class _Renderer:
    """One kaleido (one headless Chromium tab) on its own event-loop thread, shared by all threads.

    kaleido's own sync server hands results back through a shared queue, so two threads calling
    it at once can receive each other's images; here each call waits on its own future, and a
    lock keeps renders one at a time (the tab is single). A browser that failed or hung is
    dropped and started afresh on the next call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kaleido: Any = None  # a kaleido.Kaleido once started; kaleido has no type information
        self._closes_at_exit = False

    def _start(self) -> None:
        import kaleido

        path = browser_path()
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="kaleido", daemon=True).start()

        async def open_browser():
            # MathJax would be fetched from a CDN: the machine is offline and no figure here uses LaTeX.
            instance = kaleido.Kaleido(path=path, mathjax=False, n=1, timeout=RENDER_TIMEOUT_S)
            await instance.open()
            return instance

        try:
            self._kaleido = asyncio.run_coroutine_threadsafe(open_browser(), loop).result(timeout=RENDER_TIMEOUT_S)
        except Exception as exc:
            loop.call_soon_threadsafe(loop.stop)
            raise ExportError(f"could not start Chromium at {path} for image export ({exc.__class__.__name__}: {exc})") from None
        self._loop = loop
        if not self._closes_at_exit:
            # Registered after the browser made its temporary profile, so that it runs first (atexit
            # runs last-in first-out) and the profile's own clean-up finds no browser writing into it.
            atexit.register(self.close)
            self._closes_at_exit = True

    def _stop(self) -> None:
        loop, instance = self._loop, self._kaleido
        self._loop, self._kaleido = None, None
        if loop is None:
            return
        # A browser that has already gone needs no closing.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(instance.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)

    def close(self) -> None:
        with self._lock:
            self._stop()

    def render(self, figure: go.Figure, image_format: str, scale: float) -> bytes:
        with self._lock:
            if self._kaleido is None:
                self._start()
            assert self._loop is not None  # _start sets it or raises
            future = asyncio.run_coroutine_threadsafe(self._kaleido.calc_fig(figure, opts=dict(format=image_format, scale=scale)), self._loop)
            try:
                return future.result(timeout=RENDER_TIMEOUT_S)
            except FutureTimeout:
                future.cancel()
                self._stop()
                raise ExportError(f"Chromium took longer than {RENDER_TIMEOUT_S:.0f} s to draw the figure; try again") from None
            except Exception as exc:
                self._stop()
                raise ExportError(f"Chromium could not draw the figure ({exc.__class__.__name__}: {exc})") from None


_RENDERER = _Renderer()


def figure_png(figure: go.Figure, scale: float = 2) -> bytes:
    """The figure as PNG bytes, ``scale`` times its layout size (2 suits slides and retina screens)."""
    return _RENDERER.render(figure, "png", scale)


def figure_svg(figure: go.Figure) -> bytes:
    """The figure as SVG bytes (UTF-8 text), for papers: vector lines and text."""
    return _RENDERER.render(figure, "svg", 1)


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(format(value, f".{SIGNIFICANT_DIGITS}g"))


def _check(weights: np.ndarray, row_tokens: Sequence[str], col_tokens: Sequence[str]) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim < 2 or weights.shape[-2:] != (len(row_tokens), len(col_tokens)):
        raise ValueError(f"weights of shape {weights.shape} do not end in {len(row_tokens)} rows x {len(col_tokens)} columns")
    return weights


def matrix_csv(weights: np.ndarray, row_tokens: Sequence[str], col_tokens: Sequence[str]) -> str:
    """A (rows, columns) matrix as CSV: column tokens as the header row, row tokens as the first column.

    Tokens are written exactly as the model produced them (no escaping beyond CSV quoting), and
    repeated tokens keep their own row or column. Empty cells are undefined values (NaN).
    """
    weights = _check(weights, row_tokens, col_tokens)
    if weights.ndim != 2:
        raise ValueError(f"CSV holds one matrix; got shape {weights.shape}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *col_tokens])
    for token, row in zip(row_tokens, weights.tolist()):
        writer.writerow([token, *("" if math.isnan(v) else format(v, f".{SIGNIFICANT_DIGITS}g") for v in row)])
    return buffer.getvalue()


def matrix_record(weights: np.ndarray, row_tokens: Sequence[str], col_tokens: Sequence[str], **meta) -> dict:
    """The matrix as plain JSON-ready data: {"tokens": {"rows", "columns"}, "weights": nested lists, **meta}.

    ``weights`` may carry leading axes (heads, or layers and heads) before its (rows, columns);
    ``meta`` records where it came from (model, view, layer, head, text). NaN becomes None.
    """
    weights = _check(weights, row_tokens, col_tokens)
    flat = [_number(v) for v in weights.ravel().tolist()]
    nested = np.array(flat, dtype=object).reshape(weights.shape).tolist() if flat else weights.tolist()
    return {**meta, "tokens": {"rows": list(row_tokens), "columns": list(col_tokens)}, "weights": nested}


def matrix_json(weights: np.ndarray, row_tokens: Sequence[str], col_tokens: Sequence[str], **meta) -> str:
    """``matrix_record`` as JSON text (NaN becomes null)."""
    return json.dumps(matrix_record(weights, row_tokens, col_tokens, **meta), ensure_ascii=False)
