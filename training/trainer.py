"""Fine-tuning the multi-task network: features, batching, the loop, the model directory."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from tokenizers import Encoding, Tokenizer
from tqdm.auto import tqdm

from eventcoder.model.backends import TorchBackend
from eventcoder.model.directory import TOKENIZER_FILE, ModelMetadata, write_atomically, write_metadata
from eventcoder.model.export import DEFAULT_SMOOTHING_ALPHA
from eventcoder.model.heads import (
    ACTOR_HEAD, ACTOR_TYPE_HEAD, EVENT_HEAD, MODE_HEAD, STANCE_HEAD, LabelMap, head_sizes,
)
from eventcoder.model.network import EventCoderNetwork
from eventcoder.model.predictor import Predictor, find_target
from eventcoder.model.tokenization import (
    IGNORE_INDEX, align_bio_labels, bio_label_names, char_span_to_tokens, configure_tokenizer, first_sequence_span,
    load_tokenizer, pad_batch,
)
from eventcoder.training.augment import NamePool, background_pool, name_pool, swap_actor_names, with_background
from eventcoder.training.config import TrainConfig, resolve_base_model
from eventcoder.training.precision import choose_precision
from eventcoder.training.data import (
    DataError, LabeledSentence, LabelSets, UnknownLabelError, derive_label_sets, read_labeled_file,
)
from eventcoder.training.metrics import evaluate_predictor, selection_score

log = logging.getLogger(__name__)
ProgressCallback = Callable[[float, str], None]


@dataclass
class Features:
    """One training sentence, tokenized and aligned with every head's labels."""

    text: str
    encoding: Encoding
    event: int
    mode: int
    bio: list[int]
    spans: list[tuple[int, int, int, int]]          # (first token, last token, stance id, type id)
    pair_stances: list[tuple[str, int]]             # free-text (target, stance id) needing a pair pass
    span_stances: list[tuple[str, int]] = field(default_factory=list)  # actor text -> stance, for pair practice
    frozen_states: torch.Tensor | None = None       # (tokens, hidden) out of the frozen lower layers, when cached


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, Any]
    seconds: float


LABELS_HINT = "add --labels-from-data, or use --config configs/custom.yaml"


def build_label_maps(label_sets: LabelSets) -> dict[str, LabelMap]:
    """One label map per head that has labels; a head without any is absent from the model (mode
    needs the event head, actor type the actor head)."""
    maps: dict[str, LabelMap] = {}
    if label_sets.event_types:
        maps[EVENT_HEAD] = LabelMap(list(label_sets.event_types))
        if label_sets.modes:
            maps[MODE_HEAD] = LabelMap(list(label_sets.modes))
    if label_sets.roles:
        maps[ACTOR_HEAD] = LabelMap(bio_label_names(label_sets.roles))
        if label_sets.actor_types:
            maps[ACTOR_TYPE_HEAD] = LabelMap(list(label_sets.actor_types))
    if label_sets.stances:
        maps[STANCE_HEAD] = LabelMap(list(label_sets.stances))
    return maps


def make_features(record: LabeledSentence, tokenizer: Tokenizer, maps: dict[str, LabelMap]) -> Features:
    encoding = tokenizer.encode(record.text)
    event = maps[EVENT_HEAD].label2id[record.event_type] if record.event_type and EVENT_HEAD in maps else IGNORE_INDEX
    mode = IGNORE_INDEX
    if record.mode and MODE_HEAD in maps:
        mode = maps[MODE_HEAD].label2id.get(f"{record.event_type}/{record.mode}", IGNORE_INDEX)
    spans_for_bio = None if record.actors is None or ACTOR_HEAD not in maps else [
        (a.start, a.end, a.role) for a in record.actors]
    bio = align_bio_labels(encoding, spans_for_bio, maps[ACTOR_HEAD].label2id if ACTOR_HEAD in maps else {})
    stance_of = {s.target: s.stance for s in record.stance or []}
    stance_ids = maps[STANCE_HEAD].label2id if STANCE_HEAD in maps else {}
    type_ids = maps[ACTOR_TYPE_HEAD].label2id if ACTOR_TYPE_HEAD in maps else {}
    spans: list[tuple[int, int, int, int]] = []
    span_stances: list[tuple[str, int]] = []
    actor_texts = set()
    for actor in record.actors or []:
        tokens = char_span_to_tokens(encoding, actor.start, actor.end)
        text = record.actor_text(actor)
        actor_texts.add(text)
        stance = stance_ids.get(stance_of[text], IGNORE_INDEX) if text in stance_of else IGNORE_INDEX
        type_id = type_ids.get(actor.type, IGNORE_INDEX) if actor.type else IGNORE_INDEX
        if tokens is not None and (stance != IGNORE_INDEX or type_id != IGNORE_INDEX):
            spans.append((tokens[0], tokens[1], stance, type_id))
        if stance != IGNORE_INDEX:
            span_stances.append((text, stance))
    pair_stances: list[tuple[str, int]] = []
    for label in record.stance or []:
        if label.target in actor_texts or label.stance not in stance_ids:
            continue
        # a free-text target the sentence names is read from the sentence's own pass, as `predict` reads it
        place = find_target(record.text, label.target)
        tokens = char_span_to_tokens(encoding, *place) if place else None
        if tokens is not None:
            spans.append((tokens[0], tokens[1], stance_ids[label.stance], IGNORE_INDEX))
        else:
            pair_stances.append((label.target, stance_ids[label.stance]))
    return Features(record.text, encoding, event, mode, bio, spans, pair_stances, span_stances)


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, sort by length inside pools of 50 batches, cut into batches, shuffle the batches:
    little padding, still random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


