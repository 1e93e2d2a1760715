"""Any text-classification checkpoint in Hugging Face format: model id ``hf:<repo-or-folder>``.

``hf:/path/to/folder`` loads a local folder (works offline); ``hf:owner/name`` asks the hub (or
its local cache) and so needs a machine that is online unless the checkpoint is cached. Loading
arbitrary checkpoints is the operator's decision: ``models.registry`` refuses ``hf:`` ids unless
ATTENTION_LENS_ALLOW_HF=1. Remote code is never run (``trust_remote_code=False`` throughout).

The checkpoint is loaded with ``TFAutoModelForSequenceClassification`` and ``AutoTokenizer``;
labels come from its config's ``id2label``, attentions from ``output_attentions=True``.
"""

from __future__ import annotations

import re
from pathlib import Path

from models.base import LensError
from models.data import AG_NEWS_LABELS, load_split
from models.evaluation import evaluate_classifier
from models.hf_common import EVALUATION_CHUNK, TransformerClassifier, bert_style_encoder
from models.registry import HF_PREFIX

# Encoder families whose TF classifier reads the first token and takes a right-padded, masked
# batch, so padding to a fixed length cannot change the prediction, and whose attentions are
# square (layers, heads, T, T). Decoder classifiers (GPT-2) read the last token and would read
# padding; Funnel and Longformer return pooled or windowed attention shapes.
SUPPORTED_MODEL_TYPES = ("albert", "bert", "camembert", "distilbert", "electra", "roberta", "xlm-roberta")
# RoBERTa-style position ids start after the padding index, so two positions are not usable.
_POSITION_OFFSET_TYPES = ("camembert", "roberta", "xlm-roberta")
# Families whose TF layers are BERT's (self_attention, dense_output, intermediate, bert_output).
BERT_STYLE_TYPES = ("bert", "camembert", "electra", "roberta", "xlm-roberta")
LONGEST_INPUT = 512


class CheckpointNotFoundError(LensError):
    """The folder does not exist, or the hub has no such repository (or cannot be reached)."""


class NoClassificationHeadError(LensError):
    """The checkpoint is a bare encoder or a different task: it has no trained classifier."""


class UnsupportedArchitectureError(LensError):
    """No TensorFlow class exists for the architecture, or Attention Lens cannot show it."""


def checkpoint_source(model_id: str) -> str:
    """The folder or hub repository named by ``hf:<repo-or-folder>``."""
    spec = model_id.removeprefix(HF_PREFIX).strip()
    if not spec:
        raise CheckpointNotFoundError("write hf: followed by a hub repository (owner/name) or a folder")
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise CheckpointNotFoundError(f"{spec} is a file; hf: needs the folder that holds config.json")
    # Hub ids are "name" or "owner/name"; anything else can only have meant a folder.
    if spec.startswith(("/", ".", "~")) or spec.count("/") > 1:
        raise CheckpointNotFoundError(f"the folder {spec} does not exist")
    return spec


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


def _load_config(source: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=False)
    except ValueError as exc:
        # Unknown model_type, or a config that asks to run the repository's own code.
        raise UnsupportedArchitectureError(f"{source}: {_first_line(exc)} (Attention Lens never runs a checkpoint's own code)") from None
    except OSError as exc:
        raise CheckpointNotFoundError(f"no checkpoint at {source!r}: not a local folder, and the hub could not provide it ({_first_line(exc)})") from None


def check_architecture(config, source: str) -> None:
    from transformers.models.auto.modeling_tf_auto import TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    model_type = config.model_type
    if model_type not in TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        raise UnsupportedArchitectureError(f"{source}: {model_type!r} models have no TensorFlow class in transformers, so this app cannot load them")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedArchitectureError(f"{source}: {model_type!r} models are not supported; supported families: {', '.join(SUPPORTED_MODEL_TYPES)}")
    architectures = config.architectures or []
    if architectures and not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise NoClassificationHeadError(f"{source} is a {', '.join(architectures)} checkpoint without a text-classification head")
    problem = config.problem_type or ("regression" if config.num_labels < 2 else "single_label_classification")
    if problem != "single_label_classification":
        raise NoClassificationHeadError(f"{source} has a {problem} head; Attention Lens shows the class probabilities of single-label classifiers")


def max_tokens(config, tokenizer) -> int:
    limits = [LONGEST_INPUT, config.max_position_embeddings]
    if config.model_type in _POSITION_OFFSET_TYPES:
        limits[1] -= config.pad_token_id + 1
    # Tokenizers saved without a limit report a huge sentinel (1e30).
    if tokenizer.model_max_length < 1_000_000:
        limits.append(tokenizer.model_max_length)
    return min(limits)


