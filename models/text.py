"""Word tokenisation and vocabularies for this project's own (non-pretrained) models."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from models.io import read_json, write_json

PAD, UNK = "[PAD]", "[UNK]"
# Words are runs of letters/digits (any script) with inner apostrophes; punctuation is dropped,
# as the lesson's TextVectorization did, so heatmaps show words rather than commas.
_WORD = re.compile(r"\w+(?:'\w+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of ``text`` after NFKC normalisation (full-width letters, ligatures)."""
    normal = unicodedata.normalize("NFKC", text).lower()
    return _WORD.findall(normal)


class Vocabulary:
    """Token <-> id mapping with id 0 for padding and id 1 for unknown words."""

    def __init__(self, tokens: Sequence[str]):
        if list(tokens[:2]) != [PAD, UNK]:
            raise ValueError("a vocabulary starts with [PAD], [UNK]")
        self.tokens = list(tokens)
        self._ids = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int, min_count: int = 1) -> Vocabulary:
        counts = Counter(word for text in texts for word in tokenize(text))
        # Ties broken alphabetically so the same data always gives the same vocabulary.
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *ranked[: max_size - 2]])

    def __len__(self) -> int:
        return len(self.tokens)

    def ids(self, words: Iterable[str]) -> list[int]:
        return [self._ids.get(word, 1) for word in words]

    def write(self, path: Path) -> None:
        write_json(path, self.tokens)

    @classmethod
    def load(cls, path: Path, remedy: str) -> Vocabulary:
        from models.base import AssetError

        tokens = read_json(path, remedy)
        if not isinstance(tokens, list) or tokens[:2] != [PAD, UNK] or not all(isinstance(t, str) for t in tokens):
            raise AssetError(path, "is not a vocabulary (a JSON list starting with [PAD], [UNK])", remedy)
        return cls(tokens)


def encode(
    vocab: Vocabulary, texts: list[str], max_tokens: int, split: Callable[[str], list[str]] = tokenize, fixed_width: bool = False
) -> tuple[np.ndarray, list[list[str]], list[int]]:
    """Padded id matrix, each text's kept tokens, and how many were dropped.

    Tokens are ``split(text)``: words by default, ``list`` for characters. The matrix is as wide
    as the longest kept text, or ``max_tokens`` with ``fixed_width`` (one shape for a compiled
    predict function, so it is traced once).
    """
    split_texts = [split(text) for text in texts]
    kept = [tokens[:max_tokens] for tokens in split_texts]
    dropped = [len(tokens) - len(k) for tokens, k in zip(split_texts, kept)]
    width = max_tokens if fixed_width else max(1, max(len(k) for k in kept))
    ids = np.zeros((len(texts), width), dtype=np.int32)
    for row, tokens in enumerate(kept):
        ids[row, : len(tokens)] = vocab.ids(tokens)
    return ids, kept, dropped
