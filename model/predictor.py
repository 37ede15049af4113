"""The Predictor: documents in, prediction records (docs/spec.md) out. Shared by the web page and the scorer."""

from __future__ import annotations

import os
import re
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
from tokenizers import Encoding, Tokenizer

from eventcoder.model.backends import Backend, Batch, OnnxBackend
from eventcoder.model.directory import (
    ONNX_FILE, ONNX_INT8_FILE, TOKENIZER_FILE, ModelDirectoryError, ModelMetadata, load_numpy_weights,
    read_metadata,
)
from eventcoder.model.gazetteer import resolve_country
from eventcoder.model.heads import (
    ACTOR_HEAD, ACTOR_TYPE_HEAD, EVENT_HEAD, MODE_HEAD, STANCE_HEAD, head_sizes, linear, pick_mode, softmax,
    span_features,
)
from eventcoder.model.sentences import split_sentences
from eventcoder.model.tokenization import char_span_to_tokens, decode_bio, first_sequence_span, load_tokenizer, pad_batch


@dataclass
class ActorPrediction:
    text: str
    start: int
    end: int
    role: str
    score: float
    stance: str | None = "NONE"     # None: the model has no stance head (the keys are left out)
    stance_score: float = 0.0
    type: str = ""
    type_score: float = 0.0
    country: str = ""

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"text": self.text, "start": self.start, "end": self.end, "role": self.role,
                                  "score": round(self.score, 4)}
        if self.stance is not None:
            record.update(stance=self.stance, stance_score=round(self.stance_score, 4))
        record.update(type=self.type, type_score=round(self.type_score, 4), country=self.country)
        return record


@dataclass
class StancePrediction:
    target: str
    stance: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "stance": self.stance, "score": round(self.score, 4)}


