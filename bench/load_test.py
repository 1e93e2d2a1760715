"""A class at once: N websocket sessions against the real server, no browser.

Each session speaks Streamlit's own protocol (the protobuf ``BackMsg``/``ForwardMsg`` messages
that the browser exchanges over ``/_stcore/stream``): it opens the page with a query string, then
submits K new texts back to back the way the browser does, by sending the text area's new value
together with every other widget's current value. A page run is timed from sending the request to
the server's ``script_finished``.

Every text is distinct (a headline naming a city that belongs to one session only), so no cache
can hide work, and the city doubles as a leak check: each page must show its own city and never
another session's.

    python bench/load_test.py --model minilm-agnews              # 30 sessions x 3 texts
    python bench/load_test.py --model keras-transformer --soak   # 30 x 20, memory over time

    python bench/load_test.py --model all --cold                 # four models, first requests load them
    python bench/load_test.py --model minilm-agnews --app-rev 9518db6   # a committed revision
    python bench/load_test.py --model all --soak --long          # 600-word texts: the memory worst case

writes bench/results/load_<model>.json (soak_<model>.json with --soak; _long and _cold suffixes).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import math
import re
import statistics
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.server import RssSampler, ServerError, StreamlitServer, app_tree, load_average, machine, tree_cpu_seconds, wait_until_idle
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("keras-transformer", "minilm-agnews", "bahdanau-rnn", "bahdanau-dates")
# One word each in every bundled vocabulary (the Keras word lists and MiniLM's WordPiece), so the
# word shows up intact among the heatmap's tokens; none occurs in the page's fixed text.
CITIES = (  # noqa: SIM905
    "london paris tokyo berlin moscow beijing sydney toronto chicago boston madrid rome cairo mumbai "
    "seoul vienna athens lisbon denver dallas houston atlanta miami seattle detroit phoenix oslo warsaw "
    "brussels geneva zurich milan munich hamburg manila jakarta bangkok singapore nairobi baghdad tehran "
    "kabul karachi delhi shanghai montreal vancouver calgary melbourne auckland johannesburg jerusalem "
    "damascus havana caracas stockholm helsinki copenhagen amsterdam liverpool manchester barcelona "
    "naples frankfurt"
).split()
# Each headline with a word no other headline (and no fixed text on the page) uses: a submitted
# text has reached the page when its word is among the heatmap's tokens.
HEADLINES = (
    ("Stocks rally in {place} as investors cheer strong quarterly earnings", "earnings"),
    ("Team from {place} wins the championship after dramatic overtime finish", "championship"),
    ("Police in {place} arrest three suspects after downtown bank robbery", "robbery"),
    ("New smartphone goes on sale in {place} with a faster chip", "faster"),
    ("Oil company opens refinery near {place} amid rising fuel demand", "demand"),
    ("Heavy rain floods the streets of {place} forcing hundreds to leave", "floods"),
    ("Scientists in {place} discover a new species of tree frog", "species"),
    ("Airline cuts flights to {place} as fuel costs soar again", "airline"),
    ("Mayor of {place} announces plan to build a new stadium", "stadium"),
    ("Software maker based in {place} reports record profit for the year", "maker"),
    ("Protesters march through {place} demanding election reform", "election"),
    ("Coach of {place} club resigns after long losing streak", "coach"),
    ("Hospital in {place} tests new cancer treatment on patients", "cancer"),
    ("Central bank raises rates as inflation hits shoppers in {place}", "inflation"),
    ("Striker scores twice as {place} beats rivals in cup match", "striker"),
    ("Chipmaker builds factory outside {place} creating thousands of jobs", "factory"),
    ("Earthquake shakes {place} but no injuries are reported", "earthquake"),
    ("Online retailer expands its delivery service to {place}", "retailer"),
    ("Ambassador recalled from {place} after a diplomatic row", "ambassador"),
    ("Astronomers in {place} spot a comet heading toward Earth", "comet"),
    ("Film festival in {place} opens with premiere of war drama", "festival"),
)
# Appended to every headline with --long: about 600 words (no city, no headline's check word), so
# each classifier reads as many tokens as it can (MiniLM's 512), the worst case for memory.
ARTICLE = " ".join(
    [
        "Officials said on Tuesday that the talks would continue next week while markets waited for news from the government, and the company declined to comment."
    ]
    * 24
)
MONTHS = "January February March April May June July August September October November December".split()  # noqa: SIM905
# Names no city and uses no headline's word, so the warm-up page shows what every page shows.
WARMUP_TEXT = {"classifier": "The committee will meet again next week to discuss the budget", "dates": "Sunday, 4th of July 1776"}
STATUS = ForwardMsg.ScriptFinishedStatus
# A page run is over on these; FINISHED_EARLY_FOR_RERUN means the script restarted itself (st.rerun).
RUN_OVER = {STATUS.Value("FINISHED_SUCCESSFULLY"), STATUS.Value("FINISHED_WITH_COMPILE_ERROR"), STATUS.Value("FINISHED_FRAGMENT_RUN_SUCCESSFULLY")}
MAX_CACHED_MESSAGE_AGE = 2  # Streamlit's global.maxCachedMessageAge, which the browser honours
STACK_FRAMES = 8  # innermost stack lines kept per distinct traceback: enough to find the line at fault
# Buttons report a value only in the run their click starts, so a browser that clicks none sends none.
TRIGGER_KINDS = {"button", "download_button", "menu_button", "link_button"}


@dataclass(frozen=True)
class PageText:
    """A text to submit, its session's marker (no other session's page may show it) and the word
    that shows the page was drawn for this very text."""

    text: str
    marker: str
    check: str


def date_text(day: dt.date, style: int) -> str:
    """A date written the ways the date model's examples are written."""
    month = MONTHS[day.month - 1]
    ordinal = f"{day.day}{'th' if 10 <= day.day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day.day % 10, 'th')}"
    styles = (
        f"{day.day} {month} {day.year}",
        f"{month} {ordinal}, {day.year}",
        f"{day.day} {month[:3]} {day.year}",
        f"{day.year} {month} {day.day}",
        f"the {ordinal} of {month} {day.year}",
        f"{day:%A}, {ordinal} of {month} {day.year}",
    )
    return styles[style % len(styles)]


