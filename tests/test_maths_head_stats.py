"""Head statistics (models.maths.head_stats) on heads of known types, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models.maths.head_stats import STATISTICS, head_statistics, head_table
from models.maths.tokens import without_special

PLAIN = (False,) * 4


def _one_head(matrix) -> np.ndarray:
    return np.asarray(matrix, dtype=np.float64)[np.newaxis, np.newaxis]


def _stats(matrix, source_special=PLAIN, target_special=PLAIN, self_attention=True) -> dict[str, float]:
    stats = head_statistics(_one_head(matrix), source_special, target_special, self_attention=self_attention)
    return {key: float(value[0, 0]) for key, value in stats.items()}


def test_uniform_rows_are_a_broad_head():
    stats = _stats(np.full((4, 4), 0.25))
    assert stats["entropy"] == pytest.approx(1.0)
    assert stats["confidence"] == pytest.approx(0.25)
    # Row distances: i=0: (0+1+2+3)/4 = 1.5, i=1: (1+0+1+2)/4 = 1, i=2: 1, i=3: 1.5; mean 1.25.
    assert stats["distance"] == pytest.approx(1.25)
    assert stats["previous"] == stats["next"] == stats["self"] == pytest.approx(0.25)
    assert stats["special"] == 0.0


def test_identity_is_a_self_head():
    stats = _stats(np.eye(4))
    assert stats["self"] == 1.0
    assert stats["entropy"] == 0.0
    assert stats["confidence"] == 1.0
    assert stats["distance"] == stats["previous"] == stats["next"] == 0.0


def test_shifted_identity_is_a_previous_token_head():
    # Each token looks at the one before; the first, having none, looks at the second.
    matrix = np.eye(4, k=-1)
    matrix[0, 1] = 1.0
    stats = _stats(matrix)
    assert stats["previous"] == 1.0  # rows 1..3
    assert stats["distance"] == 1.0  # every row looks one token away
    assert stats["next"] == pytest.approx(1 / 3)  # rows 0..2: only row 0 looks ahead
    assert stats["self"] == 0.0
    assert stats["entropy"] == 0.0


def test_cls_parking_head_and_special_rows_left_out():
    special = (True, False, False, True)  # [CLS] w1 w2 [SEP]
    matrix = np.array(
        [
            [0.25, 0.25, 0.25, 0.25],  # [CLS]'s own row is broad, and is not counted
            [1.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],  # [SEP] looks at itself, not counted either
        ]
    )
    stats = _stats(matrix, special, special)
    assert stats["special"] == 1.0
    assert stats["entropy"] == 0.0
    assert stats["self"] == 0.0
    # Rows 1 and 2 look 1 and 2 tokens back.
    assert stats["distance"] == pytest.approx(1.5)
    assert stats["previous"] == pytest.approx(0.5)  # a[1, 0] = 1, a[2, 1] = 0
    # When every row is special, every row counts.
    everything = _stats(matrix, (True,) * 4, (True,) * 4)
    assert everything["special"] == 1.0
    assert everything["self"] == pytest.approx((0.25 + 0 + 0 + 1) / 4)


def test_entropy_renormalises_rows_with_hidden_special_columns():
    special = (True, False, False, True)
    matrix = np.array([[0.1, 0.2, 0.2, 0.5]] * 4)
    kept, source_keep, target_keep = without_special(_one_head(matrix), special, special)
    stats = head_statistics(kept, [special[i] for i in source_keep], [special[i] for i in target_keep], self_attention=True)
    assert stats["entropy"][0, 0] == pytest.approx(1.0)  # 0.2 and 0.2 are an even split of what is left
    assert stats["special"][0, 0] == 0.0
    one_column = head_statistics(np.ones((1, 1, 3, 1)), [False], [False] * 3, self_attention=False)
    assert one_column["entropy"][0, 0] == 0.0


def test_cross_attention_has_no_positional_statistics():
    # Two output characters over three input characters.
    attentions = np.array([[[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]]])
    stats = head_statistics(attentions, (False, False, True), (False, False), self_attention=False)
    for key in ("distance", "previous", "next", "self"):
        assert np.isnan(stats[key]).all()
    assert stats["entropy"][0, 0] == pytest.approx((np.log(2) / np.log(3) + 0) / 2)
    assert stats["special"][0, 0] == pytest.approx(0.5)
    assert stats["confidence"][0, 0] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="square"):
        head_statistics(attentions, (False,) * 3, (False,) * 2, self_attention=True)
    with pytest.raises(ValueError, match="flags"):
        head_statistics(attentions, (False,) * 2, (False,) * 2, self_attention=False)


def test_shapes_order_and_table():
    rng = np.random.default_rng(0)
    attentions = rng.dirichlet(np.ones(7), size=(3, 5, 7))
    special = (True,) + (False,) * 5 + (True,)
    stats = head_statistics(attentions, special, special, self_attention=True)
    assert list(stats) == list(STATISTICS)
    assert all(value.shape == (3, 5) for value in stats.values())
    # Spot-check one head against the definitions, over the five word rows.
    head = attentions[2, 4, 1:6]
    assert stats["entropy"][2, 4] == pytest.approx(np.mean(-(head * np.log(head)).sum(axis=1) / np.log(7)))
    assert stats["distance"][2, 4] == pytest.approx(np.mean([head[i - 1] @ np.abs(i - np.arange(7)) for i in range(1, 6)]))
    assert stats["confidence"][2, 4] == pytest.approx(head.max(axis=1).mean())
    assert stats["special"][2, 4] == pytest.approx((head[:, 0] + head[:, 6]).mean())
    assert stats["next"][2, 4] == pytest.approx(np.mean([attentions[2, 4, i, i + 1] for i in range(1, 6)]))
    assert stats["previous"][2, 4] == pytest.approx(np.mean([attentions[2, 4, i, i - 1] for i in range(1, 6)]))
    assert stats["self"][2, 4] == pytest.approx(np.mean([attentions[2, 4, i, i] for i in range(1, 6)]))
    table = head_table(stats)
    assert len(table) == 15
    assert list(table[0]) == ["layer", "head", *STATISTICS]
    assert (table[0]["layer"], table[0]["head"], table[-1]["layer"], table[-1]["head"]) == (1, 1, 3, 5)
    assert table[7]["entropy"] == stats["entropy"][1, 2]
