"""The challenge suite stays out of training, its halves are fixed and balanced, and it evaluates
per capability. Its figures are a measure, not a gate: no test asserts them."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from eventcoder.training.challenge import CHALLENGE_DIR, HALVES, evaluate, halves, load_cases, markdown_table

REPO = Path(__file__).resolve().parent.parent
CAPABILITIES = {"negation", "modality", "attribution", "background_clause", "two_events", "none_lookalike",
                "passive", "actor_boundaries", "pronoun_targets", "stance_wording"}


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_no_challenge_case_is_in_any_training_file() -> None:
    cases = load_cases()
    training_texts = set()
    for path in [*(REPO / "data").glob("*.jsonl"), *(REPO / "data" / "authoring").rglob("*.txt")]:
        for line in path.read_text(encoding="utf-8").splitlines():
            text = json.loads(line)["text"] if path.suffix == ".jsonl" else re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1",
                                                                                    line.partition(" | ")[2])
            training_texts.add(_words(text))
    overlap = [c["source"] for c in cases if _words(c["text"]) in training_texts]
    assert not overlap, overlap[:5]


def test_suite_covers_every_capability_and_type() -> None:
    cases = load_cases()
    assert len(cases) >= 800
    per_capability = Counter(c["capability"] for c in cases)
    assert set(per_capability) == CAPABILITIES and min(per_capability.values()) >= 60
    assert min(Counter(c["event_type"] for c in cases).values()) >= 20


def test_halves_are_disjoint_balanced_and_committed_as_built(tmp_path: Path) -> None:
    cases = load_cases()
    parts = halves(cases)
    texts = [{c["text"] for c in parts[name]} for name in HALVES]
    assert not texts[0] & texts[1] and len(texts[0]) + len(texts[1]) == len(cases)
    for capability, count in Counter(c["capability"] for c in cases).items():
        sizes = [sum(c["capability"] == capability for c in parts[name]) for name in HALVES]
        assert abs(sizes[0] - sizes[1]) <= 1 and sum(sizes) == count
    for name in HALVES:
        committed = [json.loads(line) for line in (CHALLENGE_DIR / f"{name}.jsonl").read_text().splitlines()]
        assert committed == parts[name], f"data/challenge/{name}.jsonl is stale: run python -m eventcoder.training.challenge build"


def test_evaluate_reports_every_capability(trained_model: Path, tmp_path: Path) -> None:
    from eventcoder.model.predictor import Predictor

    predictor = Predictor.from_pretrained(trained_model)
    known = set(predictor.event_labels)
    cases = [c for c in load_cases() if c["event_type"] in known and not c.get("mode")]
    cases = [{**c, "actors": [], "stance": []} for c in cases][:60]  # the tiny model's labels are a subset
    result = evaluate(predictor, cases)
    assert result["cases"] == len(cases)
    assert set(result["capabilities"]) == {c["capability"] for c in cases}
    assert sum(v["cases"] for v in result["capabilities"].values()) == len(cases)
    for figures in result["capabilities"].values():
        assert 0.0 <= figures["event_type_accuracy"] <= 1.0
    table = markdown_table({"tiny": result}).splitlines()
    assert len(table) == 2 + len(result["capabilities"]) + 1 and table[-1].startswith("| overall | 60 |")

