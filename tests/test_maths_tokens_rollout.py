"""Word merging and rollout (models.maths) against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from models.contract import Prediction
from models.maths.rollout import attention_rollout
from models.maths.tokens import (
    BYTE_BPE,
    SENTENCEPIECE,
    WORDPIECE,
    WORDS,
    merge_prediction,
    merge_subwords,
    merge_tokens,
    without_special,
    word_groups,
)

# [CLS] play ##ing [SEP]: the word "playing" is split in two pieces.
TOKENS = ("[CLS]", "play", "##ing", "[SEP]")
SPECIAL = (True, False, False, True)
ATTENTION = np.array(
    [
        [0.1, 0.2, 0.3, 0.4],
        [0.5, 0.1, 0.1, 0.3],
        [0.2, 0.2, 0.2, 0.4],
        [0.25, 0.25, 0.25, 0.25],
    ],
    dtype=np.float32,
)
# By hand: columns "play" and "##ing" are added (attention *to* the word); rows "play" and "##ing"
# are averaged (attention *from* the word).
#   [CLS]   -> [0.1, 0.2 + 0.3, 0.4]                          = [0.1, 0.5, 0.4]
#   playing -> mean([0.5, 0.1 + 0.1, 0.3], [0.2, 0.2 + 0.2, 0.4]) = [0.35, 0.3, 0.35]
#   [SEP]   -> [0.25, 0.25 + 0.25, 0.25]                       = [0.25, 0.5, 0.25]
MERGED = np.array([[0.1, 0.5, 0.4], [0.35, 0.3, 0.35], [0.25, 0.5, 0.25]])


def test_word_groups_join_wordpiece_continuations():
    assert word_groups(TOKENS, SPECIAL, WORDPIECE) == ((0,), (1, 2), (3,))


def test_hand_worked_merge():
    merged = merge_subwords(ATTENTION, word_groups(TOKENS, SPECIAL, WORDPIECE))
    np.testing.assert_allclose(merged, MERGED, atol=1e-7)
    assert merged.dtype == np.float32


def test_merge_works_on_every_layer_and_head_and_rows_still_sum_to_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 7, 7))
    attentions = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    groups = ((0,), (1, 2, 3), (4,), (5, 6))
    merged = merge_subwords(attentions, groups)
    assert merged.shape == (3, 4, 4, 4)
    np.testing.assert_allclose(merged.sum(-1), 1.0, atol=1e-12)
    # Spot-check one cell against the definition: mean over rows 1-3 of the sum over columns 5-6.
    np.testing.assert_allclose(merged[2, 1, 1, 3], attentions[2, 1, 1:4, 5:7].sum(-1).mean())


def test_separate_row_and_column_groups_for_cross_attention():
    # Two output characters attending over three source tokens; the last two source tokens form one word.
    attentions = np.array([[[[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]]]])
    merged = merge_subwords(attentions, row_groups=((0,), (1,)), column_groups=((0,), (1, 2)))
    np.testing.assert_allclose(merged[0, 0], [[0.2, 0.8], [0.6, 0.4]])


def test_groups_must_cover_every_token_once():
    with pytest.raises(ValueError, match="exactly once"):
        merge_subwords(ATTENTION, ((0,), (1,), (3,)))
    with pytest.raises(ValueError, match="exactly once"):
        merge_subwords(ATTENTION, ((0, 1), (1, 2), (3,)))


def test_special_tokens_stay_alone_and_start_new_words():
    # "##x" right after [CLS] cannot continue a special token.
    assert word_groups(("[CLS]", "##x", "##y", "[SEP]"), (True, False, False, True), WORDPIECE) == ((0,), (1, 2), (3,))


def test_byte_bpe_and_sentencepiece_markers():
    roberta = ("<s>", "Trans", "formers", "Ġare", "Ġgreat", "</s>")
    flags = (True, False, False, False, False, True)
    groups = word_groups(roberta, flags, BYTE_BPE)
    assert groups == ((0,), (1, 2), (3,), (4,), (5,))
    assert merge_tokens(roberta, flags, groups, BYTE_BPE) == (("<s>", "Transformers", "are", "great", "</s>"), flags[:2] + flags[3:])
    albert = ("[CLS]", "▁trans", "form", "ers", "▁rock", "[SEP]")
    flags = (True, False, False, False, False, True)
    groups = word_groups(albert, flags, SENTENCEPIECE)
    assert groups == ((0,), (1, 2, 3), (4,), (5,))
    assert merge_tokens(albert, flags, groups, SENTENCEPIECE)[0] == ("[CLS]", "transformers", "rock", "[SEP]")


def test_byte_bpe_words_are_decoded_to_unicode():
    # GPT-2's byte alphabet writes the UTF-8 bytes of "é" (C3 A9) as "Ã©".
    tokens = ("<s>", "Ġcaf", "Ã©", "</s>")
    flags = (True, False, False, True)
    assert merge_tokens(tokens, flags, word_groups(tokens, flags, BYTE_BPE), BYTE_BPE)[0] == ("<s>", "café", "</s>")


def test_words_scheme_never_merges():
    assert word_groups(("play", "##ing"), None, WORDS) == ((0,), (1,))


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unknown sub-word scheme"):
        word_groups(TOKENS, SPECIAL, "morphemes")


def _prediction(tokens, special, attentions):
    return Prediction(
        model="test",
        labels=("a", "b"),
        probs=np.array([0.3, 0.7]),
        source_tokens=tokens,
        target_tokens=tokens,
        attentions=attentions,
        source_special=special,
        target_special=special,
        self_attention=True,
        readout="first",
    )


def test_merge_prediction_hand_worked():
    merged = merge_prediction(_prediction(TOKENS, SPECIAL, ATTENTION[None, None]), WORDPIECE)
    assert merged.source_tokens == merged.target_tokens == ("[CLS]", "playing", "[SEP]")
    assert merged.source_special == merged.target_special == (True, False, True)
    np.testing.assert_allclose(merged.attentions[0, 0], MERGED, atol=1e-7)
    np.testing.assert_array_equal(merged.probs, np.float32([0.3, 0.7]))


def test_sentence_without_split_words_is_unchanged():
    tokens = ("[CLS]", "the", "team", "won", "[SEP]")
    special = (True, False, False, False, True)
    rng = np.random.default_rng(1)
    attentions = rng.random((2, 3, 5, 5)).astype(np.float32)
    attentions /= attentions.sum(-1, keepdims=True)
    original = _prediction(tokens, special, attentions)
    merged = merge_prediction(original, WORDPIECE)
    assert merged.source_tokens == original.source_tokens
    assert merged.source_special == original.source_special
    np.testing.assert_array_equal(merged.attentions, original.attentions)


def test_merge_prediction_keeps_seq2seq_shapes():
    source = ("M", "a", "y")
    target = ("0", "5")
    attentions = np.array([[[[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]]]], dtype=np.float32)
    prediction = Prediction(model="dates", labels=(), probs=np.zeros(0), source_tokens=source, target_tokens=target, attentions=attentions, output="05")
    merged = merge_prediction(prediction, WORDS)
    assert (merged.source_tokens, merged.target_tokens) == (source, target)
    np.testing.assert_array_equal(merged.attentions, attentions)


def test_rollout_matches_a_hand_worked_two_layer_example():
    # Layer 1: token 0 looks at itself, token 1 at token 0. Layer 2: both look evenly.
    layer1 = np.array([[1.0, 0.0], [1.0, 0.0]])
    layer2 = np.array([[0.5, 0.5], [0.5, 0.5]])
    attentions = np.stack([layer1, layer2])[:, np.newaxis]  # one head per layer
    rolled = attention_rollout(attentions)
    # With the residual: 0.5 * A + 0.5 * I.
    hat1 = np.array([[1.0, 0.0], [0.5, 0.5]])
    hat2 = np.array([[0.75, 0.25], [0.25, 0.75]])
    np.testing.assert_allclose(rolled[0], hat1)
    np.testing.assert_allclose(rolled[1], hat2 @ hat1)  # = [[0.875, 0.125], [0.625, 0.375]]
    np.testing.assert_allclose(rolled[1], [[0.875, 0.125], [0.625, 0.375]])


def test_rollout_averages_heads_and_keeps_rows_stochastic():
    attentions = np.random.default_rng(1).dirichlet(np.ones(5), size=(3, 4, 5))
    rolled = attention_rollout(attentions)
    assert rolled.shape == (3, 5, 5)
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(attention_rollout(attentions[:1], residual=False)[0], attentions[0].mean(axis=0))


def test_rollout_refuses_cross_attention():
    with pytest.raises(ValueError, match="square"):
        attention_rollout(np.full((1, 1, 2, 3), 1 / 3))


def test_without_special_keeps_ordinary_tokens_and_their_true_weights():
    weights = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])[np.newaxis, np.newaxis]
    special = (True, False, True)  # [CLS] word [SEP]
    kept, source_keep, target_keep = without_special(weights, special, special)
    assert source_keep == target_keep == [1]
    np.testing.assert_array_equal(kept, [[[[0.3]]]])
