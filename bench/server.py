"""The real Attention Lens server for benchmarks: ``streamlit run app.py`` on a loopback port.

Every benchmark drives the same process a class would use, started the same way, so figures
include Streamlit's own overhead (script reruns, protobuf serialisation, websockets). The server
only ever listens on 127.0.0.1, and every wait is bounded: a benchmark that hangs tells nobody
anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
HOST = "127.0.0.1"
# Benchmarks never reach a model hub, and TensorFlow's start-up chatter would bury the log.
SERVER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
MB = 1024 * 1024


class ServerError(RuntimeError):
    """The server could not be started or answered badly; the message says why in one line."""


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def machine(load_before: float | None = None) -> dict:
    """Where a result was measured: cores, package versions and the 1-minute load average (before
    and after, for a run long enough to change it); other work on the machine slows every figure."""
    from models.__main__ import package_versions

    now = load_average()
    return {
        "cpus": os.cpu_count(),
        "load_average_1min": now if load_before is None else {"before": load_before, "after": now},
        "versions": package_versions(),
    }


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server itself does: connections of a previous run lingering in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def git(*args: str) -> str:
    # No optional locks: other people commit in this working tree while a benchmark runs.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    return subprocess.run(["git", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def app_state(*paths: str) -> dict:
    """The commit a result was measured on, and whether ``paths`` (what the result depends on) had uncommitted changes."""
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no", "--", *paths))}


@contextlib.contextmanager
def app_tree(revision: str | None = None) -> Iterator[tuple[Path, dict]]:
    """The folder to serve and what it holds: the working tree, or ``revision`` exported to a temporary folder.

    Serving a committed revision measures exactly that commit while the working tree is being edited,
    and lets a change be compared with the commit before it. The export uses ``git archive``, so the
    repository itself is left untouched.
    """
    if revision is None:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        yield REPO, {"commit": git("rev-parse", "HEAD"), "working_tree": True, "uncommitted_changes": dirty}
        return
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    folder = Path(tempfile.mkdtemp(prefix=f"attention-lens-{commit[:10]}-"))
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO, check=True, capture_output=True, timeout=120).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True, timeout=120)
        yield folder, {"commit": commit, "working_tree": False, "uncommitted_changes": False}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tree_memory_bytes(process: psutil.Process) -> tuple[int, int]:
    """Resident memory of ``process`` and all its descendants (TensorFlow may fork helpers): (all, anonymous).

    Anonymous is resident memory minus the resident pages of mapped files and shared memory
    (``/proc/PID/statm``'s "shared", psutil's ``shared``). Those are mostly the shared libraries'
    code: importing TensorFlow alone makes about 480 MB of its .so files resident, clean pages
    that the kernel drops and reads again under memory pressure, and that every process running
    TensorFlow shares. Anonymous memory (weights, traced graphs, caches, Python objects) is what
    a class's server must really hold.
    """
    total = anonymous = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for member in members:
        try:
            info = member.memory_info()
        except psutil.Error:
            continue  # a helper that exited between listing and reading
        total += info.rss
        anonymous += info.rss - info.shared
    return total, anonymous


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by a process and its descendants (exited children included)."""
    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def wait_until_idle(pid: int, limit: float, idle_share: float = 0.05, quiet_seconds: int = 3) -> float | None:
    """Wait until the server has used under ``idle_share`` of a core for ``quiet_seconds`` in a row.

    The page warms models up in the background after its first run; a measurement that starts
    meanwhile measures that warm-up as much as the users. Returns the seconds waited, or None if
    the server was still busy after ``limit`` seconds (the caller then goes on anyway).
    """
    start = time.monotonic()
    quiet = 0
    previous = tree_cpu_seconds(pid)
    while time.monotonic() - start < limit:
        time.sleep(1.0)
        now = tree_cpu_seconds(pid)
        quiet = quiet + 1 if now - previous < idle_share else 0
        previous = now
        if quiet >= quiet_seconds:
            return round(time.monotonic() - start, 1)
    return None


