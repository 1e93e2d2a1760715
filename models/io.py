"""Atomic file writes: a crash or a full disk never leaves a half-written asset behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
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


def atomic_write_files(folder: Path, writers: dict[str, Callable[[Path], None]]) -> None:
    """Replace the files ``writers`` names in ``folder`` all at once, as far as a reader can tell.

    ``writers[name](tmp_path)`` writes one file. Readers call ``recover(folder)`` first.
    """
    folder = Path(folder)
    recover(folder)
    for name, write in writers.items():
        atomic_write(folder / f"{PENDING_PREFIX}{name}", write)
    atomic_write_json(folder / JOURNAL, sorted(writers))
    recover(folder)


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