@dataclass
class TrainingData:
    """Every labeled input of a run, read and checked before the first step."""

    train: list[LabeledSentence]
    dev: list[LabeledSentence]
    selection: list[LabeledSentence]      # what the epoch is chosen on: the selection file, else dev
    test: list[LabeledSentence]
    label_sets: LabelSets
    dev_source: str                        # where dev came from, for the metrics and the model card


@dataclass
class _Run:
    """What the steps of one training run share."""

    data: TrainingData
    maps: dict[str, LabelMap]
    hf_tokenizer: Any
    tokenizer: Tokenizer
    features: list[Features]
    network: EventCoderNetwork
    metadata: ModelMetadata
    none_stance_id: int


@dataclass
class _Fit:
    history: list[dict[str, Any]]
    best_epoch: int
    best_report: dict[str, Any] | None


class MultiTaskTrainer:
    def __init__(self, config: TrainConfig, progress: bool = True, callback: ProgressCallback | None = None) -> None:
        self.config = config
        self.progress = progress
        self.callback = callback
        self.precision = choose_precision(config.bf16)
        self.schedule: dict[str, Any] | None = None       # set by `train` (TrainConfig.schedule_for)
        self.init_report: dict[str, Any] | None = None    # set by `_build` with init_from

    # ------------------------------------------------------------------ main
    def train(self) -> TrainResult:
        """Read and check every input, build the network, fit, score, write the model directory."""
        started = time.perf_counter()
        self._seed()
        self._say(f"training precision: {self.precision.name} ({self.precision.reason})")
        data = self.load_data()
        self.schedule = self.config.schedule_for(len(data.train))
        # the chosen values go into the saved training_config.yaml, so the run can be repeated as it was
        self.config = self.config.override(epochs=self.schedule["epochs"], learning_rate=self.schedule["learning_rate"],
                                           patience=self.schedule["patience"])
        if self.schedule["small_data_recipe"]:
            self._say(f"small data ({len(data.train)} training sentences): {self.config.epochs} epochs, "
                      f"learning rate {self.config.learning_rate:g}, early stopping after {self.config.patience} "
                      "epochs without improvement (set epochs to choose yourself)")
        base_dir = self.config.init_from or resolve_base_model(self.config.base_model)
        run = self._build(data, base_dir)
        fit = self._fit(run)
        train_seconds = time.perf_counter() - started
        if self.callback:
            self.callback(0.96, "writing and scoring the model directory")
        written: dict[str, dict[str, Any]] = {}

        def write(directory: Path) -> None:
            written["metrics"] = self._write_directory(directory, run, fit, train_seconds)

        write_atomically(self.config.output_dir, write, keep_previous=self.config.keep_previous)
        if self.callback:
            self.callback(1.0, "done")
        return TrainResult(Path(self.config.output_dir), written["metrics"], train_seconds)

    # ---------------------------------------------------------------- steps
    def _seed(self) -> None:
        from transformers import set_seed

        set_seed(self.config.seed)  # Python, NumPy and torch
        if self.config.threads:
            torch.set_num_threads(self.config.threads)

    def _say(self, message: str) -> None:
        print(message, file=sys.stderr) if self.progress else log.info(message)

    def load_data(self) -> TrainingData:
        """Train (+ extra files), dev, selection and test files, all checked against one label set
        before training starts: labels the config names, else the training data's."""
        c = self.config
        configured = LabelSets(
            event_types=c.labels.event_types or None, roles=c.labels.roles or None,
            stances=c.labels.stances or None, actor_types=c.labels.actor_types or None,
            modes=c.labels.modes or None)

        def read(path: str, labels: LabelSets) -> list[LabeledSentence]:
            try:
                return read_labeled_file(path, labels)
            except UnknownLabelError as err:
                if getattr(configured, err.head) is None:  # the head's labels came from the data: no hint helps
                    raise
                raise UnknownLabelError(err.path, err.line, err.field, f"{err.message}; to train on your own "
                                        f"labels, {LABELS_HINT}", err.head) from None

        train = read(c.train_file, configured)
        for extra in c.extra_train_files:
            if Path(extra).is_file() and Path(extra).stat().st_size > 0:
                train.extend(read(extra, configured))
        label_sets = derive_label_sets(train, configured)
        if not build_label_maps(label_sets):
            raise DataError(c.train_file, 0, "file", "no line has an event_type, actors with roles or stance "
                            "labels: there is nothing to learn")
        if c.dev_file:
            dev, dev_source = read(c.dev_file, label_sets), c.dev_file
        else:
            train, dev = holdout_split(train, c.dev_fraction, c.seed)
            dev_source = f"{len(dev)} sentences ({c.dev_fraction:.0%}) held out of {c.train_file}, stratified by event type, seed {c.seed}"
            self._say(f"no dev file: {dev_source}")
        selection = read(c.selection_file, label_sets) if c.selection_file else dev
        test = read(c.test_file, label_sets) if c.test_file else []
        return TrainingData(train, dev, selection, test, label_sets, dev_source)

    def _build(self, data: TrainingData, base_dir: str) -> _Run:
        from transformers import AutoTokenizer

        c = self.config
        maps = build_label_maps(data.label_sets)
        hf_tokenizer = AutoTokenizer.from_pretrained(base_dir)
        tokenizer: Tokenizer = configure_tokenizer(hf_tokenizer.backend_tokenizer, c.max_length)
        features = [make_features(r, tokenizer, maps) for r in data.train]
        if c.init_from:
            network, copied = network_from_model(c.init_from, maps, dropout=c.dropout)
            self.init_report = {"model": c.init_from, "heads_copied": copied,
                                "heads_fresh": [name for name in maps if name not in copied]}
            self._say(f"starting from {c.init_from}: its encoder, and the heads {', '.join(copied) or '(none)'} "
                      "(same labels); the other heads start fresh")
        else:
            network = EventCoderNetwork.from_base(base_dir, head_sizes(maps), dropout=c.dropout, layers=c.encoder_layers)
        # the build stamp tells a retrained model from the one before it in every prediction record
        version = f"{c.version}+{time.strftime('%Y%m%d.%H%M%S')}"
        metadata = ModelMetadata(name=c.name, version=version, max_length=c.max_length, label_maps=maps,
                                 roles=list(data.label_sets.roles or []),
                                 encoder_config=network.encoder.config.to_dict(), onnx={})
        if c.freeze_word_embeddings:
            # half of MiniLM's weights are the word embeddings; not updating them saves time per step
            network.encoder.get_input_embeddings().weight.requires_grad_(False)
        freeze_lower_layers(network, c.freeze_lower_layers)
        none_stance = maps[STANCE_HEAD].label2id.get("NONE", -1) if STANCE_HEAD in maps else -1
        return _Run(data, maps, hf_tokenizer, tokenizer, features, network, metadata, none_stance)

    def _fit(self, run: _Run) -> _Fit:
        """The epochs; the network ends holding the weights of the epoch that scored best on the
        selection set (the last epoch when there is none)."""
        c, network = self.config, run.network
        optimizer = torch.optim.AdamW([
            {"params": [p for p in network.encoder.parameters() if p.requires_grad], "lr": c.learning_rate},
            {"params": network.heads.parameters(), "lr": c.head_learning_rate},
        ], weight_decay=c.weight_decay, fused=True)  # fused: the step takes ~20 ms instead of ~80 on 2 cores
        rng = random.Random(c.seed)
        total_steps = max(1, (len(run.features) + c.batch_size - 1) // c.batch_size * c.epochs)
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * c.warmup_ratio), total_steps)
        history: list[dict[str, Any]] = []
        best_score, best_state, best_report, best_epoch = -1.0, None, None, 0
        improved_epoch = 0  # the last epoch that beat every earlier score (early stopping counts from it)
        step = 0
        assert c.epochs is not None  # resolved by `train` (TrainConfig.schedule_for)
        cached = c.freeze_lower_layers > 0 and c.cache_frozen_layers
        if cached:
            self._cache_frozen_states(network, run.features)
        names = name_pool(run.data.train) if c.swap_actor_names > 0 else {}
        backgrounds = background_pool(run.data.train) if c.mix_background > 0 else []
        augment_rng = random.Random(c.seed + 1)  # its own stream: the batch order does not depend on it
        for epoch in range(1, c.epochs + 1):
            network.train()
            if cached:
                frozen_modules(network, c.freeze_lower_layers).eval()  # no dropout: their outputs are the cache
            held = self._hold_for_first_epoch(network) if epoch == 1 else []
            epoch_started = time.perf_counter()
            features = self._augmented(run, names, backgrounds, augment_rng, cached) if names or backgrounds \
                else run.features
            batches = length_bucketed_batches([len(f.encoding.ids) for f in features], c.batch_size, rng)
            bar = tqdm(batches, desc=f"epoch {epoch}/{c.epochs}", disable=not self.progress, unit="batch")
            losses: list[float] = []
            for batch_index in bar:
                loss = self._step(run, [features[i] for i in batch_index], rng)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
                if self.callback:
                    self.callback(step / total_steps * 0.95, f"epoch {epoch}/{c.epochs}, loss {np.mean(losses[-50:]):.3f}")
            for parameter in held:
                parameter.requires_grad_(True)
            entry: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else 0.0,
                                     "seconds": round(time.perf_counter() - epoch_started, 1)}
            scored_now = not c.evaluate_epochs or epoch in c.evaluate_epochs or epoch == c.epochs
            if run.data.selection and scored_now:
                report = evaluate_predictor(self._predictor(run), run.data.selection)
                entry["selection" if c.selection_file else "dev"] = report["summary"]
                score = selection_score(report["summary"])
                # a tie keeps the later epoch: on a small dev set ties are common, and the later
                # epoch has learned more at the same score
                if score >= best_score:
                    improved_epoch = epoch if score > best_score else improved_epoch
                    best_score, best_report, best_epoch = score, report, epoch
                    best_state = copy.deepcopy(network.state_dict())
            elif not run.data.selection:
                best_epoch = improved_epoch = epoch
            history.append(entry)
            scores = entry.get("dev") or entry.get("selection")
            message = f"epoch {epoch}: loss {entry['train_loss']:.3f}" + (
                f", {'selection' if 'selection' in entry else 'dev'} {json.dumps(scores)}" if scores else "")
            log.info(message)
            if self.progress:
                tqdm.write(message, file=sys.stderr)
            scored = "dev" in entry or "selection" in entry
            min_epochs = (self.schedule or {}).get("min_epochs", 1)
            if c.patience and scored and epoch - improved_epoch >= c.patience and min_epochs <= epoch < c.epochs:
                entry["early_stop"] = True
                self._say(f"early stop after epoch {epoch}: no better {'selection' if c.selection_file else 'dev'} "
                          f"score for {c.patience} epochs (kept: epoch {best_epoch})")
                break
        if best_state is not None:
            network.load_state_dict(best_state)
        return _Fit(history, best_epoch, best_report)

    def _final_metrics(self, run: _Run, fit: _Fit, train_seconds: float, served: Predictor,
                       served_name: str, served_dev: dict[str, Any] | None) -> dict[str, Any]:
        """Dev, test and challenge figures of the model as it will be served (`served`: the default ONNX
        graph when one is exported, else torch). `served_dev` is dev as the export already scored it."""
        c, data = self.config, run.data
        metrics: dict[str, Any] = {"best_epoch": fit.best_epoch, "epochs": fit.history,
                                   "train_seconds": round(train_seconds, 1),
                                   "precision": {"bf16": self.precision.bf16, "reason": self.precision.reason},
                                   "train_sentences": len(data.train), "dev_sentences": len(data.dev),
                                   "dev_source": data.dev_source, "scored_with": served_name,
                                   **({"schedule": self.schedule} if self.schedule else {}),
                                   **({"init_from": self.init_report} if self.init_report else {})}
        if c.selection_file and fit.best_report is not None:
            metrics["selection"] = {"file": c.selection_file, "summary": fit.best_report["summary"]}
        dev_report = served_dev
        if dev_report is None and data.dev:
            same = served_name == "torch" and not c.selection_file and fit.best_report is not None
            dev_report = fit.best_report if same else evaluate_predictor(served, data.dev)
        if dev_report is not None:
            metrics["dev"] = dev_report
        if data.test:
            metrics["test"] = evaluate_predictor(served, data.test)
        if c.challenge_dir and Path(c.challenge_dir).is_dir():
            metrics["challenge"] = self._challenge(served, Path(c.challenge_dir))
        return metrics

    def _challenge(self, predictor: Predictor, directory: Path) -> dict[str, Any]:
        """The challenge suite's report half, per capability (skipped, with the reason, when its labels
        are not the model's: a model trained on other label sets)."""
        from eventcoder.training.challenge import evaluate as evaluate_challenge, halves, load_cases

        try:
            return evaluate_challenge(predictor, halves(load_cases(directory))["report"])
        except ValueError as err:
            return {"skipped": str(err)}

    # ---------------------------------------------------------------- pieces
    def _step(self, run: _Run, batch: list[Features], rng: random.Random) -> torch.Tensor:
        """The weighted sum of every head's loss on one batch (heads without labels in it add nothing)."""
        network, weights = run.network, self.config.loss_weights
        inputs = {k: torch.from_numpy(v) for k, v in pad_batch([f.encoding for f in batch]).items()}
        length = inputs["input_ids"].shape[1]
        bio = torch.full((len(batch), length), IGNORE_INDEX, dtype=torch.long)
        for row, f in enumerate(batch):
            bio[row, : len(f.bio)] = torch.tensor(f.bio)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision.bf16):
            if batch[0].frozen_states is not None:
                states = torch.nn.utils.rnn.pad_sequence([f.frozen_states for f in batch], batch_first=True)
                outputs = network.forward_from(states, inputs["attention_mask"], self.config.freeze_lower_layers)
            else:
                outputs = network(**inputs)
            hidden, pooled, event_logits, mode_logits, bio_logits = outputs
            loss = torch.zeros((), dtype=torch.float32)
            # sentence and span heads: the config's label smoothing
            ce = functools.partial(torch.nn.functional.cross_entropy, label_smoothing=self.config.label_smoothing)
            token_ce = torch.nn.functional.cross_entropy  # BIO tags: no smoothing (it blurs span edges)
            event_targets = torch.tensor([f.event for f in batch])
            if (event_targets != IGNORE_INDEX).any():
                loss = loss + weights.get(EVENT_HEAD, 1.0) * ce(event_logits.float(), event_targets, ignore_index=IGNORE_INDEX)
            mode_targets = torch.tensor([f.mode for f in batch])
            if MODE_HEAD in network.heads and (mode_targets != IGNORE_INDEX).any():
                loss = loss + weights.get(MODE_HEAD, 1.0) * ce(mode_logits.float(), mode_targets, ignore_index=IGNORE_INDEX)
            if (bio != IGNORE_INDEX).any():
                loss = loss + weights.get(ACTOR_HEAD, 1.0) * token_ce(
                    bio_logits.float().reshape(-1, bio_logits.shape[-1]), bio.reshape(-1), ignore_index=IGNORE_INDEX)
            rows = [(row, first, last, stance, type_id) for row, f in enumerate(batch)
                    for first, last, stance, type_id in f.spans]
            if rows:
                span_index = torch.tensor([r[:3] for r in rows])
                stance_targets = torch.tensor([r[3] for r in rows])
                if (stance_targets != IGNORE_INDEX).any():
                    logits = network.span_logits(STANCE_HEAD, hidden, pooled, span_index)
                    loss = loss + weights.get(STANCE_HEAD, 1.0) * ce(logits.float(), stance_targets, ignore_index=IGNORE_INDEX)
                type_targets = torch.tensor([r[4] for r in rows])
                if ACTOR_TYPE_HEAD in network.heads and (type_targets != IGNORE_INDEX).any():
                    logits = network.span_logits(ACTOR_TYPE_HEAD, hidden, pooled, span_index)
                    loss = loss + weights.get(ACTOR_TYPE_HEAD, 1.0) * ce(logits.float(), type_targets, ignore_index=IGNORE_INDEX)
            pair_loss = self._pair_loss(run, batch, rng)
            if pair_loss is not None:
                loss = loss + weights.get(STANCE_HEAD, 1.0) * pair_loss
        return loss

    def _hold_for_first_epoch(self, network: EventCoderNetwork) -> list[torch.nn.Parameter]:
        """With `first_epoch_frozen_layers`, the layers above the frozen ones up to that count take no
        update in the first epoch (no backward pass through them); returns their parameters, to be
        released after the epoch."""
        layers, frozen = self.config.first_epoch_frozen_layers, self.config.freeze_lower_layers
        if layers <= frozen:
            return []
        held = [p for block in network.encoder_blocks()[frozen:layers] for p in block.parameters() if p.requires_grad]
        for parameter in held:
            parameter.requires_grad_(False)
        return held

    def _augmented(self, run: _Run, names: NamePool, backgrounds: Sequence[LabeledSentence], rng: random.Random,
                   cached: bool) -> list[Features]:
        """This epoch's training features (training/augment.py): each sentence, with probability
        `swap_actor_names`, with its named actors swapped for other names of their type; then, with
        probability `mix_background`, joined with a NONE sentence before or after it (skipped where
        the joined input would not fit the model's window)."""
        c = self.config
        features = list(run.features)
        fresh: list[Features] = []
        for index, record in enumerate(run.data.train):
            changed = record
            if names and rng.random() < c.swap_actor_names:
                changed = swap_actor_names(record, names, rng) or record
            new: Features | None = None
            if backgrounds and rng.random() < c.mix_background:
                background = rng.choice(backgrounds)
                mixed = with_background(changed, background, before=rng.random() < 0.5)
                if background is not record:
                    new = make_features(mixed, run.tokenizer, run.maps)
                    if len(new.encoding.ids) >= c.max_length:  # cut by the window: keep the sentence unmixed
                        new = None
            if new is None and changed is not record:
                new = make_features(changed, run.tokenizer, run.maps)
            if new is not None:
                features[index] = new
                fresh.append(new)
        if cached and fresh:
            self._cache_frozen_states(run.network, fresh)
        return features

    @torch.no_grad()
    def _cache_frozen_states(self, network: EventCoderNetwork, features: list[Features], batch_size: int = 64) -> None:
        """Run these training sentences once through the embeddings and the frozen lower layers (in eval
        mode) and keep the result on their Features: later steps start from there, so the frozen layers'
        forward pass is paid once instead of once an epoch. Sorted by length: little padding."""
        layers = self.config.freeze_lower_layers
        frozen = frozen_modules(network, layers)
        was_training = [m.training for m in frozen]
        frozen.eval()
        order = sorted(range(len(features)), key=lambda i: len(features[i].encoding.ids))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision.bf16):
            for start in range(0, len(order), batch_size):
                chunk = [features[i] for i in order[start : start + batch_size]]
                inputs = pad_batch([f.encoding for f in chunk])
                states = network.lower_states(torch.from_numpy(inputs["input_ids"]),
                                              torch.from_numpy(inputs["attention_mask"]), layers).float()
                for row, f in enumerate(chunk):
                    f.frozen_states = states[row, : len(f.encoding.ids)].clone()
        for module, training in zip(frozen, was_training):
            module.train(training)

    def _pair_loss(self, run: _Run, batch: list[Features], rng: random.Random) -> torch.Tensor | None:
        """Stance through (target, sentence) pair passes, the path of free-text targets a sentence does
        not name (see `pair_examples`)."""
        examples = pair_examples(batch, rng, self.config.pair_stance_fraction, self.config.pair_absent_fraction,
                                 run.none_stance_id)
        if not examples:
            return None
        encodings = run.tokenizer.encode_batch([(t, text) for t, text, _ in examples])
        inputs = {k: torch.from_numpy(v) for k, v in pad_batch(encodings).items()}
        network = run.network
        hidden, pooled, *_ = network(**inputs)
        spans = [(row, *(first_sequence_span(e) or (0, 0))) for row, e in enumerate(encodings)]
        logits = network.span_logits(STANCE_HEAD, hidden, pooled, torch.tensor(spans))
        return torch.nn.functional.cross_entropy(logits.float(), torch.tensor([s for _, _, s in examples]))

    def _predictor(self, run: _Run) -> Predictor:
        return Predictor(run.metadata, run.tokenizer, TorchBackend(run.network), head_weights_numpy(run.network))

    def _write_directory(self, directory: Path, run: _Run, fit: _Fit, train_seconds: float) -> dict[str, Any]:
        """Weights, tokenizer, ONNX graphs; then the figures of the served model; then metadata, config,
        metrics and card. Returns the metrics."""
        from safetensors.torch import save_file

        c, network, metadata = self.config, run.network, run.metadata
        state = {k: v.detach().contiguous() for k, v in network.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
        run.hf_tokenizer.save_pretrained(str(directory))
        served_dev, onnx_report = None, {}
        if c.export_onnx:
            choice = export_and_choose(
                network, directory, metadata, calibration_texts=[f.text for f in run.features[: c.calibration_sentences]],
                dev_records=run.data.dev, quantize=c.quantize, smoothing_alpha=c.int8_smoothing_alpha)
            metadata.onnx, onnx_report, served_dev = choice.files, choice.report, choice.dev_report
            served, served_name = choice.predictor, f"onnx {choice.kind}"
        else:
            served, served_name = self._predictor(run), "torch"
        metrics = self._final_metrics(run, fit, train_seconds, served, served_name, served_dev)
        if onnx_report:
            metrics["onnx"] = onnx_report
        write_metadata(directory, metadata)
        (directory / "training_config.yaml").write_text(c.to_yaml(), encoding="utf-8")
        (directory / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
        (directory / "README.md").write_text(model_card(c, metadata, metrics), encoding="utf-8")
        return metrics


class ExportChoice(NamedTuple):
    files: dict[str, str]                  # graph files by kind, "default" among them
    kind: str                              # the default graph's kind: "int8" or "fp32"
    report: dict[str, Any]                 # the int8-vs-fp32 measurements behind the choice (empty without them)
    dev_report: dict[str, Any] | None      # dev scored with the default graph (None when not scored)
    predictor: Predictor                   # on the default graph


def export_and_choose(network: EventCoderNetwork, directory: Path, metadata: ModelMetadata,
                      calibration_texts: Sequence[str], dev_records: Sequence[LabeledSentence],
                      quantize: bool = True, smoothing_alpha: float = DEFAULT_SMOOTHING_ALPHA) -> ExportChoice:
    """Export the ONNX graphs into `directory` and pick the default: int8 only if it costs no head more
    than a point on dev (else fp32)."""
    from eventcoder.model.backends import OnnxBackend
    from eventcoder.model.export import calibration_batches, choose_default_onnx, export_onnx

    tokenizer = load_tokenizer(directory / TOKENIZER_FILE, metadata.max_length)
    calibration = calibration_batches(tokenizer.encode_batch(list(calibration_texts))) if calibration_texts else None
    files = export_onnx(network, directory, quantize=quantize, calibration=calibration,
                        smoothing_alpha=smoothing_alpha)
    heads = head_weights_numpy(network)

    def predictor(kind: str) -> Predictor:
        return Predictor(metadata, tokenizer, OnnxBackend(directory / files[kind]), heads)

    if "int8" in files and dev_records:
        predictors = {kind: predictor(kind) for kind in ("fp32", "int8")}
        reports = {kind: evaluate_predictor(predictors[kind], dev_records) for kind in predictors}
        # The int8 graph's quantization is static (scales are constants of the graph) and its pooling
        # sums in a fixed order, so each dev sentence's outputs, hence these figures and the choice, do
        # not depend on how the dev set is batched or on the thread count. Across CPUs the integer
        # products are exact everywhere (7-bit weights: no saturation in AVX2's VPMADDUBSW, same sums
        # as VNNI); what can still differ is the last bits of the fp32 parts (attention, softmax,
        # LayerNorm, GELU, dequantization), which onnxruntime runs with AVX2 or AVX-512 kernels by CPU.
        # A dev sentence near a tie could flip, so the figures of another CPU may differ in the 4th decimal.
        choice, losses = choose_default_onnx(reports["fp32"]["summary"], reports["int8"]["summary"])
        files["default"] = files[choice]
        report = {"dev_fp32": reports["fp32"]["summary"], "dev_int8": reports["int8"]["summary"], "int8_loss": losses,
                  "default": choice, "int8_smoothing_alpha": smoothing_alpha if calibration else 0.0,
                  "dev_sentences": len(dev_records)}
        return ExportChoice(files, choice, report, reports[choice], predictors[choice])
    kind = "int8" if "int8" in files else "fp32"
    files["default"] = files[kind]
    return ExportChoice(files, kind, {}, None, predictor(kind))


def pair_examples(batch: Sequence[Features], rng: random.Random, practice_fraction: float,
                  absent_fraction: float, none_id: int) -> list[tuple[str, str, int]]:
    """(target, sentence, stance id) examples for the pair path: the data's free-text targets; a sample
    of actor stances (FAVOR/AGAINST first: they are the informative ones); and, with `absent_fraction`,
    names of actors of other sentences of the batch that this sentence does not name, as NONE."""
    examples = [(t, f.text, s) for f in batch for t, s in f.pair_stances]
    budget = int(round(len(batch) * practice_fraction))
    if budget:
        practice = [(t, f.text, s) for f in batch for t, s in f.span_stances]
        rng.shuffle(practice)
        practice.sort(key=lambda e: e[2] == none_id)
        examples.extend(practice[:budget])
    absent_budget = int(round(len(batch) * absent_fraction))
    if absent_budget and none_id >= 0:
        names = sorted({t for f in batch for t, _ in f.span_stances})
        candidates = [(t, f.text) for f in batch for t in names]
        rng.shuffle(candidates)
        absent = (c for c in candidates if find_target(c[1], c[0]) is None)
        examples.extend((t, text, none_id) for t, text in itertools.islice(absent, absent_budget))
    return examples


def holdout_split(records: list[LabeledSentence], fraction: float, seed: int
                  ) -> tuple[list[LabeledSentence], list[LabeledSentence]]:
    """(train, dev): `fraction` of the records held out, stratified by event type (records without
    one form their own group), seeded; every group keeps at least one training record."""
    groups: dict[str, list[LabeledSentence]] = {}
    for record in records:
        groups.setdefault(record.event_type or "", []).append(record)
    rng = random.Random(seed)
    held: set[int] = set()
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        take = min(len(members) - 1, round(len(members) * fraction))
        held.update(id(r) for r in members[:max(0, take)])
    return [r for r in records if id(r) not in held], [r for r in records if id(r) in held]


def frozen_modules(network: EventCoderNetwork, layers: int) -> torch.nn.ModuleList:
    """The embeddings and the `layers` lowest encoder layers."""
    blocks = network.encoder_blocks()
    if layers > len(blocks):
        raise ValueError(f"freeze_lower_layers={layers}: the encoder has only {len(blocks)} layers")
    return torch.nn.ModuleList([network.encoder.embeddings, *blocks[:layers]])


def freeze_lower_layers(network: EventCoderNetwork, layers: int) -> None:
    """Stop training the embeddings and the `layers` lowest encoder layers (0: train everything).
    Autograd then skips their backward pass, the larger half of their cost."""
    if layers <= 0:
        return
    for parameter in frozen_modules(network, layers).parameters():
        parameter.requires_grad_(False)


def network_from_model(model_dir: str | Path, maps: dict[str, LabelMap], dropout: float = 0.1
                       ) -> tuple[EventCoderNetwork, list[str]]:
    """A network on the encoder of a trained model directory (`--init-from`): every head whose label list
    equals the new one's keeps its trained weights, the others start fresh. Returns it and the heads copied."""
    from safetensors.torch import load_file

    from eventcoder.model.directory import WEIGHTS_FILE, ModelDirectoryError, read_metadata

    metadata = read_metadata(model_dir)
    network = EventCoderNetwork.from_encoder_config(metadata.encoder_config, head_sizes(maps), dropout)
    copied = [name for name, label_map in maps.items()
              if name in metadata.label_maps and metadata.label_maps[name].labels == label_map.labels]
    state = load_file(str(Path(model_dir) / WEIGHTS_FILE))
    wanted = {k: v for k, v in state.items() if not k.startswith("heads.") or k.split(".")[1] in copied}
    missing, _ = network.load_state_dict(wanted, strict=False)
    lacking = [k for k in missing if not k.startswith("heads.")]
    if lacking:
        raise ModelDirectoryError(f"{model_dir}/{WEIGHTS_FILE} does not hold the encoder its eventcoder.json "
                                  f"describes (missing {sorted(lacking)[:5]})")
    return network, copied


def head_weights_numpy(network: EventCoderNetwork) -> dict[str, np.ndarray]:
    """The heads' weights as NumPy arrays, named as in the model directory (without 'heads.')."""
    return {k[len("heads."):]: v.detach().float().numpy().copy()
            for k, v in network.state_dict().items() if k.startswith("heads.")}


HEAD_DESCRIPTIONS = {EVENT_HEAD: "event type", MODE_HEAD: "event mode", ACTOR_HEAD: "actors with roles",
                     STANCE_HEAD: "stance", ACTOR_TYPE_HEAD: "actor type"}


def model_card(config: TrainConfig, metadata: ModelMetadata, metrics: dict[str, Any]) -> str:
    lines = [
        f"# eventcoder model `{metadata.tag}`", "",
        "Codes news sentences: " + ", ".join(HEAD_DESCRIPTIONS[name] for name in metadata.label_maps) + ".", "",
        f"- Base encoder: `{config.base_model}`" if not config.init_from else f"- Started from the model `{config.init_from}`",
        f"- Trained on: `{config.train_file}` ({metrics.get('train_sentences')} sentences"
        + (f" + {', '.join(config.extra_train_files)}" if config.extra_train_files else "") + ")",
        f"- Dev set: {metrics.get('dev_source') or config.dev_file} ({metrics.get('dev_sentences')} sentences); "
        f"best epoch {metrics.get('best_epoch')}"
        + (f", chosen on `{config.selection_file}`" if config.selection_file else ""),
        f"- Training time: {metrics.get('train_seconds')} s",
        f"- Precision: {_precision_line(metrics)}", "",
        "## Labels", "",
    ]
    for name, label_map in metadata.label_maps.items():
        lines.append(f"- `{name}`: {', '.join(label_map.labels)}")
    for split in ("dev", "test"):
        if split in metrics:
            lines += ["", f"## {split} metrics ({metrics.get('scored_with', 'torch')})", ""]
            lines += [f"- {k}: {v}" for k, v in metrics[split]["summary"].items()]
    if metrics.get("challenge", {}).get("capabilities"):
        from eventcoder.training.challenge import markdown_table

        lines += ["", "## Challenge suite (report half, never trained on)", "",
                  "Event-type accuracy / actor roles F1 at IoU >= 0.5 / stance macro-F1 on gold spans:", "",
                  markdown_table({"this model": metrics["challenge"]})]
    lines += ["", "## Limits", "",
              "Trained on hand-written wire-style English sentences; expect lower accuracy on other",
              "registers and languages. One event type per sentence (the main event).", ""]
    return "\n".join(lines)


def _precision_line(metrics: dict[str, Any]) -> str:
    precision = metrics.get("precision") or {}
    name = "bf16 autocast" if precision.get("bf16") else "fp32"
    return f"{name} ({precision['reason']})" if precision.get("reason") else name


def train_from_config(config: TrainConfig, progress: bool = True, callback: ProgressCallback | None = None) -> TrainResult:
    trainer = MultiTaskTrainer(config, progress=progress, callback=callback)
    return trainer.train()
