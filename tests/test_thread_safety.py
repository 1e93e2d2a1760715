"""One model instance serves every session of the page, each in its own thread: it must give
every thread exactly the answer it gives alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from models import registry

THREADS = 16
HEADLINES = [
    "Stocks fall as oil prices climb to a record high",
    "Federer beats Nadal to reach the Wimbledon final",
    "NASA probe sends back first images from Mars",
    "Prime minister wins confidence vote after protests",
    "Microsoft releases a security patch for Windows",
    "Red Sox rally in the ninth inning to stun the Yankees",
    "Shares of the bank fell after profits missed forecasts",
    "UN Security Council calls for a ceasefire in the region",
]
DATES = [
    "Tuesday, 3rd of March 2015",
    "3. März 2015",
    "03/03/15",
    "the 1st of July 1969",
    "Freitag, 24. Dezember 1999",
    "2015 March 3",
    "12.10.1984",
    "May 5, 2020",
]


def texts_for(model_id: str) -> list[str]:
    base = DATES if registry.entry(model_id).kind == "seq2seq" else HEADLINES
    # Two different lengths per text, so threads also race on different compiled shapes.
    return [base[i % len(base)] + (" and more" * (i // len(base)) * 9) for i in range(THREADS)]


@pytest.mark.slow
@pytest.mark.parametrize("model_id", list(registry.REGISTRY))
def test_predictions_from_sixteen_threads_equal_single_threaded_ones(model_id, shipped_model):
    model = shipped_model(model_id)  # the page's one instance, which every session's thread calls
    texts = texts_for(model_id)
    alone = [model.predict(text) for text in texts]
    together: list = [None] * THREADS
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(index: int) -> None:
        try:
            start.wait()
            together[index] = model.predict(texts[index])
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for one, other in zip(alone, together):
        assert other.source_tokens == one.source_tokens and other.target_tokens == one.target_tokens
        assert other.output == one.output
        np.testing.assert_array_equal(other.probs, one.probs)
        np.testing.assert_array_equal(other.attentions, one.attentions)


@pytest.mark.slow
def test_every_model_loads_correctly_while_the_others_load_in_other_threads(shipped_model):
    """The page's warm-up thread and the first sessions load models at the same moment."""
    loaded: dict[str, object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(registry.REGISTRY))

    def load(model_id: str) -> None:
        try:
            start.wait()
            loaded[model_id] = registry.load(model_id)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(model_id,)) for model_id in registry.REGISTRY]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for model_id, model in loaded.items():
        text = texts_for(model_id)[0]
        # Against an instance loaded on its own, before or after (the page's shared one).
        np.testing.assert_array_equal(model.predict(text).attentions, shipped_model(model_id).predict(text).attentions)
