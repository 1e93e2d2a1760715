"""AG News loading: the CSV format, where files are looked for, and errors that name file and line."""

import pytest

from models import data
from models.data import DataError, load_split, parse_csv, train_validation_split


def test_parses_the_original_format(tiny_ag_news):
    split = parse_csv(tiny_ag_news / "train.csv")
    assert len(split) == 32
    assert split.labels[:4] == (0, 1, 2, 3)
    assert split.texts[0] == "Leaders meet in Geneva 0 Foreign ministers discussed the peace treaty and the election crisis."


def test_quoted_commas_and_escaped_quotes_survive(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text('"3","Oil, gas ""soar""","Prices #39;up#39; \\ again"\n', encoding="utf-8")
    assert parse_csv(path).texts == ('Oil, gas "soar" Prices #39;up#39; \\ again',)


@pytest.mark.parametrize(
    "bad_line, problem",
    [('"2","only two fields"', "expected 3 fields"), ('"7","title","description"', "class must be 1-4")],
)
def test_malformed_row_names_file_and_line(tmp_path, bad_line, problem):
    path = tmp_path / "train.csv"
    path.write_text('"1","fine","row"\n"2","also","fine"\n' + bad_line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"train\.csv, line 3: {problem}"):
        parse_csv(path)


def test_non_utf8_file_is_named(tmp_path):
    path = tmp_path / "test.csv"
    path.write_bytes(b'"1","caf\xe9","x"\n')
    with pytest.raises(DataError, match=r"test\.csv is not UTF-8"):
        parse_csv(path)


def test_missing_data_gives_one_clear_error_without_downloading(tmp_path):
    with pytest.raises(DataError, match=r"AG News test data not found.*AG_NEWS_DIR"):
        load_split("test", tmp_path)


def test_environment_variable_comes_before_shared_copy(tiny_ag_news, monkeypatch):
    monkeypatch.setenv("AG_NEWS_DIR", str(tiny_ag_news))
    assert data.candidate_dirs()[0] == tiny_ag_news
    assert load_split("test").source == tiny_ag_news / "test.csv"


def test_partial_training_file_is_found(tmp_path):
    (tmp_path / "train_head_10429.csv").write_text('"4","a","b"\n', encoding="utf-8")
    assert data.find_file("train", tmp_path).name == "train_head_10429.csv"


def test_download_is_tried_only_when_nothing_is_local(tmp_path, monkeypatch):
    monkeypatch.delenv("AG_NEWS_DIR", raising=False)
    monkeypatch.setattr(data, "SHARED_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    requested = []

    def offline(name):
        requested.append(name)
        raise DataError(f"AG News {name} is not available locally and could not be downloaded")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DataError, match="could not be downloaded"):
        data.find_file("train")
    assert requested == ["train.csv"]


def test_validation_split_is_stratified_disjoint_and_seeded(tiny_ag_news):
    split = load_split("train", tiny_ag_news)
    train, val = train_validation_split(split, 0.25, seed=3)
    assert len(train) + len(val) == len(split)
    assert sorted(val.labels) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert not set(train.texts) & set(val.texts)
    assert train_validation_split(split, 0.25, seed=3)[0].texts == train.texts


def test_limit_keeps_the_first_rows(tiny_ag_news):
    assert load_split("test", tiny_ag_news, limit=5).labels == (0, 1, 2, 3, 0)