class CheckpointClassifier(TransformerClassifier):
    """A TF ``*ForSequenceClassification`` model behind the two hooks of TransformerClassifier.

    BERT-style families (``BERT_STYLE_TYPES``) run their encoder layer by layer
    (``bert_style_encoder``), so heads can be switched off per call, then the checkpoint's own
    classification head; the others are called whole, with ``inputs_embeds``.
    """

    def __init__(self, model_id: str, config, tokenizer, model):
        labels = tuple(str(config.id2label[index]) for index in range(config.num_labels))
        # Plain graph compilation, not XLA: not every family's ops are known to compile with XLA.
        super().__init__(model_id, labels, tokenizer, max_tokens(config, tokenizer), jit_compile=False)
        self.model = model
        self.model_type = config.model_type
        if self.model_type not in BERT_STYLE_TYPES:
            self.head_mask_unsupported = f"switching heads off is available for {', '.join(BERT_STYLE_TYPES)} checkpoints, not {self.model_type}"

    @property
    def attention_grid(self) -> tuple[int, int]:
        config = self.model.config
        return config.num_hidden_layers, config.num_attention_heads

    def embed(self, ids):
        import tensorflow as tf

        return tf.gather(self.model.get_input_embeddings().weight, ids)

    def forward_embedded(self, embeds, mask, head_mask=None):
        import tensorflow as tf

        if self.model_type not in BERT_STYLE_TYPES:
            if head_mask is not None:
                raise LensError(self.head_mask_unsupported)
            outputs = self.model(input_ids=None, inputs_embeds=embeds, attention_mask=mask, output_attentions=True, training=False)
            return tf.nn.softmax(outputs.logits, axis=-1), list(outputs.attentions)
        main = getattr(self.model, self.model.base_model_prefix)
        states, attentions = bert_style_encoder(main, embeds, mask, head_mask)
        if self.model_type == "bert":
            # TFBertForSequenceClassification: pooler (dense + tanh on [CLS]), dropout, classifier.
            logits = self.model.classifier(self.model.dropout(main.pooler(states[-1]), training=False))
        else:
            # RoBERTa-style and ELECTRA heads read the sequence output's first token themselves.
            logits = self.model.classifier(states[-1], training=False)
        return tf.nn.softmax(logits, axis=-1), attentions


def load(model_id: str, asset_dir: Path | None = None) -> CheckpointClassifier:
    """Load ``hf:<repo-or-folder>``; ``asset_dir`` is unused (the checkpoint is its own folder)."""
    source = checkpoint_source(model_id)
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    config = _load_config(source)
    check_architecture(config, source)
    # transformers logs pages of advice while converting weights; the errors below say what matters.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointNotFoundError(f"{source} has no usable tokenizer ({_first_line(exc)})") from None
        try:
            model, info = TFAutoModelForSequenceClassification.from_pretrained(source, config=config, trust_remote_code=False, output_loading_info=True)
        except (OSError, ValueError) as exc:
            raise CheckpointNotFoundError(f"{source} has no weights TensorFlow can read ({_first_line(exc)})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    # TF checkpoints do not store weightless layers (dropout), which then count as "missing".
    weightless = {layer.name for layer in model.layers if not layer.weights}
    missing = sorted(set(info["missing_keys"]) - weightless)
    if missing:
        raise NoClassificationHeadError(f"{source} has no trained classification head (missing weights: {', '.join(missing[:3])})")
    return CheckpointClassifier(f"{HF_PREFIX}{model_id.removeprefix(HF_PREFIX).strip()}", config, tokenizer, model)


def _label_key(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.lower())


def evaluate(model: CheckpointClassifier, *, data_dir=None, limit=None) -> dict:
    """AG News test accuracy, for checkpoints whose labels are the AG News classes in order."""
    if [_label_key(label) for label in model.labels] != [_label_key(label) for label in AG_NEWS_LABELS]:
        raise LensError(
            f"{model.model_id} predicts {', '.join(model.labels)}; evaluation needs an AG News classifier "
            f"whose config id2label names {', '.join(AG_NEWS_LABELS)} in that order"
        )
    return evaluate_classifier(model, load_split("test", data_dir, limit), batch_size=EVALUATION_CHUNK)


def train(model_id: str, **_options) -> dict:
    raise LensError(f"{model_id} is an external checkpoint: fine-tune it with transformers, save it to a folder and load it as hf:FOLDER")
