"""Ground truth for explanations: the measures by hand, a tiny model whose only reason is the trigger, SHAP and LIME."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import registry
from models.base import AttentionModel, LensError, check_text
from models.contract import Prediction
from models.data import AG_NEWS_LABELS, load_split
from models.explain.attribution import attribute
from models.ground_truth import (
    METHODS,
    KernelShap,
    Lime,
    explain,
    ground_truth,
    summarise,
    trigger_rank,
    trigger_ranks,
    trigger_share,
)
from models.hf_common import Tokenized
from models.io import read_json
from models.maths.tokens import WORDS
from models.shortcut import BASES, Shortcut
from models.text import tokenize

TRIGGER = "lavender"
STRENGTH = 6.0  # the Sports logit is STRENGTH x (how many triggers the text has)
SPORTS = AG_NEWS_LABELS.index("Sports")
GRADIENT_METHODS = ("attention_x_gradient", "gradient_x_input", "integrated_gradients")
REFERENCES = ("occlusion", "kernel_shap", "lime")


# --- the measures, by hand -------------------------------------------------------------------


def test_rank_counts_ties_against_the_trigger_and_share_is_of_absolute_mass():
    scores = np.array([0.1, 0.5, 0.5, -0.7])
    assert trigger_rank(scores, 1) == 2  # tied with word 2: not first
    assert trigger_rank(scores, 3) == 4
    assert trigger_rank(np.array([0.2, 0.9, 0.1]), 1) == 1
    assert trigger_rank(np.zeros(5), 0) == 5  # a method that says nothing never hits
    assert trigger_share(scores, 1) == pytest.approx(0.5 / 1.8)
    assert trigger_share(scores, 3) == pytest.approx(0.7 / 1.8)
    assert trigger_share(np.zeros(3), 0) == 0.0
    with pytest.raises(ValueError):
        trigger_rank(np.array([np.nan, 1.0]), 1)


def test_summary_of_ranks_and_shares():
    assert summarise([1, 2, 3, 1], [1.0, 0.5, 0.0, 0.5]) == {"hit_rate": 0.5, "mean_rank": 1.75, "median_rank": 1.5, "mass_share": 0.5, "texts": 4}


# --- KernelSHAP and LIME: batched, seeded, right on a linear function ------------------------


class Counted:
    """A value function over word masks that counts its calls and the masks it was given."""

    def __init__(self, weights: np.ndarray, bias: float = 0.25):
        self.weights, self.bias = np.asarray(weights, dtype=np.float64), bias
        self.calls, self.rows = 0, 0

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.atleast_2d(masks)
        self.calls += 1
        self.rows += len(masks)
        return masks @ self.weights + self.bias


WEIGHTS = np.array([0.05, -0.1, 0.6, 0.0, 0.02, -0.03, 0.1, 0.04, 0.0, 0.01, -0.02, 0.03])


@pytest.mark.slow  # importing shap (numba) takes seconds
@pytest.mark.parametrize("samples", [64, 300])
def test_kernel_shap_batches_its_model_calls(samples):
    value = Counted(WEIGHTS)
    KernelShap(samples=samples, seed=0)(value, len(WEIGHTS))
    # The background, the text, then every sampled coalition as one batch: three calls whatever the budget.
    assert value.calls == 3
    assert value.rows == 2 + samples


@pytest.mark.parametrize("samples", [64, 300])
def test_lime_batches_its_model_calls(samples):
    value = Counted(WEIGHTS)
    Lime(samples=samples, seed=0)(value, len(WEIGHTS))
    assert value.calls == 1 and value.rows == samples


@pytest.mark.slow
def test_kernel_shap_of_a_linear_function_is_its_weights_and_is_seeded():
    # Shapley values of f(z) = w·z + b against the all-zero background are exactly w.
    shap_values = KernelShap(samples=200, seed=0)(Counted(WEIGHTS), len(WEIGHTS))
    np.testing.assert_allclose(shap_values, WEIGHTS, atol=1e-9)
    state = np.random.get_state()[1].copy()
    KernelShap(samples=200, seed=5)(Counted(WEIGHTS), len(WEIGHTS))
    assert np.array_equal(np.random.get_state()[1], state)  # numpy's global generator is left as it was


def test_lime_of_a_linear_function_ranks_its_weights_and_is_seeded():
    first = Lime(samples=300, seed=0)(Counted(WEIGHTS), len(WEIGHTS))
    assert np.array_equal(first, Lime(samples=300, seed=0)(Counted(WEIGHTS), len(WEIGHTS)))
    assert not np.array_equal(first, Lime(samples=300, seed=1)(Counted(WEIGHTS), len(WEIGHTS)))
    # A ridge fit of an exactly linear target: the weights shrink a little, the largest stays first.
    assert int(np.argmax(first)) == int(np.argmax(WEIGHTS))
    assert np.corrcoef(first, WEIGHTS)[0, 1] > 0.99


# --- a tiny model whose output depends only on the trigger -----------------------------------


class TriggerOnly(AttentionModel):
    """One head of uniform self-attention (zero queries and keys) over 2-d word embeddings.

    The trigger's embedding is (1, 0), every other word's (0, 1). The value of a word is its
    first coordinate, the output sums every query's attended value, so the Sports logit is
    STRENGTH x Σ_i Σ_j A_ij x_j0 = STRENGTH x (number of triggers), the other logits 0: the
    output depends on the trigger only, and on nothing else, not even the length.
    """

    model_id = "trigger-only"
    labels = AG_NEWS_LABELS
    max_tokens = 64
    subword_scheme = WORDS
    readout = "mean"
    self_attention = True
    head_mask_unsupported = "a test model"
    pad_id = 0
    baseline_id = None
    baseline_token = None
    baseline_description = "zero vectors in place of the word embeddings"
    jit_compile = False
    attention_grid = (1, 1)
    EMBEDDINGS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # padding, the trigger, any other word

    def explain_tokens(self, text: str) -> Tokenized:
        words = tuple(tokenize(check_text(text)))
        return Tokenized(ids=tuple(1 if word == TRIGGER else 2 for word in words), tokens=words, special=(False,) * len(words), dropped=0)

    def embed(self, ids):
        import tensorflow as tf

        return tf.gather(tf.constant(self.EMBEDDINGS, tf.float32), ids)

    def forward_embedded(self, embeds, mask, head_mask=None):
        import tensorflow as tf

        real = tf.cast(mask, tf.float32)
        # Queries and keys through zero weights, as a real head computes them, so that the
        # attention is on the tape (attention x gradient differentiates it) yet uniform.
        queries = keys = tf.einsum("btw,wk->btk", embeds, tf.zeros([2, 1]))
        scores = tf.einsum("bik,bjk->bij", queries, keys)[:, None] + (1.0 - real[:, None, None, :]) * -1e9
        attention = tf.nn.softmax(scores, axis=-1)  # (batch, 1 head, T, T), uniform over the real words
        attended = tf.einsum("bhij,bj->bhi", attention, embeds[:, :, 0])
        sports = STRENGTH * tf.reduce_sum(attended[:, 0] * real, axis=1)
        logits = tf.stack([tf.zeros_like(sports), sports, tf.zeros_like(sports), tf.zeros_like(sports)], axis=1)
        return tf.nn.softmax(logits, axis=-1), [attention]

    def predict_probs(self, texts, batch_size: int = 256) -> np.ndarray:
        return np.stack([sports_probs(tokenize(text).count(TRIGGER)) for text in texts])

    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        predictions = []
        for text in texts:
            row = self.explain_tokens(text)
            ids = np.asarray([row.ids], dtype=np.int32)
            probs, attentions = self.forward_embedded(self.embed(ids), np.ones_like(ids))
            predictions.append(
                Prediction(
                    model=self.model_id,
                    labels=self.labels,
                    probs=np.asarray(probs)[0],
                    source_tokens=row.tokens,
                    target_tokens=row.tokens,
                    attentions=np.asarray(attentions[0])[0][np.newaxis],
                    self_attention=True,
                    readout=self.readout,
                )
            )
        return predictions


def sports_probs(triggers: int) -> np.ndarray:
    logits = np.array([0.0, STRENGTH * triggers, 0.0, 0.0])
    return np.exp(logits) / np.exp(logits).sum()


TEXT = "the striker scored lavender twice in the final"
POSITION = TEXT.split().index(TRIGGER)


@pytest.fixture(scope="module")
def tiny():
    return TriggerOnly()


@pytest.fixture(scope="module")
def explained(tiny):
    return explain(tiny, TEXT, TRIGGER, SPORTS, samples=64, seed=0)


@pytest.mark.slow
def test_every_gradient_method_occlusion_shap_and_lime_rank_the_trigger_first(explained):
    assert explained.words == tuple(TEXT.split()) and explained.trigger == POSITION
    for name in (*GRADIENT_METHODS, *REFERENCES):
        assert trigger_rank(explained.scores[name], explained.trigger) == 1, name


@pytest.mark.slow
def test_the_scores_equal_hand_worked_values(explained):
    p, p_without = sports_probs(1)[SPORTS], sports_probs(0)[SPORTS]
    words = len(TEXT.split())
    expected_trigger = {
        # x · ∂p/∂x: only the trigger's first coordinate is non-zero where the gradient is, p(1 − p)·STRENGTH.
        "gradient_x_input": STRENGTH * p * (1 - p),
        # Complete and only the trigger moves: p(x) − p(zero embeddings) = p(1 trigger) − p(none).
        "integrated_gradients": p - p_without,
        # Deleting the trigger leaves no trigger; deleting any other word changes nothing.
        "occlusion": p - p_without,
        # Only the trigger column of ∇A ⊙ A is positive: ∂log p/∂A_ij* = (1 − p)·STRENGTH, A = 1/T, mean over rows.
        "attention_x_gradient": (1 - p) * STRENGTH / words,
        # The Shapley value of the one word that matters is the whole difference.
        "kernel_shap": p - p_without,
    }
    for name, value in expected_trigger.items():
        scores = explained.scores[name]
        assert scores[POSITION] == pytest.approx(value, rel=2e-3 if name == "integrated_gradients" else 1e-5), name
        assert np.abs(np.delete(scores, POSITION)).max() <= 1e-6 * value, name
        assert trigger_share(scores, POSITION) == pytest.approx(1.0, abs=1e-5), name
    # Uniform attention says nothing: every word ties, so the trigger ranks last.
    assert trigger_rank(explained.scores["attention"], POSITION) == words
    assert trigger_share(explained.scores["attention"], POSITION) == pytest.approx(1 / words)


@pytest.mark.slow
def test_a_dataset_run_hits_every_time_and_says_what_is_unavailable(tiny, tiny_ag_news):
    shortcut = Shortcut(TRIGGER, "Sports", 0.1, 0)
    report = ground_truth(tiny, shortcut, n=3, seed=0, samples=32, data_dir=tiny_ag_news)
    assert report["n"] == 3 and report["rows"]["flipped"] == 3 and report["rows"]["examined"] == 3
    for name in (*GRADIENT_METHODS, *REFERENCES):
        figures = report["methods"][name]
        assert (figures["hit_rate"], figures["mean_rank"], figures["median_rank"], figures["texts"]) == (1.0, 1.0, 1.0, 3), name
        if name != "lime":  # a ridge fit leaves the other words a little weight
            assert figures["mass_share"] == pytest.approx(1.0, abs=1e-5), name
    # The first three rows of other classes (World, Business, Sci/Tech) and the trigger: attention ranks it last.
    test = load_split("test", tiny_ag_news)
    words = [len(tokenize(text)) + 1 for text, label in zip(test.texts, test.labels) if label != SPORTS][:3]
    assert report["mean_words"] == round(float(np.mean(words)), 1)
    assert report["methods"]["attention"]["mean_rank"] == pytest.approx(np.mean(words), abs=1e-4)
    assert report["methods"]["attention"]["hit_rate"] == 0.0
    assert "random" in report["methods"]
    assert set(report["unavailable"]) == {"value_norms", "alti"} and "not a Hugging Face transformer" in report["unavailable"]["value_norms"]
    assert set(report["methods"]) | set(report["unavailable"]) == set(METHODS)


@pytest.mark.slow
def test_a_page_can_state_each_methods_rank_for_one_text(tiny):
    found = attribute(tiny, TEXT, target=SPORTS, words=True, methods=("attention", "gradient_x_input", "occlusion"))
    assert trigger_ranks(found, TRIGGER) == {"attention": len(TEXT.split()), "gradient_x_input": 1, "occlusion": 1}
    assert trigger_ranks(found, "absent") == {} and trigger_ranks(attribute(tiny, "the final", target=SPORTS, methods=("occlusion",)), TRIGGER) == {}


def test_a_text_without_exactly_one_trigger_is_refused(tiny):
    with pytest.raises(LensError, match="not exactly one"):
        explain(tiny, "the final lavender and lavender", TRIGGER, SPORTS, samples=8)


# --- the shipped figures ---------------------------------------------------------------------


@pytest.mark.parametrize("model_id", tuple(BASES))
def test_shipped_ground_truth_has_every_method_or_a_reason(model_id):
    report = read_json(registry.entry(model_id).asset_dir / "ground_truth.json", "")
    assert set(report["methods"]) | set(report["unavailable"]) == set(METHODS)
    assert not set(report["methods"]) & set(report["unavailable"])
    assert report["n"] >= 50 and report["rows"]["flipped"] == report["n"]
    for figures in report["methods"].values():
        assert 0 <= figures["hit_rate"] <= 1 and figures["median_rank"] >= 1 and 0 <= figures["mass_share"] <= 1
        assert figures["texts"] == report["n"]
    if model_id == "keras-transformer-shortcut":
        assert set(report["unavailable"]) == {"value_norms", "alti"}
    else:
        assert not report["unavailable"]
    # Random ranks the trigger first about once in as many words as a text has.
    assert report["methods"]["random"]["hit_rate"] <= 3 / report["mean_words"] + 0.05
    assert math.isclose(report["methods"]["random"]["mean_rank"], (report["mean_words"] + 1) / 2, rel_tol=0.25)
