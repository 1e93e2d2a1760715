"""Tiny randomly initialised Hugging Face classifiers saved to folders, for hf: checkpoint tests."""

from __future__ import annotations

from pathlib import Path

TEXT = "the transformers team won the match!"
WORDS = ["the", "team", "won", "match", "stocks", "rise", "on", "a", "new", "chip", "play", "transform", "##ers", "##ing", "!"]
CORPUS = ["the team won the match", "stocks rise on a new chip", "transformers play the match!", "playing stocks"] * 5
THREE_LABELS = {0: "World", 1: "Sports", 2: "Business"}
SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)


def _wordpiece_tokenizer(folder: Path, tokenizer_class):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return tokenizer_class(vocab_file=str(folder / "vocab.txt"))


def _roberta_tokenizer(folder: Path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(folder))
    return RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))


def _albert_tokenizer(folder: Path):
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import AlbertTokenizerFast

    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(CORPUS, vocab_size=60, special_tokens=["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], unk_token="<unk>", show_progress=False)
    backend = unigram._tokenizer
    backend.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", backend.token_to_id("[CLS]")), ("[SEP]", backend.token_to_id("[SEP]"))]
    )
    return AlbertTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def make_checkpoint(folder: Path, family: str = "bert", labels: dict = THREE_LABELS, head: bool = True) -> Path:
    """Save a tiny random TF classifier (or bare encoder) of ``family`` with its tokenizer."""
    import transformers as hf

    hf.set_seed(0)  # the same weights on every run, so that what a test sees does not depend on luck
    label_config = dict(num_labels=len(labels), id2label=labels, label2id={v: k for k, v in labels.items()})
    if family == "roberta":
        tokenizer = _roberta_tokenizer(folder)
        config = hf.RobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **{**SIZE, "max_position_embeddings": 66}, **label_config)
    elif family == "albert":
        tokenizer = _albert_tokenizer(folder)
        config = hf.AlbertConfig(vocab_size=len(tokenizer), embedding_size=16, pad_token_id=tokenizer.pad_token_id, **SIZE, **label_config)
    elif family == "distilbert":
        tokenizer = _wordpiece_tokenizer(folder, hf.DistilBertTokenizerFast)
        config = hf.DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64, **label_config)
    elif family == "electra":
        tokenizer = _wordpiece_tokenizer(folder, hf.ElectraTokenizerFast)
        config = hf.ElectraConfig(vocab_size=len(tokenizer), embedding_size=16, **SIZE, **label_config)
    else:
        tokenizer = _wordpiece_tokenizer(folder, hf.BertTokenizerFast)
        config = hf.BertConfig(vocab_size=len(tokenizer), **SIZE, **label_config)
    model_class = getattr(hf, f"TF{type(config).__name__.removesuffix('Config')}{'ForSequenceClassification' if head else 'Model'}")
    model = model_class(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
