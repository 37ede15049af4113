"""A sentence's record does not depend on the batch it is coded in (issue 13): alone, in batches of
other sizes, mixed with other sentences, in another order, on 1 or 2 threads, fp32 and int8 alike."""

from __future__ import annotations

import json
import random
from pathlib import Path

import onnx
import pytest

from eventcoder.model.predictor import Predictor

SENTENCES = [
    "Police fired tear gas at protesters in Nairobi on Tuesday.",
    "Rebels shelled the northern town of Goma on Monday, killing six civilians and wounding dozens more.",
    "Talks began.",
    "The government accused the opposition of planning a coup.",
    "US forces and the Iraqi army launched a joint operation against Kataib Hezbollah near the border.",
    "Ministers agreed to resume negotiations next week.",
    "Thousands marched in the capital to demand the release of political prisoners held since the election.",
    "The UN sent food aid to the refugees.",
]
OTHERS = ["Kataib Hezbollah warned the United States.", "The army withdrew from the town after talks.",
          "Protesters blocked the main road to the airport for a third day, demanding new elections."]
TARGETS = ["the government", "US troops in Iraq"]  # one named, one only partly: both stance paths run


def _records(predictor: Predictor, texts: list[str]) -> dict[str, str]:
    """Each record as JSON, keyed by its text and start (a text longer than the model's max length is
    coded in pieces); the doc ids are the texts, so they match too."""
    records = predictor.predict(texts, targets=TARGETS, split=False, doc_ids=texts)
    found = {f"{r.doc_id}@{r.start}": json.dumps(r.to_dict()) for r in records}
    # and the raw head outputs to the last bit (records round scores to 4 decimals)
    for text, out in zip(texts, predictor.analyze(texts)):
        found[f"raw {text}"] = (out.event_probs.tobytes() + out.mode_logits.tobytes()
                                + b"".join(p.tobytes() for p in out.span_stance_probs + out.span_type_probs)).hex()
    return found


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_records_do_not_depend_on_the_batch(trained_model: Path, backend: str) -> None:
    def predictor(batch_size: int = 32, threads: int = 1, wave_size: int = 1024) -> Predictor:
        p = Predictor.from_pretrained(trained_model, backend=backend, batch_size=batch_size, threads=threads)
        p.wave_size = max(batch_size, wave_size)
        return p

    alone: dict[str, str] = {}
    single = predictor(batch_size=1)
    for text in SENTENCES:
        alone.update(_records(single, [text]))
    shuffled = SENTENCES[::-1]
    random.Random(0).shuffle(mixed := SENTENCES + OTHERS)
    runs = {
        "one batch": _records(predictor(), SENTENCES),
        "batches of 3": _records(predictor(batch_size=3), SENTENCES),
        "batches of 2, waves of 4": _records(predictor(batch_size=2, wave_size=4), SENTENCES),
        "other order": _records(predictor(), shuffled),
        "mixed with other sentences": _records(predictor(batch_size=4), mixed),
        "2 threads": _records(predictor(batch_size=2, threads=2), SENTENCES),
    }
    assert len(alone) > len(SENTENCES)  # the long sentences come in two pieces
    for name, records in runs.items():
        for key, record in alone.items():
            assert records[key] == record, f"{backend}, {name}: {key}"


def test_the_int8_graph_is_static(trained_model: Path) -> None:
    ops = {n.op_type for n in onnx.load(str(trained_model / "model.int8.onnx"), load_external_data=False).graph.node}
    assert "QuantizeLinear" in ops and "DynamicQuantizeLinear" not in ops
