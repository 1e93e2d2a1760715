"""The small interface every model wrapper implements, and the errors it may raise."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from models.contract import Prediction
from models.maths.tokens import WORDS

# Tokenising megabytes of pasted text would stall a shared classroom server for everyone;
# no model here reads more than 512 tokens anyway.
MAX_INPUT_CHARS = 20_000

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"


class LensError(Exception):
    """An error whose message is meant for the user: shown as one line, never as a traceback."""


class InputError(LensError):
    """The text given to a model cannot be used (empty, too long)."""


class AssetError(LensError):
    """A shipped file (weights, vocabulary, metrics) is missing or unreadable."""

    def __init__(self, path: Path, problem: str, remedy: str):
        super().__init__(f"{_display_path(path)} {problem}; {remedy}")
        self.path = path


class UnknownModelError(LensError):
    """No model is registered under the requested id."""


def _display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def retrain_remedy(model_id: str) -> str:
    """What to tell the user when one of ``model_id``'s trained files is missing or broken."""
    return f"run `python -m models train {model_id}` to recreate it"


def first_line(exc: Exception) -> str:
    """An exception as one line for the user: its type and the first line of its message.

    Keras explains a weights file that does not fit the model over many lines, down to the
    variables' values; an error shown on the page stays one line.
    """
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0].rstrip(':')}" if lines else exc.__class__.__name__


def load_weights(model, path: Path, remedy: str) -> None:
    """Load a Keras weights file into ``model``, raising AssetError naming the file if it fails."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(path, "is missing", remedy)
    try:
        model.load_weights(path)
    except Exception as exc:  # h5py/keras raise many types for truncated or foreign files
        raise AssetError(path, f"could not be loaded ({first_line(exc)})", remedy) from None


def check_text(text: object) -> str:
    """Return ``text`` if a model can read it, else raise InputError saying why."""
    if not isinstance(text, str):
        raise InputError(f"expected text, got {type(text).__name__}")
    if not text.strip():
        raise InputError("the text is empty: type a sentence to see what the model attends to")
    if len(text) > MAX_INPUT_CHARS:
        raise InputError(f"the text has {len(text):,} characters; the limit is {MAX_INPUT_CHARS:,}")
    return text


class AttentionModel(ABC):
    """A loaded model that returns predictions together with its attention weights.

    Subclasses set ``model_id``, ``labels`` and ``max_tokens`` and implement
    ``_predict_checked``; input checking lives here once. Classifiers also offer
    ``predict_probs(texts, batch_size)`` (probabilities only, for evaluation). One instance is
    shared by every session of the app, so ``predict`` must be safe to call from many threads.
    ``subword_scheme`` says how the tokens mark pieces of words, for
    ``models.maths.tokens.merge_prediction``; models whose tokens are words keep "words".
    """

    model_id: str
    labels: tuple[str, ...]
    max_tokens: int
    subword_scheme: str = WORDS

    def predict(self, text: str) -> Prediction:
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        checked = [check_text(t) for t in texts]
        return self._predict_checked(checked) if checked else []

    @abstractmethod
    def _predict_checked(self, texts: list[str]) -> list[Prediction]:
        """Predict for texts that already passed ``check_text``."""