def session_texts(model_id: str, session: int, count: int, long: bool = False) -> list[PageText]:
    """``count`` distinct texts for one session: the first opens the page, the rest are submitted.

    Headlines carry the session's city as their marker, followed by ``ARTICLE`` if ``long``. The
    date model reads dates only, so its marker is the ISO date it should write: each session has
    its own year.
    """
    if model_id == "bahdanau-dates":
        days = [dt.date(1950 + session, 1 + index % 12, 1 + (5 * index + session) % 28) for index in range(count)]
        return [PageText(date_text(day, index), day.isoformat(), day.isoformat()) for index, day in enumerate(days)]
    if count > len(HEADLINES):
        raise SystemExit(f"at most {len(HEADLINES) - 1} texts per session (there are {len(HEADLINES)} headlines)")
    city = CITIES[session]
    body = f". {ARTICLE}" if long else ""
    return [PageText(headline.format(place=city.capitalize()) + body, city, check) for headline, check in HEADLINES[:count]]


# Plotly's typed arrays and inline images travel as base64, in which a city's name turns up by
# chance now and then ("/oslo+" in a 512-token heatmap's weights): words are looked for outside them.
BINARY_DATA = re.compile(rb'"bdata":\s*"[^"]*"|data:[a-z/+.-]+;base64,[A-Za-z0-9+/=]+')


def word_pattern(words: list[str]) -> re.Pattern[bytes]:
    return re.compile(rb"\b(" + b"|".join(re.escape(word.encode()) for word in sorted(set(words))) + rb")\b", re.IGNORECASE)


