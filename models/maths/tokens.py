"""Tokens to words, and special tokens out: views of attention that keep its meaning.

Word merging follows Clark, Khandelwal, Levy and Manning (2019), "What Does BERT Look At? An
Analysis of BERT's Attention" (BlackboxNLP; the method of their probing of individual heads):
to turn token-token attention maps into word-word maps they sum the attention *to* the pieces
of a split word and average the attention *from* its pieces, which keeps every row a
probability distribution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cache

import numpy as np

from models.contract import Prediction

# How a tokenizer marks where words begin or continue. Models tell the app which one they use
# (``AttentionModel.subword_scheme``) because guessing from a single sentence is unreliable: a
# one-word RoBERTa input has no "Ġ" anywhere.
WORDS = "words"  # every token is already a word (word-level vocabularies, characters)
WORDPIECE = "wordpiece"  # BERT, DistilBERT, ELECTRA: "##" marks a continuation
BYTE_BPE = "byte-bpe"  # RoBERTa, GPT-2: "Ġ" marks a piece that follows a space
SENTENCEPIECE = "sentencepiece"  # ALBERT, T5, XLNet: "▁" marks a piece that follows a space
SCHEMES = (WORDS, WORDPIECE, BYTE_BPE, SENTENCEPIECE)

_WORDPIECE_CONTINUATION = "##"
_BYTE_BPE_SPACE = "Ġ"
_SENTENCEPIECE_SPACE = "▁"

Groups = tuple[tuple[int, ...], ...]


def _starts_word(token: str, scheme: str) -> bool:
    if scheme == WORDPIECE:
        return not token.startswith(_WORDPIECE_CONTINUATION)
    if scheme == BYTE_BPE:
        return token.startswith(_BYTE_BPE_SPACE)
    if scheme == SENTENCEPIECE:
        return token.startswith(_SENTENCEPIECE_SPACE)
    return True


def word_groups(tokens: Sequence[str], special: Sequence[bool] | None = None, scheme: str = WORDPIECE) -> Groups:
    """Indices of the tokens that form each word, in order; a partition of ``range(len(tokens))``.

    A special token ([CLS], <s>) is always a word of its own, and the token after one always
    starts a new word (RoBERTa writes the first word without "Ġ").
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown sub-word scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    special = tuple(special) if special is not None else (False,) * len(tokens)
    if len(special) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(special)} special-token flags")
    groups: list[list[int]] = []
    for index, token in enumerate(tokens):
        new_word = not groups or special[index] or special[index - 1] or _starts_word(token, scheme)
        if new_word:
            groups.append([index])
        else:
            groups[-1].append(index)
    return tuple(tuple(group) for group in groups)


def _membership(groups: Groups, size: int) -> np.ndarray:
    """(size, len(groups)) matrix with a 1 where token i belongs to word j."""
    matrix = np.zeros((size, len(groups)), dtype=np.float64)
    for word, members in enumerate(groups):
        matrix[list(members), word] = 1.0
    if not np.array_equal(matrix.sum(axis=1), np.ones(size)):
        raise ValueError(f"groups {groups} must use every one of the {size} token positions exactly once")
    return matrix


def merge_subwords(attentions: np.ndarray, row_groups: Groups, column_groups: Groups | None = None) -> np.ndarray:
    """Attention between words from attention between tokens (Clark et al. 2019).

    ``attentions`` has shape (..., target_len, source_len), e.g. (layers, heads, T, S). Attention
    *to* a word is the sum over its pieces' columns; attention *from* a word is the mean over its
    pieces' rows, so rows that summed to 1 still do. ``column_groups`` defaults to
    ``row_groups`` (self-attention); pass both when queries and keys differ (seq2seq).
    """
    attentions = np.asarray(attentions)
    column_groups = row_groups if column_groups is None else column_groups
    *_, target_len, source_len = attentions.shape
    to_words = _membership(column_groups, source_len)
    rows = _membership(row_groups, target_len)
    from_words = (rows / rows.sum(axis=0)).T
    merged: np.ndarray = from_words @ attentions.astype(np.float64) @ to_words
    return merged.astype(attentions.dtype)


@cache
def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-ins for bytes (Radford et al. 2019, encoder.py bytes_to_unicode)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    stand_ins = dict(zip(printable, printable))
    extra = 0
    for byte in range(256):
        if byte not in stand_ins:
            stand_ins[byte] = 256 + extra
            extra += 1
    return {chr(char): byte for byte, char in stand_ins.items()}


def _word_text(pieces: Sequence[str], scheme: str) -> str:
    if scheme == WORDPIECE:
        return pieces[0] + "".join(p.removeprefix(_WORDPIECE_CONTINUATION) for p in pieces[1:])
    if scheme == BYTE_BPE:
        alphabet = _byte_level_alphabet()
        joined = "".join(pieces).removeprefix(_BYTE_BPE_SPACE)
        if all(char in alphabet for char in joined):
            return bytes(alphabet[char] for char in joined).decode("utf-8", errors="replace")
        return joined
    if scheme == SENTENCEPIECE:
        return "".join(pieces).removeprefix(_SENTENCEPIECE_SPACE)
    return "".join(pieces)


def merge_tokens(tokens: Sequence[str], special: Sequence[bool], groups: Groups, scheme: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """Display text and special flag of each word; special tokens keep their own text."""
    words = tuple(tokens[g[0]] if special[g[0]] else _word_text([tokens[i] for i in g], scheme) for g in groups)
    return words, tuple(bool(special[g[0]]) for g in groups)


def merge_prediction(prediction: Prediction, scheme: str) -> Prediction:
    """The same prediction seen word by word: merged tokens, flags and attentions.

    Returns a new, validated ``Prediction`` so every view that draws token attention draws word
    attention unchanged. With ``scheme="words"`` (or a text without split words) the prediction
    comes back equal to the input.
    """
    row_groups = word_groups(prediction.target_tokens, prediction.target_special, scheme)
    column_groups = word_groups(prediction.source_tokens, prediction.source_special, scheme)
    target, target_special = merge_tokens(prediction.target_tokens, prediction.target_special, row_groups, scheme)
    source, source_special = merge_tokens(prediction.source_tokens, prediction.source_special, column_groups, scheme)
    return dataclasses.replace(
        prediction,
        source_tokens=source,
        target_tokens=target,
        source_special=source_special,
        target_special=target_special,
        attentions=merge_subwords(prediction.attentions, row_groups, column_groups),
    )


def without_special(attentions: np.ndarray, source_special: Sequence[bool], target_special: Sequence[bool]) -> tuple[np.ndarray, list[int], list[int]]:
    """The attention between ordinary tokens only, with the positions kept on each axis.

    Heads that park most of their weight on [CLS] or [SEP] (Clark et al. 2019) leave little
    colour for the rest; hiding those rows and columns shows it. The weights are not
    renormalised, so a row's sum is what its token gave to the ordinary tokens.
    """
    attentions = np.asarray(attentions)
    source_keep = [i for i, special in enumerate(source_special) if not special]
    target_keep = [i for i, special in enumerate(target_special) if not special]
    return attentions[..., target_keep, :][..., source_keep], source_keep, target_keep
