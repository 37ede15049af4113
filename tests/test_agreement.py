from __future__ import annotations

import pytest

from eventcoder.training.agreement import agreement, cohen_kappa
from eventcoder.training.authoring import Schema, parse_line
from pathlib import Path

SCHEMA = Schema.load(Path(__file__).resolve().parent.parent / "data" / "schema.json")


def test_kappa_is_one_for_identical_and_zero_for_chance() -> None:
    assert cohen_kappa(["A", "B", "A"], ["A", "B", "A"]) == 1.0
    assert cohen_kappa(["A", "A", "B", "B"], ["A", "B", "A", "B"]) == pytest.approx(0.0)


def test_agreement_counts_spans_roles_and_stance() -> None:
    first = [parse_line("ACCUSE/allege | [Kyiv](INITIATOR, GOV, UKR) accused [Moscow](TARGET, GOV, RUS, AGAINST).", SCHEMA)]
    second = [parse_line("ACCUSE/disapprove | [Kyiv](INITIATOR, GOV, UKR) accused [Moscow](OTHER, GOV, RUS).", SCHEMA)]
    report = agreement(first, second)
    assert report["event_type"]["agreement"] == 1.0
    assert report["mode (same event type)"]["agreement"] == 0.0
    assert report["actor spans, exact boundaries (F1)"] == 1.0
    assert report["actor spans + role (F1)"] == 0.5
    assert report["stance (matched spans)"]["agreement"] == 0.5
