"""AG News loading: where the CSVs are, and parsing them with errors that name file and line.

The files are the original AG News CSVs (no header; class index 1-4, title, description).
Text artifacts such as ``#39;`` are kept as they are so that figures stay comparable with
published ones.
"""

from __future__ import annotations

import csv
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from models.base import REPO_ROOT, LensError

AG_NEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
# The copy torchtext's AG_NEWS loader downloads; used only when no local copy exists.
AG_NEWS_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/{name}"
SHARED_DIR = REPO_ROOT.parent / "shared" / "data" / "ag_news"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "attention-lens" / "ag_news"
# The training file name, best first: the full official file, else the partial copy shipped here.
TRAIN_FILES = ("train.csv", "train_head_10429.csv")


class DataError(LensError):
    """AG News data is missing or malformed."""


@dataclass(frozen=True)
class Split:
    texts: tuple[str, ...]
    labels: tuple[int, ...]  # 0-based class indices into AG_NEWS_LABELS
    source: Path

    def __len__(self) -> int:
        return len(self.texts)


def candidate_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Directories searched for the CSVs, in order: explicit, $AG_NEWS_DIR, shared/, cache."""
    dirs = []
    if data_dir is not None:
        return [Path(data_dir)]
    if os.environ.get("AG_NEWS_DIR"):
        dirs.append(Path(os.environ["AG_NEWS_DIR"]))
    dirs += [SHARED_DIR, CACHE_DIR]
    return dirs


def find_file(split: str, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """Locate the CSV of ``split`` ("train" or "test"), downloading it only as a last resort."""
    names = TRAIN_FILES if split == "train" else ("test.csv",)
    dirs = candidate_dirs(data_dir)
    for directory in dirs:
        for name in names:
            if (directory / name).is_file():
                return directory / name
    if download and data_dir is None:
        return _download(names[0])
    searched = ", ".join(str(d) for d in dirs)
    raise DataError(f"AG News {split} data not found (looked for {' or '.join(names)} in {searched}); set AG_NEWS_DIR to the folder holding the CSVs")


def _download(name: str) -> Path:
    target = CACHE_DIR / name
    url = AG_NEWS_URL.format(name=name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
            out.write(response.read())
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataError(f"AG News {name} is not available locally and could not be downloaded ({exc}); set AG_NEWS_DIR to a folder holding {name}") from None
    return target


def parse_csv(path: Path) -> Split:
    """Parse one AG News CSV, raising DataError with the file and line of the first bad row."""
    texts: list[str] = []
    labels: list[int] = []
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            for row in reader:
                line = reader.line_num
                if len(row) != 3:
                    raise DataError(f"{path}, line {line}: expected 3 fields (class, title, description), found {len(row)}")
                label, title, description = row
                if label.strip() not in {"1", "2", "3", "4"}:
                    raise DataError(f"{path}, line {line}: class must be 1-4, found {label!r}")
                texts.append(f"{title} {description}".strip())
                labels.append(int(label) - 1)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: {exc}") from None
    if not texts:
        raise DataError(f"{path} holds no rows")
    return Split(tuple(texts), tuple(labels), Path(path))


def load_split(split: str, data_dir: str | Path | None = None, limit: int | None = None) -> Split:
    """Load ``split`` ("train" or "test"), optionally only its first ``limit`` rows."""
    if split not in {"train", "test"}:
        raise ValueError(f"unknown split {split!r}")
    data = parse_csv(find_file(split, data_dir))
    if limit is not None:
        data = Split(data.texts[:limit], data.labels[:limit], data.source)
    return data


def train_validation_split(data: Split, validation_fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split]:
    """A seeded, stratified hold-out of the training rows for tuning (the test set is never used)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    val_idx: list[int] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        val_idx += members[: max(1, round(len(members) * validation_fraction))].tolist()
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~is_val))
    val_sorted = np.flatnonzero(is_val)

    def take(idx: np.ndarray) -> Split:
        return Split(tuple(data.texts[i] for i in idx), tuple(data.labels[i] for i in idx), data.source)

    return take(train_idx), take(val_sorted)