def widget_state(kind: str, element, previous: WidgetState | None) -> WidgetState | None:
    """The value the browser reports for a widget after the server has drawn it again.

    The browser reports every mounted widget on every rerun. A widget it already shows keeps its
    value (``previous``) unless the server sets a new one; a newly mounted widget starts at the
    server's value or its default. Widgets of other kinds are left out; the server then keeps their
    last value.
    """
    if previous is not None and not element.set_value:
        return previous
    state = WidgetState(id=element.id)
    if kind in ("text_area", "text_input"):
        state.string_value = element.value if element.set_value else element.default
    elif kind in ("selectbox", "radio"):
        if element.set_value:
            state.string_value = element.raw_value
        elif element.HasField("default") and 0 <= element.default < len(element.options):
            state.string_value = element.options[element.default]
        else:
            return None
    elif kind == "checkbox":
        state.bool_value = element.value if element.set_value else element.default
    elif kind == "button_group":
        values = element.raw_values if element.set_value else [element.options[index].content for index in element.default]
        state.string_array_value.data.extend(values)
    elif kind == "slider":
        state.double_array_value.data.extend(element.value if element.set_value else element.default)
    else:
        return None
    return state


class ClientError(RuntimeError):
    """The server said something this client cannot follow; the session stops and says why."""


@dataclass
class PageRun:
    """What one request cost and what its page showed."""

    kind: str  # "open" or "submit"
    seconds: float | None = None  # None: no script_finished before the timeout
    exceptions: list[str] = field(default_factory=list)
    stacks: dict[str, list[str]] = field(default_factory=dict)  # the innermost frames of each exception shown
    error_alerts: list[str] = field(default_factory=list)
    words: set[str] = field(default_factory=set)  # watched words (markers, checks) in what the page drew
    input_words: set[str] = field(default_factory=set)  # ... and in its text inputs, which echo the request
    bytes_received: int = 0
    text_area_id: str | None = None


