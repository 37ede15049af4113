"""Metrics computed by hand on small cases: per-label figures, macro average, lenient span matching."""

from __future__ import annotations


def test_classification_report_counts_by_hand() -> None:
    from eventcoder.training.metrics import classification_report

    report = classification_report(["A", "A", "B", "C"], ["A", "B", "B", "B"], ["A", "B", "C", "D"])
    assert report["confusion_matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert report["per_label"]["A"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert report["per_label"]["B"]["precision"] == 1 / 3 and report["per_label"]["C"]["f1"] == 0.0
    # D is neither gold nor predicted: left out of the macro average
    assert report["macro_f1"] == (2 / 3 + 0.5 + 0.0) / 3 and report["accuracy"] == 0.5 and report["count"] == 4


def test_roles_match_at_iou_half_once_each() -> None:
    from eventcoder.training.metrics import span_report

    gold = [{(0, 10, "INITIATOR"), (20, 30, "TARGET")}]
    predicted = [{(0, 8, "INITIATOR"), (2, 10, "INITIATOR"), (20, 24, "TARGET")}]
    lenient = span_report(gold, predicted, ["INITIATOR", "TARGET"])["overlap_iou50"]
    assert (lenient["precision"], lenient["recall"]) == (1 / 3, 0.5)
