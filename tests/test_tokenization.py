from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from model.tokenization import (
    IGNORE_INDEX, align_bio_labels, bio_label_names, char_span_to_tokens, decode_bio, load_tokenizer, pad_batch,
)

TEXT = "Hezbollah fighters attacked Kharkiv"


def tokenizer(tiny_base_model: Path) -> Tokenizer:
    return load_tokenizer(tiny_base_model / "tokenizer.json", max_length=48)


def test_alignment_labels_first_subtokens_and_ignores_the_rest(tiny_base_model: Path) -> None:
    tok = tokenizer(tiny_base_model)
    encoding = tok.encode(TEXT)
    names = bio_label_names(["INITIATOR", "TARGET"])
    label2id = {n: i for i, n in enumerate(names)}
    labels = align_bio_labels(encoding, [(0, 18, "INITIATOR"), (28, 35, "TARGET")], label2id)
    tags = [names[l] if l != IGNORE_INDEX else None for l in labels]
    assert tags[0] is None and tags[-1] is None  # [CLS], [SEP]
    first_tokens = {}
    for index, word in enumerate(encoding.word_ids):
        if word is not None and word not in first_tokens:
            first_tokens[word] = index
    word_tags = [tags[first_tokens[w]] for w in sorted(first_tokens)]
    assert word_tags == ["B-INITIATOR", "I-INITIATOR", "O", "B-TARGET"]
    # every non-first sub-token is ignored
    for index, word in enumerate(encoding.word_ids):
        if word is not None and first_tokens[word] != index:
            assert labels[index] == IGNORE_INDEX


def test_no_actor_annotation_means_no_token_is_trained(tiny_base_model: Path) -> None:
    encoding = tokenizer(tiny_base_model).encode(TEXT)
    assert set(align_bio_labels(encoding, None, {"O": 0})) == {IGNORE_INDEX}
    assert set(align_bio_labels(encoding, [], {"O": 0})) == {IGNORE_INDEX, 0}


def test_adjacent_spans_of_one_role_stay_apart(tiny_base_model: Path) -> None:
    encoding = tokenizer(tiny_base_model).encode("Hezbollah fighters")
    names = bio_label_names(["INITIATOR"])
    label2id = {n: i for i, n in enumerate(names)}
    labels = [names[l] for l in align_bio_labels(encoding, [(0, 9, "INITIATOR"), (10, 18, "INITIATOR")], label2id)
              if l != IGNORE_INDEX]
    assert labels == ["B-INITIATOR", "B-INITIATOR"]


def test_decoding_inverts_alignment(tiny_base_model: Path) -> None:
    encoding = tokenizer(tiny_base_model).encode(TEXT)
    names = bio_label_names(["INITIATOR", "TARGET"])
    label2id = {n: i for i, n in enumerate(names)}
    labels = np.array([max(l, 0) for l in align_bio_labels(encoding, [(0, 18, "INITIATOR"), (28, 35, "TARGET")], label2id)])
    spans = decode_bio(encoding, labels, np.ones(len(labels)), dict(enumerate(names)))
    assert [(s, e, r) for s, e, r, *_ in spans] == [(0, 18, "INITIATOR"), (28, 35, "TARGET")]
    assert TEXT[spans[1][0]:spans[1][1]] == "Kharkiv"


def test_char_span_to_tokens_and_truncation(tiny_base_model: Path) -> None:
    tok = tokenizer(tiny_base_model)
    encoding = tok.encode(TEXT)
    first, last = char_span_to_tokens(encoding, 28, 35)
    assert encoding.offsets[first][0] == 28 and encoding.offsets[last][1] == 35
    short = load_tokenizer(tiny_base_model / "tokenizer.json", max_length=4).encode(TEXT)
    assert char_span_to_tokens(short, 28, 35) is None


def test_pad_batch_pads_to_the_longest(tiny_base_model: Path) -> None:
    tok = tokenizer(tiny_base_model)
    batch = pad_batch([tok.encode("Police fired."), tok.encode(TEXT)])
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum() == batch["input_ids"].shape[1]
