"""The project's corpus meets the numbers it promises (docs/data.md) and matches its authoring sources."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eventcoder.training.authoring import Schema, corpus_statistics, main as authoring_main, opening
from eventcoder.training.config import TrainConfig
from eventcoder.training.data import LabelSets, read_labeled_file

REPO = Path(__file__).resolve().parent.parent
SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    return {name: [json.loads(line) for line in (REPO / "data" / f"{name}.jsonl").read_text().splitlines()]
            for name in SPLITS}


def test_committed_splits_are_exactly_what_the_authoring_files_build(tmp_path: Path) -> None:
    assert authoring_main(["build", "--output-dir", str(tmp_path)]) == 0
    for name in SPLITS:
        assert (tmp_path / f"{name}.jsonl").read_text() == (REPO / "data" / f"{name}.jsonl").read_text(), \
            f"data/{name}.jsonl is stale: run python -m training.authoring build"


def test_every_split_is_valid_under_the_default_config() -> None:
    config = TrainConfig.from_yaml(REPO / "configs" / "default.yaml")
    labels = LabelSets(event_types=config.labels.event_types, roles=config.labels.roles,
                       stances=config.labels.stances, actor_types=config.labels.actor_types, modes=config.labels.modes)
    for name in SPLITS:
        assert read_labeled_file(REPO / "data" / f"{name}.jsonl", labels)


def test_size_balance_and_split_proportions(corpus: dict[str, list[dict]]) -> None:
    everything = [r for part in corpus.values() for r in part]
    assert len(everything) >= 3400
    counts = Counter(r["event_type"] for r in everything)
    schema = Schema.load(REPO / "data" / "schema.json")
    assert set(counts) == set(schema.event_types)
    assert min(counts.values()) >= 200, counts
    assert len(corpus["test"]) >= 0.15 * len(everything) - len(counts)
    texts = [r["text"] for r in everything]
    assert len(texts) == len(set(texts)), "a sentence appears twice"
    for name in ("dev", "test"):
        assert set(Counter(r["event_type"] for r in corpus[name])) == set(schema.event_types)


def test_annotation_coverage(corpus: dict[str, list[dict]]) -> None:
    schema = Schema.load(REPO / "data" / "schema.json")
    everything = [r for part in corpus.values() for r in part]
    stats = corpus_statistics(everything, schema)
    assert stats["countries"] >= 60
    assert stats["event_sentences_with_actors"] >= 0.70
    assert stats["sentences_with_stance"] >= 0.15
    assert stats["stances"]["FAVOR"] >= 300 and stats["stances"]["AGAINST"] >= 300
    assert stats["modal_sentences_with_mode"] >= 0.80
    assert set(stats["actor_types"]) == set(schema.actor_types)
    for record in everything:
        for actor in record["actors"]:
            assert actor["type"] in schema.actor_types and (actor["country"] == "" or len(actor["country"]) == 3)


def test_few_near_duplicates(corpus: dict[str, list[dict]]) -> None:
    everything = [r for part in corpus.values() for r in part]
    openings = Counter(opening(r["text"]) for r in everything)
    shared = sum(c for c in openings.values() if c > 1)
    assert shared / len(everything) < 0.10
def test_minimal_pair_blocks_never_straddle_splits(tmp_path: Path) -> None:
    assert authoring_main(["build", "--output-dir", str(tmp_path)]) == 0
    where: dict[str, set[str]] = {}
    for name in ("train", "dev", "test"):
        for line in (tmp_path / f"{name}.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "block" in record:
                where.setdefault(record["block"], set()).add(name)
    assert where and all(len(splits) == 1 for splits in where.values())


