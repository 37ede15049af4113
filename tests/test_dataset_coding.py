"""Coding a `datasets.Dataset` in batches: the same records as the Predictor gives one row at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventcoder import Predictor, code_dataset


def test_code_dataset_adds_the_predictor_records_row_by_row(trained_model: Path) -> None:
    from datasets import Dataset

    predictor = Predictor.from_pretrained(trained_model)
    texts = ["Kataib Hezbollah warned it would escalate attacks on US forces.", "", "Talks resumed in Doha.",
             "The government praised the ceasefire.", "Police fired tear gas at protesters in the capital."]
    dataset = Dataset.from_dict({"text": texts, "id": list(range(len(texts)))})
    coded = code_dataset(dataset, predictor, batch_size=2)  # three batches, one with an empty row
    assert coded.column_names[:2] == ["text", "id"] and coded["id"] == list(range(len(texts)))
    for index, (row, text) in enumerate(zip(coded, texts)):
        alone = [r.to_dict() for r in predictor.predict([text], split=False, doc_ids=[str(index)])]
        assert [json.loads(p) for p in row["predictions"]] == alone
        assert row["records"] == len(alone)
        if alone:
            assert row["event_type"] == alone[0]["event_type"]
            assert [a["text"] for a in row["actors"]] == [a["text"] for a in alone[0]["actors"]]
            assert [s["stance"] for s in row["stance"]] == [s["stance"] for s in alone[0]["stance"]]


def test_code_dataset_names_a_missing_or_taken_column(trained_model: Path) -> None:
    from datasets import Dataset

    predictor = Predictor.from_pretrained(trained_model)
    with pytest.raises(ValueError, match="no column 'body'"):
        code_dataset(Dataset.from_dict({"text": ["x"]}), predictor, text_column="body")
    with pytest.raises(ValueError, match="already has the column"):
        code_dataset(Dataset.from_dict({"text": ["x"], "event_type": ["y"]}), predictor)