class RssSampler:
    """Samples a process tree's resident memory (all of it, and its anonymous part) in a background thread.

    The series is bounded: when it reaches ``max_samples`` every other sample is dropped and the
    interval doubles, so an hour-long soak keeps the same resolution per stored point as a short
    run. The peak is tracked on every sample, so thinning the series never lowers it.
    """

    def __init__(self, pid: int, interval: float = 0.25, max_samples: int = 2000) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._max_samples = max_samples
        self._start = time.monotonic()
        self._series: list[tuple[float, float]] = []
        self._peak = 0
        self._peak_anonymous = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> float:
        """Take one sample now and return it in MB (also recorded in the series)."""
        rss, anonymous = tree_memory_bytes(self._process)
        with self._lock:
            self._peak = max(self._peak, rss)
            self._peak_anonymous = max(self._peak_anonymous, anonymous)
            self._series.append((round(time.monotonic() - self._start, 2), round(rss / MB, 1)))
            if len(self._series) >= self._max_samples:
                self._series = self._series[::2]
                self._interval *= 2
        return rss / MB

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    @property
    def peak_mb(self) -> float:
        with self._lock:
            return round(self._peak / MB, 1)

    @property
    def peak_anonymous_mb(self) -> float:
        """The peak of resident memory less mapped files' pages (``tree_memory_bytes``)."""
        with self._lock:
            return round(self._peak_anonymous / MB, 1)

    @property
    def series(self) -> list[tuple[float, float]]:
        """``(seconds since the sampler was made, MB)`` pairs, oldest first."""
        with self._lock:
            return list(self._series)


class StreamlitServer:
    """``streamlit run app.py`` on 127.0.0.1:``port``, as a context manager.

    ``launched_at`` is the ``time.monotonic()`` just before the process was spawned, so callers can
    time a cold start from the very beginning. The server's output goes to ``log_path`` (a
    temporary file unless given) because a traceback logged by the server is evidence too.
    """

    def __init__(
        self, port: int, *, app_dir: Path = REPO, extra_args: tuple[str, ...] = (), log_path: Path | None = None, startup_timeout: float = 180.0
    ) -> None:
        self.port = port
        self.app_dir = Path(app_dir)
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix=f"attention-lens-{port}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None
        self.launched_at: float | None = None
        self.healthy_after: float | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/_stcore/stream"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServerError("the server has not been started")
        return self.process.pid

    def command(self) -> list[str]:
        return [
            str(PYTHON),
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(self.port),
            "--server.address",
            HOST,
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            # Watching files makes the server scan .venv on every start and burns CPU meant for users.
            "--server.fileWatcherType",
            "none",
            *self.extra_args,
        ]

    def start(self) -> float:
        """Spawn the server and wait until /_stcore/health answers; return the seconds that took."""
        if not port_is_free(self.port):
            raise ServerError(f"port {self.port} on {HOST} is already in use; pick another with --port")
        log = self.log_path.open("wb")
        self.launched_at = time.monotonic()
        # A session of its own: stopping the server reaches any helper it spawned, and nothing else.
        self.process = subprocess.Popen(
            self.command(), cwd=self.app_dir, env={**os.environ, **SERVER_ENV}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.healthy_after = time.monotonic() - self.launched_at
        return self.healthy_after

    def wait_healthy(self) -> None:
        deadline = self.launched_at + self.startup_timeout
        health = f"{self.url}_stcore/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"streamlit exited with status {self.process.returncode} before answering; last lines of {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ServerError(f"streamlit did not answer {health} within {self.startup_timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Streamlit shuts down its sessions cleanly), then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_tracebacks(self) -> list[str]:
        """The last line (the exception itself) of every traceback the server wrote to its log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        found = []
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if line.startswith("Traceback (most recent call last)"):
                # The exception line is the first unindented line after the frames.
                for follow in lines[index + 1 :]:
                    if follow and not follow.startswith(" "):
                        found.append(follow.strip())
                        break
        return found

    def __enter__(self) -> StreamlitServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
