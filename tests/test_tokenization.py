from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from eventcoder.model.tokenization import (
    IGNORE_INDEX, align_bio_labels, bio_label_names, char_span_to_tokens, constrained_bio_path, decode_bio,
    load_tokenizer, pad_batch, words_of,
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
    spans = decode_bio(encoding, np.eye(len(names))[labels], dict(enumerate(names)))
    assert [(s, e, r) for s, e, r, *_ in spans] == [(0, 18, "INITIATOR"), (28, 35, "TARGET")]
    assert TEXT[spans[1][0]:spans[1][1]] == "Kharkiv"
    assert [span[3] for span in spans] == [1.0, 1.0]  # the mean probability of the chosen tags


def _word_probs(encoding: Encoding, names: list[str], rows: list[dict[str, float]]) -> np.ndarray:
    """A tokens x tags matrix whose first sub-token of word i carries rows[i] (the rest to 'O')."""
    probs = np.zeros((len(encoding.ids), len(names)))
    probs[:, names.index("O")] = 1.0
    for word, row in zip(words_of(encoding), rows):
        probs[word.first_token] = [row.get(name, 0.0) for name in names]
    return probs


def test_decoding_keeps_a_name_whole_when_the_best_path_says_so(tiny_base_model: Path) -> None:
    """Word by word the best tags are B I O I, which cuts the name in two; the best valid sequence is B I I I."""
    text = "Guardians of the Blood attacked."
    encoding = tokenizer(tiny_base_model).encode(text)
    names = bio_label_names(["INITIATOR", "TARGET"])
    probs = _word_probs(encoding, names, [
        {"B-INITIATOR": 0.9, "O": 0.1}, {"I-INITIATOR": 0.6, "O": 0.4}, {"O": 0.55, "I-INITIATOR": 0.45},
        {"I-INITIATOR": 0.6, "B-INITIATOR": 0.1, "O": 0.3}, {"O": 1.0}, {"O": 1.0}])
    spans = decode_bio(encoding, probs, dict(enumerate(names)))
    assert [(text[s:e], role) for s, e, role, *_ in spans] == [("Guardians of the Blood", "INITIATOR")]
    assert abs(spans[0][3] - np.mean([0.9, 0.6, 0.45, 0.6])) < 1e-9


def test_decoding_never_continues_a_span_of_another_role(tiny_base_model: Path) -> None:
    """Word by word: B-INITIATOR then I-TARGET, which would open a second span of another role; an I-TARGET
    cannot follow B-INITIATOR, so the best valid sequence is one INITIATOR span."""
    text = "Rebel fighters attacked."
    encoding = tokenizer(tiny_base_model).encode(text)
    names = bio_label_names(["INITIATOR", "TARGET"])
    probs = _word_probs(encoding, names, [
        {"B-INITIATOR": 0.8, "O": 0.2}, {"I-TARGET": 0.5, "I-INITIATOR": 0.4, "O": 0.1}, {"O": 1.0}, {"O": 1.0}])
    spans = decode_bio(encoding, probs, dict(enumerate(names)))
    assert [(text[s:e], role) for s, e, role, *_ in spans] == [("Rebel fighters", "INITIATOR")]
    assert constrained_bio_path(np.log(np.array([[0.1, 0.9]])), ("O", "I-TARGET")) == [0]  # never starts inside


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
