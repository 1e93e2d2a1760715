"""Atomic file writes: a crash or a full disk never leaves a half-written asset behind."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends with the real name: some writers (Keras) insist on the extension.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates files readable by the owner only; assets are meant to be shared.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# Files written as one set (a model's weights, vocabulary and config must match) are first
# written beside their final names, then a journal naming them is written, then they are renamed
# into place. A run killed before the journal leaves only the old set (the new files are dropped
# on the next load); killed after it, the next load finishes the renames: never a mixture.
PENDING_PREFIX = ".pending-"
JOURNAL = ".pending-set.json"
# The SHA-256 of every file of a set, written with the set. HDF5 keeps no checksums of its own:
# a weights file with flipped bytes in the middle of a tensor still loads, and the model then
# predicts confidently from garbage. Checking the recorded hashes at load catches that.
CHECKSUMS = "checksums.json"
# What the evaluation and faithfulness commands write beside a model's files: reports read by
# people and tests, never by the app, so they are neither in the set nor in its checksums.
REPORTS = frozenset({"metrics.json", "training.json", "faithfulness.json", "ground_truth.json"})
# The layers view's linear probes (models/probes.py): in the folder's checksums, but checked by
# their own loader, so that a damaged probe file disables that one view and not the model.
PROBE_FILES = ("probes.npz", "probes.json")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_files(folder: Path, writers: dict[str, Callable[[Path], object]]) -> None:
    """Replace the files ``writers`` names in ``folder`` all at once, as far as a reader can tell.

    ``writers[name](tmp_path)`` writes one file. Their SHA-256 go into ``checksums.json``, which
    is part of the same set (entries for other files of the folder are kept). Readers call
    ``recover(folder)`` first and may then ``verify(folder, ...)``.
    """
    folder = Path(folder)
    recover(folder)
    for name, write in writers.items():
        atomic_write(folder / f"{PENDING_PREFIX}{name}", write)
    sums = _recorded_sums(folder) | {name: sha256(folder / f"{PENDING_PREFIX}{name}") for name in writers}
    atomic_write_json(folder / f"{PENDING_PREFIX}{CHECKSUMS}", sums)
    atomic_write_json(folder / JOURNAL, sorted([*writers, CHECKSUMS]))
    recover(folder)


def _recorded_sums(folder: Path) -> dict[str, str]:
    """The checksums already recorded in ``folder``, or none if there are none to trust."""
    try:
        sums = json.loads((folder / CHECKSUMS).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return sums if isinstance(sums, dict) else {}


def seal(folder: Path) -> dict[str, str]:
    """Record the SHA-256 of every file in ``folder`` the app reads (all but the reports).

    For files put in place by hand (an asset folder from before checksums, or weights copied from
    elsewhere): training records them itself. Returns what was written.
    """
    folder = Path(folder)
    recover(folder)
    names = sorted(path.name for path in folder.iterdir() if path.is_file() and path.name not in REPORTS | {CHECKSUMS} and not path.name.startswith("."))
    sums = {name: sha256(folder / name) for name in names}
    atomic_write_json(folder / CHECKSUMS, sums)
    return sums


def verify(folder: Path, remedy: str, skip: Collection[str] = ()) -> None:
    """Raise AssetError naming the first file of ``folder`` (other than ``skip``) whose bytes differ from ``checksums.json``."""
    from models.base import AssetError

    folder = Path(folder)
    sums = read_json(folder / CHECKSUMS, remedy)
    # Plain names only: the file must not point the check at files outside the folder.
    if not isinstance(sums, dict) or not sums or not all(isinstance(value, str) and Path(name).name == name for name, value in sums.items()):
        raise AssetError(folder / CHECKSUMS, "is not a JSON object of this folder's file names and their SHA-256 digests", remedy)
    for name, expected in sorted(sums.items()):
        if name in skip:
            continue
        path = folder / name
        if not path.is_file():
            raise AssetError(path, "is missing", remedy)
        if sha256(path) != expected:
            raise AssetError(path, f"is damaged or was replaced: its SHA-256 differs from the one recorded in {CHECKSUMS} when it was written", remedy)


def recover(folder: Path) -> None:
    """Finish a committed set write that was interrupted, or drop an uncommitted one."""
    folder = Path(folder)
    journal = folder / JOURNAL
    if journal.is_file():
        for name in json.loads(journal.read_text(encoding="utf-8")):
            pending = folder / f"{PENDING_PREFIX}{name}"
            if pending.is_file():
                os.replace(pending, folder / name)
        journal.unlink()
    for stray in folder.glob(f"{PENDING_PREFIX}*"):
        stray.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: object) -> None:
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def atomic_write_json(path: Path, data: object) -> None:
    atomic_write(path, lambda tmp: write_json(tmp, data))


def read_json(path: Path, remedy: str) -> dict:
    """Read a JSON asset, turning a missing or corrupt file into an AssetError naming it."""
    from models.base import AssetError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssetError(path, "is missing", remedy) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssetError(path, f"is unreadable ({exc.__class__.__name__}: {exc})", remedy) from None
