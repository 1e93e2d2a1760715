"""One row of numbers per (layer, head): what kind of head it is, for the current text.

The head types are those of Clark, Khandelwal, Levy and Manning (2019), "What Does BERT Look
At? An Analysis of BERT's Attention" (BlackboxNLP): heads that attend broadly (high entropy),
heads that attend to the previous or the next token or to the token itself, and heads that
park their attention on [CLS] or [SEP] (a high share on special tokens). Mean attention
distance (Σ_j a_ij·|i − j|) follows Vig and Belinkov (2019), "Analyzing the Structure of
Attention in a Transformer Language Model" (BlackboxNLP). Confidence (the mean of the row
maxima) is the measure of Voita, Talbot, Moiseev, Sennrich and Titov (2019), "Analyzing
Multi-Head Self-Attention: Specialized Heads Do the Heavy Lifting, the Rest Can Be Pruned"
(ACL), whose "positional" heads show here as a distance near 1 with a high previous or next
share.

Every statistic is a mean over the rows (query tokens) of ordinary tokens: the rows of [CLS]
and [SEP] behave unlike words (often broad, or attending to themselves) and would blur a
head's type in short texts. When every row is special, all rows are used. Columns are never
dropped, so the share on special tokens is what the words give to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STATISTICS: dict[str, tuple[str, str]] = {
    "entropy": ("Entropy", "1 = spread evenly over all tokens (a broad head), 0 = always one token"),
    "distance": ("Distance", "mean number of tokens between a token and where it looks; ~1 for local heads"),
    "special": ("On special", "share of weight on [CLS]/[SEP]-like tokens; near 1 = a parking head"),
    "previous": ("Previous", "share on the token just before; near 1 = a previous-token head"),
    "next": ("Next", "share on the token just after; near 1 = a next-token head"),
    "self": ("Self", "share on the token itself"),
    "confidence": ("Confidence", "mean of each row's largest weight; near 1 = picks one token sharply"),
}


def _row_entropy(attentions: np.ndarray) -> np.ndarray:
    """Entropy of each row renormalised to sum 1 (rows with special columns hidden sum to less), / log(S)."""
    import scipy.stats  # on first use: importing it costs 0.4 s of a server's first page

    source_len = attentions.shape[-1]
    if source_len == 1:
        return np.zeros(attentions.shape[:-1])
    # scipy renormalises each row itself; a row with nothing left (every column hidden) is 0/0 there.
    with np.errstate(invalid="ignore", divide="ignore"):
        entropies = scipy.stats.entropy(attentions, base=source_len, axis=-1)
    return np.where(attentions.sum(axis=-1) > 0, entropies, 0.0)


def _diagonal_mean(attentions: np.ndarray, rows: np.ndarray, offset: int) -> np.ndarray:
    """Mean over the chosen rows i of a[i, i + offset], over rows where that column exists."""
    columns = rows + offset
    valid = (columns >= 0) & (columns < attentions.shape[-1])
    if not valid.any():
        return np.full(attentions.shape[:2], np.nan)
    means: np.ndarray = attentions[..., rows[valid], columns[valid]].mean(axis=-1)
    return means


def head_statistics(attentions: np.ndarray, source_special: Sequence[bool], target_special: Sequence[bool], *, self_attention: bool) -> dict[str, np.ndarray]:
    """Per-(layer, head) statistics of ``attentions`` (layers, heads, T, S), each shaped (layers, heads).

    Keys, in the order of ``STATISTICS``: "entropy" (mean over rows of the row's entropy over
    log S, 1 = uniform; 0 when S = 1), "distance" (mean Σ_j a_ij·|i − j| in tokens),
    "special" (mean share on special source tokens), "previous" (mean a_{i,i-1}), "next"
    (mean a_{i,i+1}), "self" (mean a_ii) and "confidence" (mean row maximum). Distance,
    previous, next and self compare positions of queries and keys, so they are NaN unless
    ``self_attention`` (a seq2seq model's output characters and input characters have no shared
    positions). Previous and next average over the rows that have such a neighbour.
    """
    attentions = np.asarray(attentions, dtype=np.float64)
    if attentions.ndim != 4:
        raise ValueError(f"expected attentions shaped (layers, heads, T, S), got {attentions.shape}")
    layers, heads, target_len, source_len = attentions.shape
    if len(source_special) != source_len or len(target_special) != target_len:
        raise ValueError(f"{len(target_special)} x {len(source_special)} special-token flags for attention over {target_len} x {source_len} tokens")
    if self_attention and target_len != source_len:
        raise ValueError(f"self-attention must be square, got {target_len} x {source_len} tokens")
    ordinary = np.flatnonzero(~np.asarray(target_special, dtype=bool))
    rows = ordinary if len(ordinary) else np.arange(target_len)
    selected = attentions[:, :, rows, :]
    special = np.asarray(source_special, dtype=bool)
    missing = np.full((layers, heads), np.nan)
    stats = {
        "entropy": _row_entropy(selected).mean(axis=-1),
        "distance": missing,
        "special": selected[..., special].sum(axis=-1).mean(axis=-1),
        "previous": missing,
        "next": missing,
        "self": missing,
        "confidence": selected.max(axis=-1).mean(axis=-1),
    }
    if self_attention:
        distances = np.abs(rows[:, np.newaxis] - np.arange(source_len)[np.newaxis, :])
        stats["distance"] = (selected * distances).sum(axis=-1).mean(axis=-1)
        stats["previous"] = _diagonal_mean(attentions, rows, -1)
        stats["next"] = _diagonal_mean(attentions, rows, 1)
        stats["self"] = _diagonal_mean(attentions, rows, 0)
    return {key: stats[key].copy() for key in STATISTICS}


def head_table(stats: dict[str, np.ndarray]) -> list[dict[str, float]]:
    """One dict per (layer, head), numbered from 1, with every statistic: rows of a sortable table."""
    layers, heads = stats["entropy"].shape
    return [
        {"layer": layer + 1, "head": head + 1, **{key: float(stats[key][layer, head]) for key in STATISTICS}}
        for layer in range(layers)
        for head in range(heads)
    ]