class BrowserLikeSession:
    """One websocket session that keeps the state a browser tab keeps between reruns.

    That is the page script hash, the query string the server last wrote, the current value of
    every widget, and the message cache: large elements are sent once and then referred to by
    hash, as long as the client lists the hashes it still holds.
    """

    def __init__(self, ws_url: str, watched: re.Pattern[bytes], timeout: float) -> None:
        self.ws_url = ws_url
        self.watched = watched
        self.timeout = timeout
        self.ws = None
        self.page_script_hash = ""
        self.query_string = ""
        self.widgets: dict[str, WidgetState] = {}
        self.unsent_widget_kinds: set[str] = set()
        self.cache: dict[str, tuple[bytes, ForwardMsg]] = {}
        self.cache_age: dict[str, int] = {}

    async def connect(self) -> None:
        # No keep-alive pings: a busy server answers them late and the client would hang up on it,
        # which a browser never does.
        self.ws = await websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None, ping_interval=None, open_timeout=60, close_timeout=5)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def open_page(self, query: dict[str, str]) -> PageRun:
        self.query_string = urllib.parse.urlencode(query)
        return await self.page_run("open", ClientState())

    async def submit(self, text_area_id: str, text: str) -> PageRun:
        self.widgets = {**self.widgets, text_area_id: WidgetState(id=text_area_id, string_value=text)}
        state = ClientState()
        state.widget_states.widgets.extend(self.widgets.values())
        return await self.page_run("submit", state)

    async def page_run(self, kind: str, state: ClientState) -> PageRun:
        state.query_string = self.query_string
        state.page_script_hash = self.page_script_hash
        state.cached_message_hashes.extend(self.cache)
        state.context_info.timezone = "UTC"
        state.context_info.locale = "en-US"
        run = PageRun(kind)
        seen_widgets: dict[str, WidgetState] = {}
        start = time.perf_counter()
        await self.ws.send(BackMsg(rerun_script=state).SerializeToString())
        while True:
            remaining = start + self.timeout - time.perf_counter()
            if remaining <= 0:
                return run
            try:
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except TimeoutError:
                return run
            run.bytes_received += len(raw)
            message = ForwardMsg.FromString(raw)
            if message.WhichOneof("type") == "ref_hash":
                if message.ref_hash not in self.cache:
                    raise ClientError(f"the server referred to a message this client never held ({message.ref_hash})")
                raw, message = self.cache[message.ref_hash]
                self.cache_age[message.hash] = 0
            elif message.metadata.cacheable:
                self.cache[message.hash] = (raw, message)
                self.cache_age[message.hash] = 0
            kind_of_message = message.WhichOneof("type")
            if kind_of_message == "new_session":
                self.page_script_hash = message.new_session.page_script_hash
            elif kind_of_message == "page_info_changed":
                self.query_string = message.page_info_changed.query_string
            elif kind_of_message == "delta":
                found = {match.decode().lower() for match in self.watched.findall(BINARY_DATA.sub(b"", raw))}
                echoed = message.delta.WhichOneof("type") == "new_element" and message.delta.new_element.WhichOneof("type") in ("text_area", "text_input")
                (run.input_words if echoed else run.words).update(found)
                self.read_delta(message, run, seen_widgets)
            elif kind_of_message == "script_finished":
                if message.script_finished == STATUS.Value("FINISHED_WITH_COMPILE_ERROR"):
                    run.exceptions.append("script failed to compile")
                if message.script_finished in RUN_OVER:
                    run.seconds = time.perf_counter() - start
                    # As the browser does: widgets that were not drawn in this run are gone.
                    self.widgets = seen_widgets
                    self.age_cache()
                    return run

    def read_delta(self, message: ForwardMsg, run: PageRun, seen_widgets: dict[str, WidgetState]) -> None:
        if message.delta.WhichOneof("type") != "new_element":
            return
        element = message.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            if not element.exception.is_warning:
                shown = f"{element.exception.type}: {element.exception.message}"
                run.exceptions.append(shown)
                run.stacks[shown] = list(element.exception.stack_trace[-STACK_FRAMES:])
        elif kind == "alert" and element.alert.format == element.alert.ERROR:
            run.error_alerts.append(element.alert.body)
        elif kind == "text_area" and element.text_area.label == "Text":
            run.text_area_id = element.text_area.id
        inner = getattr(element, kind) if kind else None
        if inner is None or not getattr(inner, "id", "") or kind == "plotly_chart":
            return
        state = widget_state(kind, inner, self.widgets.get(inner.id))
        if state is None:
            if kind not in TRIGGER_KINDS:
                self.unsent_widget_kinds.add(kind)
        else:
            seen_widgets[state.id] = state

    def age_cache(self) -> None:
        for key in list(self.cache_age):
            self.cache_age[key] += 1
            if self.cache_age[key] > MAX_CACHED_MESSAGE_AGE:
                del self.cache_age[key], self.cache[key]


@dataclass
class SessionReport:
    index: int
    model_id: str
    texts: list[PageText]
    runs: list[PageRun] = field(default_factory=list)
    error: str | None = None
    unsent_widget_kinds: set[str] = field(default_factory=set)

    def foreign_markers(self, markers: set[str]) -> set[str]:
        """Other sessions' markers that any of this session's pages showed, text inputs included."""
        return set().union(*(run.words | run.input_words for run in self.runs)) & markers - {text.marker for text in self.texts}

    def pages_missing(self, attribute: str) -> int:
        """Finished page runs that drew no element (text inputs aside) with their text's ``marker`` or ``check`` word."""
        return sum(1 for run, text in zip(self.runs, self.texts) if run.seconds is not None and getattr(text, attribute) not in run.words)


