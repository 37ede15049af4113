"""Actor-name swapping keeps every label on its span and changes only the names."""

from __future__ import annotations

import random

from eventcoder.training.augment import name_pool, swap_actor_names
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
