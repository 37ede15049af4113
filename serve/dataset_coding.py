"""Coding a Hugging Face `datasets.Dataset` in a notebook, without a file round trip.

    from datasets import Dataset
    from eventcoder import Predictor, code_dataset
    coded = code_dataset(Dataset.from_dict({"text": [...]}), Predictor.from_pretrained("models/default"))

Each row is coded in batches (`Dataset.map(batched=True)`) and gains columns: `event_type` and
`event_score` (when the model has an event head), `actors` (list of {text, start, end, role, score,
type, country}) and `stance` (list of {target, stance, score}) of the row's first record, `records`
(how many records the row gave) and `predictions` (every record as a JSON string, exactly what
`eventcoder score` writes, `doc_id` being the row's index). A row is one sentence unless `split=True`; a sentence longer than the
model's window gives one record per piece (`records` > 1), so nothing is dropped.
"""

from __future__ import annotations

import json
from typing import Any

ACTOR_FIELDS = ("text", "start", "end", "role", "score", "type", "country")
STANCE_FIELDS = ("target", "stance", "score")


def code_dataset(dataset: Any, predictor: Any, text_column: str = "text", split: bool = False,
                 batch_size: int = 64, targets: list[str] | None = None) -> Any:
    """A copy of `dataset` with the prediction columns added (see the module docstring)."""
    if text_column not in dataset.column_names:
        raise ValueError(f"the dataset has no column {text_column!r} (columns: {', '.join(dataset.column_names)})")
    taken = [c for c in ("event_type", "event_score", "actors", "stance", "records", "predictions")
             if c in dataset.column_names]
    if taken:
        raise ValueError(f"the dataset already has the column(s) {', '.join(taken)}: rename or remove them first")

    def code(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        texts = ["" if t is None else str(t) for t in batch[text_column]]
        row_of = {str(index): row for row, index in enumerate(indices)}
        by_row: list[list[Any]] = [[] for _ in texts]
        for record in predictor.predict(texts, targets=targets, split=split, doc_ids=list(row_of)):
            by_row[row_of[record.doc_id]].append(record)
        columns: dict[str, list[Any]] = {"records": [len(r) for r in by_row],
                                         "predictions": [[json.dumps(x.to_dict(), ensure_ascii=False) for x in r]
                                                         for r in by_row]}
        firsts = [r[0].to_dict() if r else {} for r in by_row]
        if predictor.event_labels:
            columns["event_type"] = [f.get("event_type", "") for f in firsts]
            columns["event_score"] = [float(f.get("event_score", 0.0)) for f in firsts]
        columns["actors"] = [[{k: a.get(k) for k in ACTOR_FIELDS} for a in f.get("actors", [])] for f in firsts]
        columns["stance"] = [[{k: s.get(k) for k in STANCE_FIELDS} for s in f.get("stance", [])] for f in firsts]
        return columns

    return dataset.map(code, batched=True, with_indices=True, batch_size=batch_size, desc="eventcoder",
                       features=_features(dataset.features, bool(predictor.event_labels)))


def _features(existing: Any, with_event: bool) -> Any:
    """The output schema, given up front: a batch whose rows all have no actor would otherwise fix the
    column's type as a list of nulls."""
    from datasets import Features, Value

    added: dict[str, Any] = {}
    if with_event:
        added.update(event_type=Value("string"), event_score=Value("float64"))
    added["actors"] = [{"text": Value("string"), "start": Value("int64"), "end": Value("int64"),
                        "role": Value("string"), "score": Value("float64"), "type": Value("string"),
                        "country": Value("string")}]
    added["stance"] = [{"target": Value("string"), "stance": Value("string"), "score": Value("float64")}]
    added.update(records=Value("int64"), predictions=[Value("string")])
    return Features({**existing, **added})