@dataclass
class SentencePrediction:
    doc_id: str
    sentence_index: int
    start: int
    end: int
    text: str
    event_type: str | None          # None: the model has no event head (event and mode keys left out)
    event_score: float
    event_scores: dict[str, float]
    mode: str = ""
    mode_score: float = 0.0
    actors: list[ActorPrediction] | None = field(default_factory=list)     # None: no actor head
    stance: list[StancePrediction] | None = field(default_factory=list)    # None: no stance head
    model: str = ""
    # "k/n" on the pieces of a sentence longer than the model's window, coded piece by piece
    part: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The prediction record (docs/spec.md), fields in that order; `part` only on pieces of an
        overlong sentence; the keys of a head the model does not have are left out."""
        record: dict[str, Any] = {
            "doc_id": self.doc_id, "sentence_index": self.sentence_index, "start": self.start,
            "end": self.end, "text": self.text}
        if self.event_type is not None:
            record.update(event_type=self.event_type, event_score=round(self.event_score, 4),
                          event_scores={k: round(v, 4) for k, v in self.event_scores.items()},
                          mode=self.mode, mode_score=round(self.mode_score, 4))
        if self.actors is not None:
            record["actors"] = [a.to_dict() for a in self.actors]
        if self.stance is not None:
            record["stance"] = [s.to_dict() for s in self.stance]
        record["model"] = self.model
        if self.part:
            record["part"] = self.part
        return record


@dataclass
class SentenceOutputs:
    """Raw head outputs for one sentence (used by `evaluate`, which needs gold-span scores)."""

    event_probs: np.ndarray
    mode_logits: np.ndarray
    spans: list[tuple[int, int, str, float]]           # predicted (start, end, role, score)
    span_stance_probs: list[np.ndarray]                # per predicted span
    span_type_probs: list[np.ndarray]
    # per given span: the gold actors in evaluation, free-text targets found in the sentence in prediction
    given_stance_probs: list[np.ndarray | None] = field(default_factory=list)
    given_type_probs: list[np.ndarray | None] = field(default_factory=list)


TargetsArg = Sequence[str] | Sequence[Sequence[str]] | None
Item = TypeVar("Item")
Result = TypeVar("Result")


class Predictor:
    """Runs every head in one encoder pass per sentence, plus one batched pass per free-text target."""

    def __init__(self, metadata: ModelMetadata, tokenizer: Tokenizer, backend: Backend,
                 head_weights: dict[str, np.ndarray], batch_size: int = 32, wave_size: int = 1024) -> None:
        self.metadata = metadata
        self.tokenizer = tokenizer
        self.backend = backend
        self.head_weights = head_weights
        self.batch_size = batch_size
        self.wave_size = max(batch_size, wave_size)
        maps = metadata.label_maps
        self.heads = frozenset(maps)   # a head not here is absent: no output, no record keys
        self.event_labels = maps[EVENT_HEAD].labels if EVENT_HEAD in maps else []
        self.mode_labels = maps[MODE_HEAD].labels if MODE_HEAD in maps and self.event_labels else []
        self.bio_id2label = maps[ACTOR_HEAD].id2label if ACTOR_HEAD in maps else {}
        self.stance_labels = maps[STANCE_HEAD].labels if STANCE_HEAD in maps else []
        self.type_labels = maps[ACTOR_TYPE_HEAD].labels if ACTOR_TYPE_HEAD in maps and self.bio_id2label else []
        self.pad_id = tokenizer.token_to_id("[PAD]") or 0
        self._no_truncation: Tokenizer | None = None

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, model_dir: Path | str, backend: str = "auto", batch_size: int = 32,
                        threads: int | None = None) -> "Predictor":
        """Load a model directory. backend: auto (int8 ONNX, else fp32 ONNX, else torch), onnx,
        onnx-int8, or torch. The ONNX backends never import torch."""
        model_dir = Path(model_dir)
        metadata = read_metadata(model_dir)
        tokenizer = load_tokenizer(model_dir / TOKENIZER_FILE, metadata.max_length)
        heads = load_numpy_weights(model_dir)
        chosen = _choose_backend(model_dir, metadata, backend)
        if chosen == "torch":
            from eventcoder.model.backends import TorchBackend

            if threads:
                import torch

                torch.set_num_threads(threads)
            runner: Backend = TorchBackend.from_directory(model_dir, head_sizes(metadata.label_maps),
                                                          metadata.encoder_config)
        else:
            runner = OnnxBackend(model_dir / chosen, threads=threads)
        return cls(metadata, tokenizer, runner, heads, batch_size=batch_size)

    @property
    def model_tag(self) -> str:
        return self.metadata.tag

    # -------------------------------------------------------------- prediction
    def predict(self, texts: Sequence[str], targets: TargetsArg = None, split: bool = True,
                doc_ids: Sequence[str] | None = None, cut_long: bool = True) -> list[SentencePrediction]:
        """Split each text into sentences (unless split=False) and code every sentence.

        `targets` adds free-text stance targets: one list for all texts, or one list per text.
        A sentence longer than the model's window is coded in pieces (`part` "k/n" on each record);
        with `cut_long=False` it is coded on its first window only.
        """
        per_text_targets = _targets_per_text(targets, len(texts))
        sentences: list[tuple[int, int, int, str]] = []   # (text index, start, end, sentence)
        outputs: list[SentenceOutputs] = []
        too_long: list[bool] = []                          # past the model's window: coded again in pieces

        found: list[list[tuple[int, int] | None]] = []   # per sentence, per target: where the sentence names it

        def outputs_of(item: tuple[int, int, int, str], encoding: Encoding, out: Batch, row: int
                       ) -> tuple[SentenceOutputs, list[tuple[int, int] | None], bool]:
            places = [find_target(item[3], target) for target in per_text_targets[item[0]]]
            cut = len(encoding.ids) >= self.metadata.max_length and bool(encoding.overflowing)
            return self._sentence_outputs(encoding, out, row, [p for p in places if p is not None]), places, cut

        # splitting is lazy: the next wave of sentences is split while the model codes the last one
        for item, (output, places, cut) in self._stream(_sentence_items(texts, split), lambda item: item[3], outputs_of):
            sentences.append(item)
            outputs.append(output)
            found.append(places)
            too_long.append(cut)
        target_lists = [per_text_targets[s[0]] for s in sentences]
        free_text = self._free_text_stance([s[3] for s in sentences], target_lists, outputs, found)
        coded: list[tuple[int, SentencePrediction]] = []
        for (text_index, start, end, sentence), out, extra, cut in zip(sentences, outputs, free_text, too_long):
            doc_id = str(doc_ids[text_index]) if doc_ids is not None else str(text_index)
            if cut and cut_long:
                coded.extend((text_index, piece) for piece in
                             self._coded_in_pieces(doc_id, start, sentence, per_text_targets[text_index]))
            else:
                coded.append((text_index, self._record(doc_id, 0, start, end, sentence, out, extra)))
        counters: dict[int, int] = {}
        for text_index, record in coded:
            record.sentence_index = counters.get(text_index, 0)
            counters[text_index] = record.sentence_index + 1
        return [record for _, record in coded]

    def _coded_in_pieces(self, doc_id: str, start: int, sentence: str, targets: Sequence[str]
                         ) -> list[SentencePrediction]:
        """A sentence longer than the model's window, coded as consecutive pieces that each fit, cut
        between words: nothing past the window is dropped, and each piece says which part it is."""
        spans = window_pieces(self._untruncated_tokenizer(), sentence, self.metadata.max_length - 2)
        pieces = self.predict([sentence[s:e] for s, e in spans], targets=[list(targets)] * len(spans), split=False,
                              cut_long=False)
        for k, (piece, (s, e)) in enumerate(zip(pieces, spans), start=1):
            piece.doc_id, piece.start, piece.end, piece.part = doc_id, start + s, start + e, f"{k}/{len(spans)}"
        return pieces

    def _untruncated_tokenizer(self) -> Tokenizer:
        if self._no_truncation is None:
            copy = Tokenizer.from_str(self.tokenizer.to_str())
            copy.no_truncation()
            self._no_truncation = copy
        return self._no_truncation

    def analyze(self, sentences: Sequence[str],
                gold_spans: Sequence[Sequence[tuple[int, int]]] | None = None) -> list[SentenceOutputs]:
        """One encoder pass per sentence, batched by length; optional gold spans get span scores."""
        def outputs(index: int, encoding: Encoding, out: Batch, row: int) -> SentenceOutputs:
            return self._sentence_outputs(encoding, out, row, gold_spans[index] if gold_spans is not None else None)

        return [result for _, result in self._stream(range(len(sentences)), lambda i: sentences[i], outputs)]

    def _stream(self, items: Iterable[Item], text_of: Callable[[Item], str | tuple[str, str]],
                process: Callable[[Item, Encoding, Batch, int], Result]) -> Iterator[tuple[Item, Result]]:
        """Encode `items`, run them and `process` each one's row of outputs; yields (item, result) in the
        items' order.

        Items go in waves of `wave_size`: a wave is sorted by length into batches (little padding) that all
        start on the backend's threads at once. The next wave is read (for `predict`: split into sentences)
        and started before a wave is processed, so no core waits for the reading or the post-processing;
        a batch's raw outputs are dropped as soon as its rows are processed (bounded memory).
        """
        in_flight: deque[tuple[list[Item], list[Encoding], list[tuple[list[int], Future[Batch]]]]] = deque()
        for wave in _waves(items, self.wave_size):
            in_flight.append(self._start_wave(wave, text_of))
            if len(in_flight) > 1:
                yield from _finish_wave(*in_flight.popleft(), process)
        while in_flight:
            yield from _finish_wave(*in_flight.popleft(), process)

    def _start_wave(self, wave: list[Item], text_of: Callable[[Item], str | tuple[str, str]]
                    ) -> tuple[list[Item], list[Encoding], list[tuple[list[int], Future[Batch]]]]:
        encodings = self.tokenizer.encode_batch([text_of(item) for item in wave])
        # longest first: the batches still running at the end of a wave are the cheap ones
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids), reverse=True)
        batches = []
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batches.append((chunk, self.backend.submit(pad_batch([encodings[i] for i in chunk], self.pad_id))))
        return wave, encodings, batches

    def _sentence_outputs(self, encoding: Encoding, out: dict[str, np.ndarray], row: int,
                          given: Sequence[tuple[int, int]] | None) -> SentenceOutputs:
        n = len(encoding.ids)
        hidden, pooled = out["hidden"][row, :n], out["pooled"][row]
        decoded = decode_bio(encoding, softmax(out["bio_logits"][row, :n]), self.bio_id2label) if self.bio_id2label else []
        stance_probs, type_probs = [], []
        for span in decoded:
            feats = span_features(hidden, pooled, span.first_token, span.last_token)
            stance_probs.append(self._stance_probs(feats))
            type_probs.append(self._type_probs(feats))
        empty = np.zeros(0, dtype=np.float32)
        result = SentenceOutputs(
            event_probs=softmax(out["event_logits"][row]) if self.event_labels else empty,
            mode_logits=out["mode_logits"][row].copy() if self.mode_labels else empty,
            spans=[(span.start, span.end, span.role, span.score) for span in decoded],
            span_stance_probs=stance_probs, span_type_probs=type_probs)
        for start, end in given or []:
            tokens = char_span_to_tokens(encoding, start, end)
            if tokens is None:
                result.given_stance_probs.append(None)
                result.given_type_probs.append(None)
                continue
            feats = span_features(hidden, pooled, *tokens)
            result.given_stance_probs.append(self._stance_probs(feats))
            result.given_type_probs.append(self._type_probs(feats))
        return result

    def _stance_probs(self, feats: np.ndarray) -> np.ndarray:
        """Stance probabilities of a span (empty when the model has no stance head)."""
        if not self.stance_labels:
            return np.zeros(0, dtype=np.float32)
        return softmax(linear(self.head_weights, STANCE_HEAD, feats))

    def _type_probs(self, feats: np.ndarray) -> np.ndarray:
        if not self.type_labels:
            return np.zeros(0, dtype=np.float32)
        return softmax(linear(self.head_weights, ACTOR_TYPE_HEAD, feats))

    def _free_text_stance(self, sentences: Sequence[str], target_lists: Sequence[Sequence[str]],
                          outputs: Sequence[SentenceOutputs], found: Sequence[Sequence[tuple[int, int] | None]]
                          ) -> list[list[StancePrediction]]:
        """Stance toward user-named targets, in the caller's order, by what the sentence says of them:
        - named (whole words, any case): read from the sentence's own pass like an actor span, so it
          matches that actor's stance. On the dev split's gold targets the pair pass alone scored
          stance macro-F1 0.53, this 0.84;
        - not a single word of it in the sentence: NONE (the rule of docs/annotation.md). The pair pass
          called 60% of dev sentences FAVOR or AGAINST five targets none of them mentions;
        - some of its words in the sentence ("US troops in Iraq" for "US troops shelled..."): a
          (target, sentence) pair pass, batched by length.
        """
        if not self.stance_labels:
            return [[] for _ in target_lists]
        results: list[list[StancePrediction | None]] = [[None] * len(targets) for targets in target_lists]
        pairs: list[tuple[int, int, str]] = []   # (sentence, position among its targets, target)
        for i, (targets, places, out) in enumerate(zip(target_lists, found, outputs)):
            given = iter(out.given_stance_probs)
            for k, (target, place) in enumerate(zip(targets, places)):
                probs = next(given) if place is not None else None
                if probs is None:
                    if place is None and "NONE" in self.stance_labels and not shares_a_word(sentences[i], target):
                        results[i][k] = StancePrediction(target, "NONE", 1.0)
                    else:
                        pairs.append((i, k, target))
                    continue
                best = int(probs.argmax())
                results[i][k] = StancePrediction(target, self.stance_labels[best], float(probs[best]))
        self._pair_stance(sentences, pairs, results)
        return [[p for p in row if p is not None] for row in results]

    def _pair_stance(self, sentences: Sequence[str], pairs: list[tuple[int, int, str]],
                     results: list[list[StancePrediction | None]]) -> None:
        """Fill results[sentence][position] for each (sentence, position, target) from a pair pass."""
        if not pairs:
            return

        def stance(pair: tuple[int, int, str], encoding: Encoding, out: Batch, row: int) -> StancePrediction | None:
            span = first_sequence_span(encoding)
            if span is None:
                return None
            n = len(encoding.ids)
            feats = span_features(out["hidden"][row, :n], out["pooled"][row], *span)
            probs = softmax(linear(self.head_weights, STANCE_HEAD, feats))
            best = int(probs.argmax())
            return StancePrediction(pair[2], self.stance_labels[best], float(probs[best]))

        for (sentence_index, position, _), prediction in self._stream(pairs, lambda p: (p[2], sentences[p[0]]), stance):
            results[sentence_index][position] = prediction

    def _record(self, doc_id: str, sentence_index: int, start: int, end: int, sentence: str,
                out: SentenceOutputs, free_text: list[StancePrediction]) -> SentencePrediction:
        best = int(out.event_probs.argmax()) if self.event_labels else 0
        event_type = self.event_labels[best] if self.event_labels else None
        mode, mode_score = pick_mode(out.mode_logits, self.mode_labels, event_type) if self.mode_labels else ("", 0.0)
        actors: list[ActorPrediction] = []
        for (s, e, role, score), stance_probs, type_probs in zip(out.spans, out.span_stance_probs, out.span_type_probs):
            actor = ActorPrediction(text=sentence[s:e], start=s, end=e, role=role, score=score, stance=None)
            if len(stance_probs):
                stance_best = int(stance_probs.argmax())
                actor.stance, actor.stance_score = self.stance_labels[stance_best], float(stance_probs[stance_best])
            if len(type_probs):
                type_best = int(type_probs.argmax())
                actor.type, actor.type_score = self.type_labels[type_best], float(type_probs[type_best])
            actor.country = resolve_country(sentence, s, e)
            actors.append(actor)
        stance = [StancePrediction(a.text, a.stance, a.stance_score) for a in actors
                  if a.stance is not None and (a.role == "TARGET" or a.stance != "NONE")]
        stance.extend(free_text)
        return SentencePrediction(
            doc_id=doc_id, sentence_index=sentence_index, start=start, end=end, text=sentence,
            event_type=event_type, event_score=float(out.event_probs[best]) if self.event_labels else 0.0,
            event_scores={label: float(p) for label, p in zip(self.event_labels, out.event_probs)},
            mode=mode, mode_score=mode_score, actors=actors if self.bio_id2label else None,
            stance=stance if self.stance_labels else None, model=self.model_tag)


@lru_cache(maxsize=256)
def _target_pattern(target: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(target.strip()) + r"(?!\w)", re.IGNORECASE)


def find_target(sentence: str, target: str) -> tuple[int, int] | None:
    """Character span of the first whole-word, case-insensitive mention of `target` in `sentence`."""
    if not target.strip():
        return None
    match = _target_pattern(target).search(sentence)
    return match.span() if match else None


# words that say nothing of who a target is
_FUNCTION_WORDS = frozenset("a an and at by for from in of on or the to with".split())
_WORD = re.compile(r"\w+")


def shares_a_word(sentence: str, target: str) -> bool:
    """Whether any word of `target` other than a function word is a whole word of `sentence` (any case)."""
    words = {w for w in _WORD.findall(target.lower()) if w not in _FUNCTION_WORDS}
    return bool(words & set(_WORD.findall(sentence.lower())))


def window_pieces(tokenizer: Tokenizer, sentence: str, capacity: int) -> list[tuple[int, int]]:
    """(start, end) character spans that cut `sentence` into consecutive pieces of at most `capacity`
    tokens each, between words where a word boundary lies inside the window (`tokenizer` must not
    truncate)."""
    encoding = tokenizer.encode(sentence)
    offsets = [o for o, special in zip(encoding.offsets, encoding.special_tokens_mask) if not special]
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(offsets):
        j = min(i + capacity, len(offsets))
        if j < len(offsets):
            cut = j
            while cut > i + 1 and offsets[cut][0] <= offsets[cut - 1][1]:  # no space before token `cut`
                cut -= 1
            j = cut if cut > i + 1 else j
        pieces.append((offsets[i][0], offsets[j - 1][1]))
        i = j
    return pieces


def _sentence_items(texts: Sequence[str], split: bool) -> Iterator[tuple[int, int, int, str]]:
    """(text index, start, end, sentence) for every sentence of every text, split on demand."""
    for index, text in enumerate(texts):
        if split:
            yield from ((index, s, e, t) for s, e, t in split_sentences(text))
        elif text.strip():
            yield index, 0, len(text), text


def _waves(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    wave: list[Item] = []
    for item in items:
        wave.append(item)
        if len(wave) >= size:
            yield wave
            wave = []
    if wave:
        yield wave


def _finish_wave(wave: list[Item], encodings: list[Encoding], batches: list[tuple[list[int], Future[Batch]]],
                 process: Callable[[Item, Encoding, Batch, int], Result]) -> Iterator[tuple[Item, Result]]:
    results: list[Any] = [None] * len(wave)
    batches.reverse()
    while batches:  # popped, so each batch's outputs are freed once its rows are processed
        chunk, future = batches.pop()
        out = future.result()
        del future
        for row, index in enumerate(chunk):
            results[index] = process(wave[index], encodings[index], out, row)
    return zip(wave, results)


def _targets_per_text(targets: TargetsArg, n_texts: int) -> list[list[str]]:
    if not targets:
        return [[] for _ in range(n_texts)]
    if all(isinstance(t, str) for t in targets):
        shared = [t.strip() for t in targets if t.strip()]  # type: ignore[union-attr]
        return [list(shared) for _ in range(n_texts)]
    if len(targets) != n_texts:
        raise ValueError(f"targets has {len(targets)} lists for {n_texts} texts")
    return [[t.strip() for t in ts if t.strip()] for ts in targets]  # type: ignore[union-attr]


def _choose_backend(model_dir: Path, metadata: ModelMetadata, backend: str) -> str:
    """The file name of the ONNX graph to use, or 'torch'."""
    preference = os.environ.get("EVENTCODER_BACKEND", backend)
    int8, fp32 = model_dir / ONNX_INT8_FILE, model_dir / ONNX_FILE
    if preference == "torch":
        return "torch"
    if preference == "onnx-int8":
        if not int8.is_file():
            raise ModelDirectoryError(f"{int8} is missing; make it with: eventcoder export --model {model_dir}")
        return ONNX_INT8_FILE
    if preference == "onnx":
        if not fp32.is_file():
            raise ModelDirectoryError(f"{fp32} is missing; make it with: eventcoder export --model {model_dir}")
        return ONNX_FILE
    if preference != "auto":
        raise ValueError(f"unknown backend {preference!r} (auto, onnx, onnx-int8, torch)")
    shipped = metadata.onnx.get("default")
    if shipped and (model_dir / shipped).is_file():
        return shipped
    for candidate in (int8, fp32):
        if candidate.is_file():
            return candidate.name
    return "torch"

