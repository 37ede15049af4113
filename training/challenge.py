"""The challenge suite: hand-written cases grouped by capability (negation, modality, attribution,
background clauses, two events, NONE look-alikes, passives, actor boundaries, pronoun targets,
stance wording), written by people who wrote no training sentences and never trained on.

It is the team's window on generalisation, a measure and not a gate. It is cut into two fixed
halves, balanced per capability: `select` may choose among training runs (an epoch, a recipe);
`report` is only ever reported.

    python -m eventcoder.training.challenge --model models/default [--half report] [-o out.json]
    python -m eventcoder.training.challenge build      # data/challenge/{select,report}.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from eventcoder.training.authoring import DEFAULT_SCHEMA, REPO_ROOT, Schema, read_authoring_file, write_jsonl

CHALLENGE_DIR = REPO_ROOT / "data" / "challenge"
HALVES = ("select", "report")


def load_cases(directory: Path = CHALLENGE_DIR, schema_path: Path = DEFAULT_SCHEMA) -> list[dict[str, Any]]:
    """Every case of every `*.txt` file in `directory`; a malformed line is an error naming it."""
    schema = Schema.load(schema_path)
    cases: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.txt")):
        records, errors = read_authoring_file(path, schema)
        if errors:
            raise ValueError(f"{errors[0]} ({len(errors)} malformed lines in {path.name})")
        missing = [r["source"] for r in records if not r.get("capability")]
        if missing:
            raise ValueError(f"{missing[0]}: case outside a '## capability: NAME' section")
        cases.extend(records)
    return cases


def halves(cases: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Two fixed halves, alternating within each capability in an order set by a hash of the text
    (so adding cases never moves an old case to the other half unless its neighbours change)."""
    by_capability: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case in cases:
        by_capability[case["capability"]].append(case)
    result: dict[str, list[dict[str, Any]]] = {name: [] for name in HALVES}
    for capability in sorted(by_capability):
        ordered = sorted(by_capability[capability], key=lambda c: hashlib.sha1(c["text"].encode()).hexdigest())
        for i, case in enumerate(ordered):
            result[HALVES[i % 2]].append(case)
    return result


def evaluate(predictor: Any, cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per capability and overall: event-type accuracy and macro-F1, actor roles (exact and at
    IoU >= 0.5), stance macro-F1 on the gold actor spans."""
    from eventcoder.training.data import label_sets_of, validate_record
    from eventcoder.training.metrics import evaluate_predictor

    labels = label_sets_of(predictor)
    records = [validate_record(_as_row(c), labels, source=c["source"]) for c in cases]
    groups: dict[str, list[Any]] = defaultdict(list)
    for record, case in zip(records, cases):
        groups[case["capability"]].append(record)
    result: dict[str, Any] = {"model": predictor.model_tag, "cases": len(records), "capabilities": {}}
    for capability in sorted(groups):
        summary = evaluate_predictor(predictor, groups[capability])["summary"]
        result["capabilities"][capability] = {"cases": len(groups[capability]), **summary}
    result["overall"] = evaluate_predictor(predictor, records)["summary"] if records else {}
    return result


def _as_row(case: dict[str, Any]) -> dict[str, Any]:
    return {k: case[k] for k in ("text", "event_type", "mode", "actors", "stance") if k in case}


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """A table of capability x (run: event accuracy / role F1 at IoU 0.5 / stance macro-F1)."""
    runs = list(results)
    header = "| capability | cases | " + " | ".join(f"{run}: event acc / roles IoU.5 / stance F1" for run in runs) + " |"
    lines = [header, "|" + "---|" * (2 + len(runs))]
    first = results[runs[0]]
    for capability in [*first["capabilities"], "overall"]:
        cells = []
        for run in runs:
            row = results[run]["overall"] if capability == "overall" else results[run]["capabilities"].get(capability, {})
            cells.append(" / ".join(f"{row.get(k, float('nan')):.3f}" for k in
                                    ("event_type_accuracy", "actors_iou50_f1", "stance_macro_f1")))
        count = first["cases"] if capability == "overall" else first["capabilities"][capability]["cases"]
        lines.append(f"| {capability} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eventcoder.training.challenge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["evaluate", "build"], default="evaluate")
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--half", choices=[*HALVES, "all"], default="all")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "onnx-int8", "torch"])
    parser.add_argument("-o", "--output", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    cases = load_cases()
    parts = halves(cases)
    if args.command == "build":
        for name, part in parts.items():
            write_jsonl(CHALLENGE_DIR / f"{name}.jsonl", part)
            print(f"{name}: {len(part)} cases -> {CHALLENGE_DIR / (name + '.jsonl')}")
        return 0
    from eventcoder.model.predictor import Predictor

    predictor = Predictor.from_pretrained(args.model, backend=args.backend)
    chosen = cases if args.half == "all" else parts[args.half]
    result = evaluate(predictor, chosen)
    result["half"] = args.half
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(markdown_table({predictor.model_tag: result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
