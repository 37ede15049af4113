"""Training-time augmentation of labeled sentences (each kept only where it measured better: see
benchmarks/README.md, "Training levers measured").

- Actor-name swapping: a training sentence's named actors replaced by other names of the same actor
  type from the training set, so that a name (a country, a group) cannot stand in for the event, the
  role or the stance. Labels move with the spans; the event type and mode are unchanged.
- Sentence mixing: a training sentence joined with a sentence that reports no event (NONE), before or
  after it, so that the model learns longer inputs whose main event sits beside background text."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from typing import Sequence

from eventcoder.training.data import Actor, LabeledSentence, StanceLabel

PRONOUNS = frozenset("i he she it we they you him her them us me his its their our".split())
MAX_NAME_CHARS = 60


def is_name(text: str) -> bool:
    """A span worth swapping: capitalised, not a pronoun, one line, not too long."""
    return bool(text) and text[0].isupper() and text.lower() not in PRONOUNS and "\n" not in text \
        and len(text) <= MAX_NAME_CHARS


NamePool = dict[str, list[tuple[str, str | None]]]


def name_pool(records: Sequence[LabeledSentence]) -> NamePool:
    """Distinct (name, country) pairs of the training actors, by actor type."""
    pool: dict[str, set[tuple[str, str | None]]] = defaultdict(set)
    for record in records:
        for actor in record.actors or []:
            text = record.actor_text(actor)
            if actor.type and is_name(text):
                pool[actor.type].add((text, actor.country))
    return {kind: sorted(names, key=lambda n: (n[0], n[1] or "")) for kind, names in pool.items() if len(names) > 1}


def swap_actor_names(record: LabeledSentence, pool: NamePool, rng: random.Random) -> LabeledSentence | None:
    """A copy of `record` with every named, typed actor replaced by another name of its type (one name
    keeps one replacement throughout the sentence, stance targets included). None if nothing swaps."""
    actors = sorted(record.actors or [], key=lambda a: a.start)
    chosen: dict[str, tuple[str, str | None]] = {}
    for actor in actors:
        text = record.actor_text(actor)
        if text in chosen or not actor.type or actor.type not in pool or not is_name(text):
            continue
        options = [n for n in pool[actor.type] if n[0] != text]
        if options:
            chosen[text] = rng.choice(options)
    if not chosen:
        return None
    pieces: list[str] = []
    moved: list[Actor] = []
    cursor, length = 0, 0
    for actor in actors:
        before = record.text[cursor : actor.start]
        pieces.append(before)
        length += len(before)
        old = record.actor_text(actor)
        new, country = chosen.get(old, (old, actor.country))
        pieces.append(new)
        moved.append(replace(actor, start=length, end=length + len(new), country=country))
        length += len(new)
        cursor = actor.end
    pieces.append(record.text[cursor:])
    stance = None if record.stance is None else [
        StanceLabel(chosen[s.target][0] if s.target in chosen else s.target, s.stance) for s in record.stance]
    return replace(record, text="".join(pieces), actors=moved, stance=stance, source=f"{record.source} (names swapped)")


def with_background(record: LabeledSentence, background: LabeledSentence, before: bool) -> LabeledSentence:
    """`record` joined with `background` (a NONE sentence) into one input, `background` first when
    `before`. The event type and mode are the record's; its actors, roles and stance keep their labels
    (offsets moved); the background's actors take part in no event of the input, so they are OTHER."""
    first, second = (background, record) if before else (record, background)

    def placed(r: LabeledSentence, offset: int) -> list[Actor]:
        return [replace(a, start=a.start + offset, end=a.end + offset, role=a.role if r is record else "OTHER")
                for a in r.actors or []]

    actors = None if record.actors is None else placed(first, 0) + placed(second, len(first.text) + 1)
    own_targets = {entry.target for entry in record.stance or []}
    stance = None if record.stance is None else list(record.stance) + [
        entry for entry in background.stance or [] if entry.target not in own_targets]
    return replace(record, text=f"{first.text} {second.text}", actors=actors, stance=stance,
                   source=f"{record.source} (with {background.source} {'before' if before else 'after'})")


def background_pool(records: Sequence[LabeledSentence], none_label: str = "NONE") -> list[LabeledSentence]:
    """The training sentences that report no event: the partners of sentence mixing."""
    return [r for r in records if r.event_type == none_label]
