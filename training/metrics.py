"""Metrics of every head, computed from a Predictor's outputs on labeled sentences."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any, Sequence

import numpy as np

from eventcoder.model.gazetteer import resolve_country
from eventcoder.model.heads import pick_mode
from eventcoder.training.data import LabeledSentence


def classification_report(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Per-label precision/recall/F1/support, macro-F1 over labels present in gold or predictions,
    accuracy, and the confusion matrix (rows gold, columns predicted), computed with scikit-learn."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(labels)
    with warnings.catch_warnings():  # one label in gold and predictions is a valid (if small) case
        warnings.simplefilter("ignore", UserWarning)
        matrix = confusion_matrix(gold, predicted, labels=labels) if len(gold) else np.zeros((len(labels),) * 2, int)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, average=None, zero_division=0) if len(gold) else ([0.0] * len(labels),) * 4
    present = [i for i in range(len(labels)) if matrix[i, :].sum() or matrix[:, i].sum()]
    total = int(matrix.sum())
    return {
        "macro_f1": float(np.mean([f1[i] for i in present])) if present else 0.0,
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
        "per_label": {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                              "support": int(support[i])} for i, label in enumerate(labels)},
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
        "count": total,
    }


def span_report(gold: Sequence[set[tuple[int, int, str]]], predicted: Sequence[set[tuple[int, int, str]]],
                roles: Sequence[str]) -> dict[str, Any]:
    """Exact-match (start, end, role) precision/recall/F1 per role and micro over all roles."""
    counts = {role: Counter() for role in roles}
    for g, p in zip(gold, predicted):
        for role in roles:
            g_role = {s for s in g if s[2] == role}
            p_role = {s for s in p if s[2] == role}
            counts[role]["tp"] += len(g_role & p_role)
            counts[role]["fp"] += len(p_role - g_role)
            counts[role]["fn"] += len(g_role - p_role)

    def prf(c: Counter) -> dict[str, float]:
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": c["tp"] + c["fn"]}

    total = sum(counts.values(), Counter())
    # spans found with the right boundaries whatever the role: how well actors are found at all
    unlabeled = Counter()
    for g, p in zip(gold, predicted):
        g_spans, p_spans = {(s, e) for s, e, _ in g}, {(s, e) for s, e, _ in p}
        unlabeled["tp"] += len(g_spans & p_spans)
        unlabeled["fp"] += len(p_spans - g_spans)
        unlabeled["fn"] += len(g_spans - p_spans)
    return {"per_role": {role: prf(c) for role, c in counts.items()}, "micro": prf(total),
            "unlabeled_spans": prf(unlabeled), "overlap_iou50": prf(_overlap_counts(gold, predicted)),
            "macro_f1": float(np.mean([prf(c)["f1"] for c in counts.values()])) if counts else 0.0}


def _iou(a: tuple[int, int, str], b: tuple[int, int, str]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


def _overlap_counts(gold: Sequence[set[tuple[int, int, str]]], predicted: Sequence[set[tuple[int, int, str]]]
                    ) -> Counter:
    """Role matches where spans overlap at IoU >= 0.5 (each gold and predicted span used once): the
    lenient measure used for real news, where span boundaries are a matter of convention."""
    counts: Counter = Counter()
    for g, p in zip(gold, predicted):
        unused = sorted(p)
        for span in sorted(g):
            match = next((q for q in unused if q[2] == span[2] and _iou(span, q) >= 0.5), None)
            if match is None:
                counts["fn"] += 1
            else:
                counts["tp"] += 1
                unused.remove(match)
        counts["fp"] += len(unused)
    return counts


def evaluate_predictor(predictor: Any, records: Sequence[LabeledSentence]) -> dict[str, Any]:
    """Every head's metrics on labeled sentences. Stance and actor type are scored on the gold
    actor spans (the span heads' own quality); roles are scored end to end on predicted spans."""
    gold_spans = [[(a.start, a.end) for a in (r.actors or [])] for r in records]
    outputs = predictor.analyze([r.text for r in records], gold_spans=gold_spans)
    report: dict[str, Any] = {"sentences": len(records)}

    event_labels = predictor.event_labels
    pairs = [(r.event_type, event_labels[int(o.event_probs.argmax())]) for r, o in zip(records, outputs)
             if r.event_type is not None and r.event_type in event_labels]
    if pairs:
        report["event_type"] = classification_report([g for g, _ in pairs], [p for _, p in pairs], event_labels)

    if predictor.mode_labels:
        mode_gold, mode_pred = [], []
        for r, o in zip(records, outputs):
            if r.mode and r.event_type:
                predicted_type = event_labels[int(o.event_probs.argmax())]
                mode, _ = pick_mode(o.mode_logits, predictor.mode_labels, predicted_type)
                mode_gold.append(f"{r.event_type}/{r.mode}")
                mode_pred.append(f"{predicted_type}/{mode}" if mode else f"{predicted_type}/")
        if mode_gold:
            labels = sorted(set(mode_gold) | set(mode_pred))
            report["mode"] = classification_report(mode_gold, mode_pred, labels)
            report["mode"].pop("confusion_matrix")

    with_actors = [(r, o) for r, o in zip(records, outputs) if r.actors is not None]
    if with_actors and predictor.bio_id2label:
        roles = [label[2:] for label in predictor.bio_id2label.values() if label.startswith("B-")]
        report["actors"] = span_report(
            [{(a.start, a.end, a.role) for a in r.actors or []} for r, _ in with_actors],
            [{(s, e, role) for s, e, role, _ in o.spans} for _, o in with_actors], roles)

    stance_gold, stance_pred, type_gold, type_pred = [], [], [], []
    country_hits = country_total = 0
    for r, o in zip(records, outputs):
        stance_by_target = {s.target: s.stance for s in (r.stance or [])}
        for actor, stance_probs, type_probs in zip(r.actors or [], o.given_stance_probs, o.given_type_probs):
            if stance_probs is None:
                continue
            gold_stance = stance_by_target.get(r.actor_text(actor))
            if r.stance is not None and gold_stance in predictor.stance_labels:
                stance_gold.append(gold_stance)
                stance_pred.append(predictor.stance_labels[int(stance_probs.argmax())])
            if actor.type and predictor.type_labels and actor.type in predictor.type_labels:
                type_gold.append(actor.type)
                type_pred.append(predictor.type_labels[int(type_probs.argmax())])
            if actor.country is not None:
                country_total += 1
                country_hits += resolve_country(r.text, actor.start, actor.end) == actor.country
    if stance_gold:
        report["stance"] = classification_report(stance_gold, stance_pred, predictor.stance_labels)
    targets_report = free_text_stance_report(predictor, records)
    if targets_report is not None:
        report["stance_targets"] = targets_report
    if type_gold:
        report["actor_type"] = classification_report(type_gold, type_pred, predictor.type_labels)
    if country_total:
        report["country"] = {"accuracy": country_hits / country_total, "count": country_total}
    report["summary"] = summarize(report)
    return report


def free_text_stance_report(predictor: Any, records: Sequence[LabeledSentence]) -> dict[str, Any] | None:
    """Stance on the gold free-text targets (stance entries whose target is no actor span of the line),
    coded as a caller's targets are (`predict(..., targets=...)`, one sentence per line); None when the
    lines have none or the model has no stance head. A stance-only data set is scored here."""
    if not predictor.stance_labels:
        return None
    lines = [(r, [s for s in r.stance or [] if s.target not in {r.actor_text(a) for a in r.actors or []}
                  and s.stance in predictor.stance_labels]) for r in records]
    lines = [(r, entries) for r, entries in lines if entries]
    if not lines:
        return None
    predicted = predictor.predict([r.text for r, _ in lines], targets=[[s.target for s in e] for _, e in lines],
                                  split=False, cut_long=False)
    gold, guess = [], []
    for (_, entries), record in zip(lines, predicted):
        by_target = {p.target: p.stance for p in record.stance or []}
        for entry in entries:
            gold.append(entry.stance)
            guess.append(by_target.get(entry.target.strip(), "NONE"))
    return classification_report(gold, guess, predictor.stance_labels)


def summarize(report: dict[str, Any]) -> dict[str, float]:
    """The headline figure of each head."""
    summary: dict[str, float] = {}
    for head in ("event_type", "mode", "stance", "stance_targets", "actor_type"):
        if head in report:
            summary[f"{head}_macro_f1"] = round(report[head]["macro_f1"], 4)
    for head in ("event_type", "mode", "stance", "actor_type"):
        if head in report:
            summary[f"{head}_accuracy"] = round(report[head]["accuracy"], 4)
    if "actors" in report:
        summary["actors_micro_f1"] = round(report["actors"]["micro"]["f1"], 4)
        summary["actors_iou50_f1"] = round(report["actors"]["overlap_iou50"]["f1"], 4)
    if "country" in report:
        summary["country_accuracy"] = round(report["country"]["accuracy"], 4)
    return summary


def selection_score(summary: dict[str, float]) -> float:
    """The figure the best epoch is chosen by: the mean of the three core heads (those the data scores).
    Stance is its score on actor spans, else (a data set without actors) on free-text targets."""
    keys = ("event_type_macro_f1", "actors_micro_f1",
            "stance_macro_f1" if "stance_macro_f1" in summary else "stance_targets_macro_f1")
    values = [summary[k] for k in keys if k in summary]
    return float(np.mean(values)) if values else 0.0


def top_confusions(report: dict[str, Any], n: int = 5) -> list[tuple[str, str, int]]:
    """The n most frequent (gold, predicted) off-diagonal pairs of a classification report."""
    labels, matrix = report["labels"], report["confusion_matrix"]
    cells = [(labels[i], labels[j], matrix[i][j]) for i in range(len(labels)) for j in range(len(labels))
             if i != j and matrix[i][j]]
    return sorted(cells, key=lambda c: -c[2])[:n]
