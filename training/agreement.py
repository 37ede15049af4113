"""Inter-annotator agreement between the corpus and an independent second labeling pass.

    python3 -m training.agreement data/qc/second_pass_*.txt

Second-pass lines are `ID<TAB>authoring line`. ID is `file.txt:line` of the first annotator's line in
data/authoring/, or a neutral id translated by `--map ids.json` (neutral ids keep the first
annotator's event type, which the file names reveal, hidden from the second). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .authoring import DEFAULT_AUTHORING_DIR, DEFAULT_SCHEMA, Schema, load_authoring_dir, parse_line


def cohen_kappa(a: list[str], b: list[str]) -> float:
    n = len(a)
    if not n:
        return 0.0
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else 1.0


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def agreement(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> dict[str, Any]:
    events_a, events_b = [r["event_type"] for r in first], [r["event_type"] for r in second]
    modes = [(a["mode"], b["mode"]) for a, b in zip(first, second) if a["event_type"] == b["event_type"] and (a["mode"] or b["mode"])]
    span_counts, labeled_counts = Counter(), Counter()
    roles, types, countries, stances = [], [], [], []
    for a, b in zip(first, second):
        stance_a = {s["target"]: s["stance"] for s in a["stance"]}
        stance_b = {s["target"]: s["stance"] for s in b["stance"]}
        spans_a = {(x["start"], x["end"]): x for x in a["actors"]}
        spans_b = {(x["start"], x["end"]): x for x in b["actors"]}
        common = set(spans_a) & set(spans_b)
        span_counts.update(tp=len(common), fp=len(set(spans_b) - common), fn=len(set(spans_a) - common))
        labeled_a = {(k, v["role"]) for k, v in spans_a.items()}
        labeled_b = {(k, v["role"]) for k, v in spans_b.items()}
        labeled_counts.update(tp=len(labeled_a & labeled_b), fp=len(labeled_b - labeled_a), fn=len(labeled_a - labeled_b))
        for key in sorted(common):
            x, y = spans_a[key], spans_b[key]
            text = a["text"][key[0]:key[1]]
            roles.append((x["role"], y["role"]))
            types.append((x["type"], y["type"]))
            countries.append((x["country"], y["country"]))
            stances.append((stance_a.get(text, "NONE"), stance_b.get(text, "NONE")))

    def pair_stats(pairs: list[tuple[str, str]]) -> dict[str, float]:
        return {"n": len(pairs), "agreement": round(sum(x == y for x, y in pairs) / max(1, len(pairs)), 3),
                "kappa": round(cohen_kappa([x for x, _ in pairs], [y for _, y in pairs]), 3)}

    confusions = Counter((x, y) for x, y in zip(events_a, events_b) if x != y).most_common(8)
    return {
        "sentences": len(first),
        "event_type": pair_stats(list(zip(events_a, events_b))),
        "mode (same event type)": pair_stats(modes),
        "actor spans, exact boundaries (F1)": round(f1(span_counts["tp"], span_counts["fp"], span_counts["fn"]), 3),
        "actor spans + role (F1)": round(f1(labeled_counts["tp"], labeled_counts["fp"], labeled_counts["fn"]), 3),
        "role (matched spans)": pair_stats(roles),
        "actor type (matched spans)": pair_stats(types),
        "country (matched spans)": pair_stats(countries),
        "stance (matched spans)": pair_stats(stances),
        "event type disagreements (first, second, count)": [[x, y, c] for (x, y), c in confusions],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.agreement", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--map", type=Path, help="JSON object: neutral id -> file.txt:line")
    args = parser.parse_args(argv)
    id_map = json.loads(args.map.read_text(encoding="utf-8")) if args.map else {}
    schema = Schema.load(DEFAULT_SCHEMA)
    records, errors = load_authoring_dir(DEFAULT_AUTHORING_DIR, schema, recursive=True)  # round 2 too
    if errors:
        print(f"the authoring files have {len(errors)} errors; run python3 -m training.authoring check", file=sys.stderr)
        return 1
    by_source = {r["source"]: r for r in records}
    first, second = [], []
    for path in args.files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            source, body = line.split("\t", 1)
            source = id_map.get(source, source)
            other = parse_line(body, schema, str(path), n)
            original = by_source.get(source)
            if original is None or original["text"] != other["text"]:
                print(f"{path}:{n}: {source} does not match the corpus sentence; skipped", file=sys.stderr)
                continue
            first.append(original)
            second.append(other)
    print(json.dumps(agreement(first, second), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
