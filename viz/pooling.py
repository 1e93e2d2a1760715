"""Block averaging: a long matrix shrunk to what a screen (or a byte budget) can carry."""

from __future__ import annotations

import numpy as np


def block_edges(length: int, blocks: int) -> np.ndarray:
    """Start index of each of ``blocks`` nearly equal, contiguous blocks covering ``length``."""
    return np.floor(np.arange(blocks) * length / blocks).astype(np.intp)


def block_mean(matrices: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean of each of rows×cols nearly equal contiguous blocks of the last two axes.

    Blocks differ in size by at most one row or column when the length does not divide evenly;
    each output cell is the exact mean of its block, so with ``rows``/``cols`` equal to the
    matrix size the matrices come back unchanged.
    """
    matrices = np.asarray(matrices, dtype=np.float32)
    height, width = matrices.shape[-2:]
    row_edges, col_edges = block_edges(height, rows), block_edges(width, cols)
    row_counts = np.diff(np.append(row_edges, height))
    col_counts = np.diff(np.append(col_edges, width))
    summed = np.add.reduceat(np.add.reduceat(matrices, row_edges, axis=-2), col_edges, axis=-1)
    return summed / row_counts[:, None] / col_counts[None, :]
