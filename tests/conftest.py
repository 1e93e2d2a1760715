"""Shared fixtures. Tests never touch the network: hub look-ups are switched off here too."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_ROWS = [
    ("1", "Leaders meet in Geneva", "Foreign ministers discussed the peace treaty and the election crisis."),
    ("2", "Team wins the final", "The striker scored twice as the club won the championship match."),
    ("3", "Stocks rise on earnings", "Shares of the bank climbed after profits beat forecasts, investors said."),
    ("4", "New chip doubles speed", "The software company unveiled a processor for internet servers and phones."),
]


def write_ag_news(directory: Path, rows_per_class: int = 8) -> Path:
    """A miniature AG News folder (train.csv and test.csv) in the original format."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("train.csv", "test.csv"):
        with open(directory / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
            for i in range(rows_per_class):
                for label, title, description in TINY_ROWS:
                    writer.writerow([label, f"{title} {i}", description])
    return directory


@pytest.fixture
def tiny_ag_news(tmp_path: Path) -> Path:
    return write_ag_news(tmp_path / "ag_news")
