"""Atomic sets of files and the checksums written with them (models/io.py)."""

from __future__ import annotations

import hashlib
import json

import pytest

from models.base import AssetError
from models.io import CHECKSUMS, JOURNAL, PENDING_PREFIX, atomic_write_files, recover, seal, verify

REMEDY = "run `python -m models train demo` to recreate it"


def writer(text: str):
    return lambda path: path.write_text(text)


def write_set(folder, contents: dict[str, str]) -> None:
    atomic_write_files(folder, {name: writer(text) for name, text in contents.items()})


def test_a_set_of_files_is_replaced_all_or_nothing(tmp_path):
    folder = tmp_path / "model"
    write_set(folder, {"a.txt": "old a", "b.txt": "old b"})
    # Killed before the journal: the new files were never committed and are dropped.
    (folder / f"{PENDING_PREFIX}a.txt").write_text("new a")
    recover(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt", CHECKSUMS] and (folder / "a.txt").read_text() == "old a"
    # Killed after the journal and the first rename: the next reader finishes the set.
    (folder / "a.txt").write_text("new a")
    (folder / f"{PENDING_PREFIX}b.txt").write_text("new b")
    (folder / JOURNAL).write_text('["a.txt", "b.txt"]')
    recover(folder)
    assert [(folder / n).read_text() for n in ("a.txt", "b.txt")] == ["new a", "new b"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt", CHECKSUMS]


def test_the_set_records_each_files_sha256_and_keeps_other_entries(tmp_path):
    folder = tmp_path / "model"
    write_set(folder, {"a.txt": "first a", "b.txt": "b"})
    write_set(folder, {"a.txt": "second a"})
    recorded = json.loads((folder / CHECKSUMS).read_text())
    assert recorded == {"a.txt": hashlib.sha256(b"second a").hexdigest(), "b.txt": hashlib.sha256(b"b").hexdigest()}
    verify(folder, REMEDY)


def test_one_changed_byte_is_named_with_the_remedy(tmp_path):
    folder = tmp_path / "model"
    write_set(folder, {"weights.h5": "x" * 1000, "config.json": "{}"})
    data = bytearray((folder / "weights.h5").read_bytes())
    data[500] ^= 0x01  # the size kept, as bit rot leaves it
    (folder / "weights.h5").write_bytes(bytes(data))
    with pytest.raises(AssetError) as caught:
        verify(folder, REMEDY)
    assert caught.value.path == folder / "weights.h5"
    assert "SHA-256 differs" in str(caught.value) and REMEDY in str(caught.value)


@pytest.mark.parametrize(
    ("checksums", "problem"),
    [
        (None, "is missing"),
        ("not json", "is unreadable"),
        ("{}", "is not a JSON object"),
        ('["a.txt"]', "is not a JSON object"),
        (json.dumps({"../outside.txt": "0" * 64}), "is not a JSON object"),
        (json.dumps({"gone.txt": "0" * 64}), "is missing"),
    ],
)
def test_a_missing_or_unusable_checksums_file_is_an_asset_error(tmp_path, checksums, problem):
    folder = tmp_path / "model"
    write_set(folder, {"a.txt": "a"})
    if checksums is None:
        (folder / CHECKSUMS).unlink()
    else:
        (folder / CHECKSUMS).write_text(checksums)
    with pytest.raises(AssetError, match=problem):
        verify(folder, REMEDY)


def test_seal_records_every_file_but_the_reports(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("weights.weights.h5", "vocab.json", "metrics.json", "training.json", "faithfulness.json", ".tmp-half-written"):
        (folder / name).write_text(name)
    expected = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("weights.weights.h5", "vocab.json")}
    assert seal(folder) == expected == json.loads((folder / CHECKSUMS).read_text())
    verify(folder, REMEDY)


def test_every_shipped_model_matches_its_checksums():
    from models.registry import REGISTRY

    for entry in REGISTRY.values():
        verify(entry.asset_dir, REMEDY)
        assert set(json.loads((entry.asset_dir / CHECKSUMS).read_text())) >= {p.name for p in entry.asset_dir.glob("*.weights.h5")} | {
            p.name for p in entry.asset_dir.glob("*.npz")
        }