class Progress:
    """Counts finished page runs and says so on stderr every few seconds."""

    def __init__(self, planned: int, sampler: RssSampler) -> None:
        self.planned = planned
        self.done = 0
        self.sampler = sampler
        self.middle_mb: float | None = None
        self.started = time.monotonic()

    def run_finished(self) -> None:
        self.done += 1
        if self.middle_mb is None and self.done >= self.planned / 2:
            self.middle_mb = round(self.sampler.sample(), 1)

    async def report(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            elapsed = time.monotonic() - self.started
            print(f"[load] {elapsed:6.1f} s  {self.done}/{self.planned} page runs  server peak {self.sampler.peak_mb:.0f} MB", file=sys.stderr, flush=True)


async def run_session(report: SessionReport, ws_url: str, pattern: re.Pattern[bytes], timeout: float, start: asyncio.Event, progress: Progress) -> None:
    session = BrowserLikeSession(ws_url, pattern, timeout)
    try:
        await session.connect()
        await start.wait()  # every session sends its first request at the same moment
        first = await session.open_page({"model": report.model_id, "text": report.texts[0].text})
        report.runs.append(first)
        progress.run_finished()
        if first.seconds is None:
            report.error = f"no script_finished within {timeout:.0f} s"
            return
        if first.text_area_id is None:
            report.error = 'the page has no text area labelled "Text"'
            return
        for page_text in report.texts[1:]:
            run = await session.submit(first.text_area_id, page_text.text)
            report.runs.append(run)
            progress.run_finished()
            if run.seconds is None:
                report.error = f"no script_finished within {timeout:.0f} s"
                return
    except (OSError, websockets.WebSocketException, ClientError) as exc:
        report.error = f"{exc.__class__.__name__}: {exc}"
    finally:
        report.unsent_widget_kinds = session.unsent_widget_kinds
        await session.close()


async def warm_up(ws_url: str, model_id: str, pattern: re.Pattern[bytes], timeout: float) -> PageRun:
    """Open the page once, as the teacher does before the class: the model loads here.

    The page it shows contains none of the watched words, or the checks could not be trusted.
    """
    session = BrowserLikeSession(ws_url, pattern, timeout)
    await session.connect()
    try:
        text = WARMUP_TEXT["dates" if model_id == "bahdanau-dates" else "classifier"]
        run = await session.open_page({"model": model_id, "text": text})
    finally:
        await session.close()
    if run.seconds is None:
        raise SystemExit(f"warm-up: {model_id} did not finish a page run within {timeout:.0f} s")
    if run.exceptions:
        raise SystemExit(f"warm-up: the {model_id} page shows a traceback before any load: {run.exceptions[0]}")
    if run.words | run.input_words:
        raise SystemExit(f"the {model_id} page shows {sorted(run.words | run.input_words)} without being asked to, so the leak check would be wrong")
    return run


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency_summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "p50_s": round(statistics.median(seconds), 3),
        "p95_s": round(percentile(seconds, 0.95), 3),
        "max_s": round(max(seconds), 3),
        "mean_s": round(statistics.fmean(seconds), 3),
    }


