"""Helpers shared by the tests (fixtures live in conftest.py and use these)."""

from __future__ import annotations

import json
import re
import socket
import string
from pathlib import Path
from typing import Any

from eventcoder.training.authoring import Schema, parse_line

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent


def tiny_records() -> list[dict[str, Any]]:
    schema = Schema.load(REPO / "data" / "schema.json")
    records = []
    path = FIXTURES / "tiny_authoring.txt"
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            records.append(parse_line(line, schema, str(path), line_no))
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def build_tiny_base_model(directory: Path, texts: list[str]) -> Path:
    """A WordPiece tokenizer over the fixture vocabulary and a random 2-layer, hidden-32 BERT."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    pieces = list(string.ascii_lowercase + string.digits) + [f"##{c}" for c in string.ascii_lowercase + string.digits]
    vocab_list = specials + list(dict.fromkeys(pieces + words + list(string.punctuation)))
    vocab = {token: i for i, token in enumerate(vocab_list)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(directory))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(directory))
    return directory


def tiny_config(base: Path, corpus: dict[str, Path], output: Path, **changes: Any) -> Any:
    from eventcoder.training.config import TrainConfig

    config = TrainConfig(base_model=str(base), train_file=str(corpus["train"]), dev_file=str(corpus["dev"]),
                         output_dir=str(output), epochs=25, batch_size=8, max_length=48, learning_rate=1e-3,
                         head_learning_rate=1e-2, bf16=False, seed=7)
    return config.override(**changes) if changes else config


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
