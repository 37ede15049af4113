"""Augmentation: actor-name swapping keeps every label on its span and changes only the names; sentence
mixing keeps the labels of the sentence and makes the background's actors OTHER."""

from __future__ import annotations

import random

from eventcoder.training.augment import background_pool, name_pool, swap_actor_names, with_background
from eventcoder.training.data import Actor, LabeledSentence, StanceLabel


def sentence(text: str, spans: list[tuple[str, str, str, str]], stance: dict[str, str]) -> LabeledSentence:
    actors, cursor = [], 0
    for span, role, kind, country in spans:
        start = text.index(span, cursor)
        cursor = start + len(span)
        actors.append(Actor(start, start + len(span), role, kind, country))
    return LabeledSentence(text, "ACCUSE", "", actors, [StanceLabel(t, s) for t, s in stance.items()], "t.jsonl:1")


RECORDS = [
    sentence("Germany accused Belarus of staging the crossings, and Germany said it would respond.",
             [("Germany", "INITIATOR", "GOV", "DEU"), ("Belarus", "TARGET", "GOV", "BLR"), ("Germany", "OTHER", "GOV", "DEU")],
             {"Belarus": "AGAINST"}),
    sentence("Kenya praised the mediators.", [("Kenya", "INITIATOR", "GOV", "KEN"), ("mediators", "TARGET", "CVL", "")],
             {"mediators": "FAVOR"}),
    sentence("The Wagner Group attacked she.", [("Wagner Group", "INITIATOR", "REB", "RUS"), ("she", "TARGET", "CVL", "")], {}),
    sentence("Hamas fired rockets.", [("Hamas", "INITIATOR", "REB", "PSE")], {}),
]


def test_names_are_swapped_within_their_type_and_every_label_moves_with_its_span() -> None:
    pool = name_pool(RECORDS)
    assert sorted(pool) == ["GOV", "REB"]  # CVL has one lowercase span only: nothing to swap with
    for seed in range(20):
        swapped = swap_actor_names(RECORDS[0], pool, random.Random(seed))
        assert swapped is not None and swapped.event_type == "ACCUSE"
        names = [swapped.actor_text(a) for a in swapped.actors]
        assert names[0] == names[2] != "Germany" and names[1] != "Belarus"  # one name, one replacement
        assert all(name in {"Germany", "Belarus", "Kenya"} for name in names)
        assert [a.role for a in swapped.actors] == ["INITIATOR", "TARGET", "OTHER"]
        assert [a.type for a in swapped.actors] == ["GOV"] * 3
        countries = {"Germany": "DEU", "Belarus": "BLR", "Kenya": "KEN"}
        assert [a.country for a in swapped.actors] == [countries[n] for n in names]
        assert swapped.stance == [StanceLabel(names[1], "AGAINST")]
        assert swapped.text.endswith(" said it would respond.") and " of staging the crossings, and " in swapped.text


def test_lowercase_spans_and_pronouns_stay_and_a_sentence_without_names_gives_none() -> None:
    pool = name_pool(RECORDS)
    swapped = swap_actor_names(RECORDS[2], pool, random.Random(1))
    assert swapped is not None and swapped.text == "The Hamas attacked she."
    assert swapped.actor_text(swapped.actors[1]) == "she"
    kenya_only = {"GOV": [("Kenya", "KEN")]}
    assert swap_actor_names(RECORDS[1], kenya_only, random.Random(0)) is None


def test_a_sentence_mixed_with_background_keeps_its_labels_on_the_moved_spans() -> None:
    background = LabeledSentence("The Kenyan capital hosted the regional summit in 2019.", "NONE", "",
                                 [Actor(4, 10, "INITIATOR", "GOV", "KEN")], [StanceLabel("Kenyan", "FAVOR"),
                                                                             StanceLabel("Belarus", "FAVOR")], "t.jsonl:9")
    assert background_pool(RECORDS + [background]) == [background]
    record = RECORDS[0]
    for before in (True, False):
        mixed = with_background(record, background, before=before)
        assert (mixed.event_type, mixed.mode) == (record.event_type, record.mode)
        first, second = (background, record) if before else (record, background)
        assert mixed.text == first.text + " " + second.text
        own = [a for a in mixed.actors if mixed.actor_text(a) != "Kenyan"]
        assert [(mixed.actor_text(a), a.role, a.type, a.country) for a in own] == \
            [(record.actor_text(a), a.role, a.type, a.country) for a in record.actors]
        [other] = [a for a in mixed.actors if mixed.actor_text(a) == "Kenyan"]
        assert other.role == "OTHER" and other.type == "GOV"   # takes part in no event of the input
        # the record's own stance wins where both name a target; the background's other stances stay
        assert [(s.target, s.stance) for s in mixed.stance] == [("Belarus", "AGAINST"), ("Kenyan", "FAVOR")]