async def load_test(
    server: StreamlitServer,
    sampler: RssSampler,
    model_ids: list[str],
    texts: int,
    timeout: float,
    deadline: float,
    cold: bool,
    settle_limit: float,
    long: bool = False,
) -> dict:
    reports = [SessionReport(index, model_id, session_texts(model_id, index, texts + 1, long)) for index, model_id in enumerate(model_ids)]
    pattern = word_pattern([word for report in reports for text in report.texts for word in (text.marker, text.check)])
    warmups = {}
    for model_id in () if cold else dict.fromkeys(model_ids):
        run = await warm_up(server.ws_url, model_id, pattern, timeout)
        warmups[model_id] = round(run.seconds, 3)
        print(f"[load] warm-up {model_id}: {run.seconds:.1f} s", file=sys.stderr, flush=True)
    settled = None if cold else await asyncio.to_thread(wait_until_idle, server.pid, settle_limit)
    if not cold:
        print(
            f"[load] server idle after {settled} s more" if settled is not None else f"[load] server still busy after {settle_limit:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    progress = Progress(len(reports) * (texts + 1), sampler)
    start_mb = round(sampler.sample(), 1)
    cpu_before = tree_cpu_seconds(server.pid)
    client_cpu_before = time.process_time()
    start = asyncio.Event()
    tasks = [asyncio.create_task(run_session(report, server.ws_url, pattern, timeout, start, progress)) for report in reports]
    ticker = asyncio.create_task(progress.report())
    await asyncio.sleep(0.5)  # let every websocket open first: the load starts all at once
    began = time.perf_counter()
    start.set()
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    wall = time.perf_counter() - began
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    ticker.cancel()
    end_mb = round(sampler.sample(), 1)
    server_cpu = tree_cpu_seconds(server.pid) - cpu_before
    client_cpu = time.process_time() - client_cpu_before
    await asyncio.sleep(3)  # the sessions are closed: see what the server gives back
    memory = {"start": start_mb, "middle": progress.middle_mb, "end": end_mb, "after_close": round(sampler.sample(), 1)}
    figures = summarise(reports, wall, len(pending))
    # CPU time per page run barely depends on what else the machine is doing, unlike wall-clock latency.
    figures["server_cpu_seconds"] = round(server_cpu, 2)
    figures["server_cpu_seconds_per_run"] = round(server_cpu / figures["runs_finished"], 3) if figures["runs_finished"] else None
    # The clients share the machine with the server: their own CPU time shows how much they took from it.
    figures["client_cpu_seconds"] = round(client_cpu, 2)
    return figures | {"warmup_seconds": warmups, "settle_seconds": settled, "rss_mb": memory}


def summarise(reports: list[SessionReport], wall: float, unfinished: int) -> dict:
    runs = [run for report in reports for run in report.runs]
    finished = [run for run in runs if run.seconds is not None]
    traceback_messages = dict(collections.Counter(message for run in runs for message in run.exceptions).most_common(10))
    alert_messages = collections.Counter(message for run in runs for message in run.error_alerts)
    markers = {text.marker for report in reports for text in report.texts}
    leaking = [report for report in reports if report.foreign_markers(markers)]
    return {
        "runs_finished": len(finished),
        "wall_seconds": round(wall, 2),
        "runs_per_second": round(len(finished) / wall, 3) if wall > 0 else None,
        **latency_summary([run.seconds for run in finished]),
        "open": latency_summary([run.seconds for run in finished if run.kind == "open"]),
        "submit": latency_summary([run.seconds for run in finished if run.kind == "submit"]),
        "tracebacks": sum(1 for run in runs if run.exceptions),
        "sessions_with_tracebacks": sum(1 for report in reports if any(run.exceptions for run in report.runs)),
        "traceback_messages": traceback_messages,
        "traceback_stacks": {message: stack for run in runs for message, stack in run.stacks.items() if message in traceback_messages},
        "error_alerts": sum(1 for run in runs if run.error_alerts),
        "error_alert_messages": dict(alert_messages.most_common(10)),
        "leaks": len(leaking),
        "leak_examples": [f"session {report.index} saw {sorted(report.foreign_markers(markers))}" for report in leaking[:5]],
        "pages_missing_own_marker": sum(report.pages_missing("marker") for report in reports),
        "pages_not_showing_their_text": sum(report.pages_missing("check") for report in reports),
        "examples_of_pages_not_showing_their_text": [
            {
                "session": report.index,
                "kind": run.kind,
                "text": text.text,
                "watched_words_seen": sorted(run.words),
                "tracebacks": run.exceptions,
                "errors": run.error_alerts,
            }
            for report in reports
            for run, text in zip(report.runs, report.texts)
            if run.seconds is not None and text.check not in run.words
        ][:5],
        "timeouts": sum(1 for run in runs if run.seconds is None),
        "session_errors": dict(collections.Counter(report.error for report in reports if report.error)),
        "sessions_unfinished_at_deadline": unfinished,
        "widget_kinds_not_reported": sorted(set().union(*(report.unsent_widget_kinds for report in reports))),
        "megabytes_received": round(sum(run.bytes_received for run in runs) / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="keras-transformer", choices=[*MODELS, "all"], help="'all' spreads the sessions over the four models")
    parser.add_argument("--sessions", type=int, help="concurrent sessions (default 30)")
    parser.add_argument("--texts", type=int, help="texts each session submits after opening the page (default 3; 20 with --soak)")
    parser.add_argument("--soak", action="store_true", help="30 sessions x 20 texts, server memory sampled throughout")
    parser.add_argument("--long", action="store_true", help="each headline followed by a 600-word article: every classifier reads its longest input")
    parser.add_argument("--port", type=int, default=8611)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one page run may take")
    parser.add_argument("--deadline", type=float, default=3600.0, help="seconds the whole load may take")
    parser.add_argument(
        "--cold", action="store_true", help="no warm-up: the sessions' first requests load the models, as when a class opens a link to a server just started"
    )
    parser.add_argument("--settle", type=float, default=300.0, help="seconds to wait at most, after the warm-up, for the server to go idle")
    parser.add_argument("--app-rev", help="serve this git revision (exported to a temporary folder) instead of the working tree")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    sessions = args.sessions or 30
    texts = args.texts if args.texts is not None else (20 if args.soak else 3)
    if not 1 <= sessions <= len(CITIES):
        parser.error(f"--sessions must be between 1 and {len(CITIES)}")
    model_ids = [MODELS[index % len(MODELS)] if args.model == "all" else args.model for index in range(sessions)]
    out = args.out or RESULTS / f"{'soak' if args.soak else 'load'}_{args.model}{'_long' if args.long else ''}{'_cold' if args.cold else ''}.json"

    load_before = load_average()
    with app_tree(args.app_rev) as (app_dir, app):
        server = StreamlitServer(args.port, app_dir=app_dir)
        print(f"[load] serving {app_dir} ({app['commit'][:10]}): {' '.join(server.command())}", file=sys.stderr, flush=True)
        try:
            server.start()
        except ServerError as exc:
            raise SystemExit(str(exc)) from None
        sampler = RssSampler(server.pid).start()
        try:
            figures = asyncio.run(load_test(server, sampler, model_ids, texts, args.timeout, args.deadline, args.cold, args.settle, args.long))
        finally:
            sampler.stop()
            server.stop()
    result = {
        "model": args.model,
        "app": app,
        "mode": "soak" if args.soak else "load",
        "cold": args.cold,
        "long": args.long,
        "sessions": sessions,
        "texts": texts,
        "runs_planned": sessions * (texts + 1),
        **figures,
        "peak_rss_mb": sampler.peak_mb,
        "peak_anonymous_mb": sampler.peak_anonymous_mb,
        "rss_series_mb": sampler.series,
        "server_log_tracebacks": dict(collections.Counter(server.log_tracebacks()).most_common(10)),
        "timestamp": dt.datetime.now().isoformat(timespec="seconds"),
        **machine(load_before),
    }
    atomic_write_json(out, result)
    print(
        f"{args.model}: {sessions} sessions x (1 + {texts}) runs, {result['runs_per_second']} runs/s, "
        f"p50 {result.get('p50_s')} s, p95 {result.get('p95_s')} s, max {result.get('max_s')} s, "
        f"tracebacks {result['tracebacks']}, leaks {result['leaks']}, timeouts {result['timeouts']}, peak {result['peak_rss_mb']} MB -> {out}"
    )
    return result


if __name__ == "__main__":
    main()
