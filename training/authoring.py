"""The corpus authoring format and its converter to labeled JSONL (docs/spec.md).

Sentences are written one a line, with inline actor markup::

    THREATEN/violence | [Kataib Hezbollah](INITIATOR, REB, IRQ) warned it would strike [US forces](TARGET, MIL, USA, AGAINST).

`check` validates authoring files and prints statistics; `build` turns every file under
`data/authoring/` into the stratified train/dev/test splits. Standard library only, so annotators
can run it with any Python 3.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = REPO_ROOT / "data" / "schema.json"
DEFAULT_AUTHORING_DIR = REPO_ROOT / "data" / "authoring"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "data"

_MARKUP = re.compile(r"\[([^\[\]]+)\]\(([^()]*)\)")
_COUNTRY = re.compile(r"^[A-Z]{3}$")
_CAPABILITY = re.compile(r"^##\s*capability:\s*([\w-]+)\s*$")
ROUND_DIRS = "round*"   # round 2 onward: data/authoring/round2/, round3/, ... each split by block


class AuthoringError(ValueError):
    """A malformed authoring line; the message names file, line and field."""

    def __init__(self, path: str, line_no: int, field: str, message: str) -> None:
        super().__init__(f"{path}:{line_no}: field '{field}': {message}")
        self.path, self.line_no, self.field = path, line_no, field


@dataclass(frozen=True)
class Schema:
    event_types: tuple[str, ...]
    modes: dict[str, tuple[str, ...]]
    roles: tuple[str, ...]
    actor_types: tuple[str, ...]
    stances: tuple[str, ...]
    countries: bool = True

    @classmethod
    def load(cls, path: Path | str = DEFAULT_SCHEMA) -> "Schema":
        """A schema file may leave any label list out (or empty): that head is then not written, and an
        analyst's own set (say event types only, or roles only) uses the same markup."""
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            event_types=tuple(raw.get("event_types", ())),
            modes={k: tuple(v) for k, v in raw.get("modes", {}).items()},
            roles=tuple(raw.get("roles", ())),
            actor_types=tuple(raw.get("actor_types", ())),
            stances=tuple(raw.get("stances", ())),
            countries=bool(raw.get("countries", True)),
        )


def parse_line(line: str, schema: Schema, path: str = "<string>", line_no: int = 1) -> dict[str, Any]:
    """Parse one authoring line into a labeled record (docs/spec.md) (with the optional mode/type/country fields)."""

    def fail(field: str, message: str) -> AuthoringError:
        return AuthoringError(path, line_no, field, message)

    if not schema.event_types:  # a schema without event types: the line is the sentence
        head, body = "", line.strip()
    elif " | " not in line:
        raise fail("line", "expected 'EVENT_TYPE[/mode] | sentence'")
    else:
        head, body = (part.strip() for part in line.split(" | ", 1))
    event_type, _, mode = head.partition("/")
    if schema.event_types and event_type not in schema.event_types:
        raise fail("event_type", f"unknown event type {event_type!r} (allowed: {', '.join(schema.event_types)})")
    if mode:
        if mode not in schema.modes.get(event_type, ()):
            allowed = ", ".join(schema.modes.get(event_type, ())) or "none"
            raise fail("mode", f"unknown mode {mode!r} for {event_type} (allowed: {allowed})")

    text_parts: list[str] = []
    actors: list[dict[str, Any]] = []
    stance: list[dict[str, str]] = []
    cursor, length = 0, 0
    for match in _MARKUP.finditer(body):
        plain = body[cursor : match.start()]
        text_parts.append(plain)
        length += len(plain)
        span_text, attrs = match.group(1), match.group(2)
        if span_text != span_text.strip():
            raise fail("actors", f"span {span_text!r} has leading or trailing spaces")
        actor = _parse_attributes(attrs, span_text, schema, fail)
        start = length
        text_parts.append(span_text)
        length += len(span_text)
        actors.append({"start": start, "end": length,
                       **{key: actor[key] for key in ("role", "type", "country") if key in actor}})
        if schema.stances:
            stance.append({"target": span_text, "stance": actor["stance"]})
        cursor = match.end()
    rest = body[cursor:]
    text_parts.append(rest)
    text = "".join(text_parts)
    for bad in "[]":
        if bad in text:
            raise fail("text", f"stray {bad!r}: markup must be [span](ROLE, TYPE, CTY[, STANCE])")
    if re.search(r"\]\s+\(", body):
        raise fail("text", "space between ']' and '(' in markup")
    if not text.strip():
        raise fail("text", "empty sentence")
    record: dict[str, Any] = {"text": text}
    if schema.event_types:
        record.update(event_type=event_type, mode=mode)
    if schema.roles or schema.actor_types:
        record["actors"] = actors
    if schema.stances:
        record["stance"] = stance
    return record


def _parse_attributes(attrs: str, span_text: str, schema: Schema, fail: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for token in (t.strip() for t in attrs.split(",")):
        if not token:
            continue
        if token in schema.roles:
            key = "role"
        elif token in schema.actor_types:
            key = "type"
        elif token in schema.stances:
            key = "stance"
        elif schema.countries and (token == "-" or _COUNTRY.match(token)):
            key = "country"
        else:
            raise fail("actors", f"unknown attribute {token!r} on [{span_text}] (roles: {', '.join(schema.roles)})")
        if key in found:
            raise fail("actors", f"two {key} values on [{span_text}]")
        found[key] = "" if token == "-" else token
    required = {"role": schema.roles, "type": schema.actor_types, "country": schema.countries}
    for key, wanted in required.items():
        if wanted and key not in found:
            raise fail("actors", f"[{span_text}] lacks its {key}")
    found.setdefault("stance", "NONE")
    return found


def read_authoring_file(path: Path, schema: Schema) -> tuple[list[dict[str, Any]], list[AuthoringError]]:
    """All records of one file, plus every error (so an annotator sees them all at once).

    Each record's `source` is `file:line`; its `block` is `file:first line of its block`, a block being
    consecutive non-blank lines (a sentence and its minimal-pair variants). A `## capability: NAME` line
    (challenge-suite files) sets the `capability` of the records after it."""
    records: list[dict[str, Any]] = []
    errors: list[AuthoringError] = []
    block_start = 0
    capability = ""
    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            block_start = 0
            continue
        heading = _CAPABILITY.match(line)
        if heading:
            capability, block_start = heading.group(1), 0
            continue
        if line.startswith("#"):
            continue
        block_start = block_start or line_no
        try:
            record = parse_line(line, schema, str(path), line_no)
        except AuthoringError as err:
            errors.append(err)
            continue
        record["source"] = f"{path.name}:{line_no}"
        if path.parent.name != DEFAULT_AUTHORING_DIR.name:  # round 1 records keep their original fields
            record["block"] = f"{path.name}:{block_start}"
        if capability:
            record["capability"] = capability
        records.append(record)
    return records, errors


def opening(text: str, n_words: int = 6) -> str:
    """The first n words, lower-cased: the key for the near-duplicate check."""
    return " ".join(re.findall(r"[\w'-]+", text.lower())[:n_words])


def corpus_statistics(records: list[dict[str, Any]], schema: Schema) -> dict[str, Any]:
    """Counts that the corpus requirements are stated in (docs/data.md, tests/test_corpus.py)."""
    by_type = Counter(r["event_type"] for r in records if "event_type" in r)
    stances = Counter(s["stance"] for r in records for s in r.get("stance", []))
    actors = [a for r in records for a in r.get("actors", [])]
    roles = Counter(a["role"] for a in actors if "role" in a)
    actor_types = Counter(a["type"] for a in actors if "type" in a)
    countries = Counter(a["country"] for a in actors if a.get("country"))
    modes = Counter(f"{r['event_type']}/{r['mode']}" for r in records if r.get("mode"))
    event_records = [r for r in records if r.get("event_type") != "NONE"]
    with_actors = sum(1 for r in event_records if r.get("actors"))
    modal = [r for r in records if r.get("event_type") in schema.modes]
    with_mode = sum(1 for r in modal if r["mode"])
    sentences_with_stance = sum(1 for r in records if any(s["stance"] != "NONE" for s in r.get("stance", [])))
    openings = Counter(opening(r["text"]) for r in records)
    shared_opening = sum(c for c in openings.values() if c > 1)
    return {
        "sentences": len(records),
        "event_types": dict(sorted(by_type.items())),
        "modes": dict(sorted(modes.items())),
        "roles": dict(sorted(roles.items())),
        "actor_types": dict(sorted(actor_types.items())),
        "stances": dict(sorted(stances.items())),
        "countries": len(countries),
        "event_sentences_with_actors": with_actors / max(1, len(event_records)),
        "modal_sentences_with_mode": with_mode / max(1, len(modal)),
        "sentences_with_stance": sentences_with_stance / max(1, len(records)),
        "sentences_sharing_opening": shared_opening / max(1, len(records)),
    }


def duplicate_openings(records: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in records:
        groups[opening(r["text"])].append(r.get("source", "?"))
    return {k: v for k, v in groups.items() if len(v) > 1}


def stratified_split(records: list[dict[str, Any]], seed: int, dev: float, test: float
                     ) -> dict[str, list[dict[str, Any]]]:
    """Split per event type with a fixed seed so each split keeps the label distribution."""
    rng = random.Random(seed)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_type[r.get("event_type", "")].append(r)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
    for label in sorted(by_type):
        group = sorted(by_type[label], key=lambda r: r["source"])
        rng.shuffle(group)
        n_test = round(len(group) * test)
        n_dev = round(len(group) * dev)
        splits["test"].extend(group[:n_test])
        splits["dev"].extend(group[n_test : n_test + n_dev])
        splits["train"].extend(group[n_test + n_dev :])
    for part in splits.values():
        rng.shuffle(part)
    return splits


def block_split(records: list[dict[str, Any]], seed: int, dev: float, test: float
                ) -> dict[str, list[dict[str, Any]]]:
    """Like `stratified_split`, but whole blocks (a sentence and its minimal-pair variants) go to one
    split, stratified by the event type of each block's first sentence: no variant is trained on
    while its twin is tested."""
    blocks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        blocks[r["block"]].append(r)
    heads = [{"event_type": group[0].get("event_type", ""), "source": key} for key, group in sorted(blocks.items())]
    chosen = stratified_split(heads, seed, dev, test)
    return {name: [r for head in part for r in blocks[head["source"]]] for name, part in chosen.items()}


def load_authoring_dir(directory: Path, schema: Schema, recursive: bool = False
                       ) -> tuple[list[dict[str, Any]], list[AuthoringError]]:
    records: list[dict[str, Any]] = []
    errors: list[AuthoringError] = []
    for path in sorted(directory.rglob("*.txt") if recursive else directory.glob("*.txt")):
        recs, errs = read_authoring_file(path, schema)
        records.extend(recs)
        errors.extend(errs)
    return records, errors


def build_splits(authoring_dir: Path, schema: Schema, seed: int, dev: float, test: float
                 ) -> tuple[dict[str, list[dict[str, Any]]], list[AuthoringError]]:
    """Round 1 (`authoring_dir/*.txt`) split by sentence as it always was, so its test split stays the
    one earlier figures were measured on; each later round (`authoring_dir/round2/*.txt`, `round3/`, ...)
    split by block on its own, so adding a round leaves the earlier rounds' splits as they were.
    Each split lists round 1 first, then the rounds in order."""
    first, errors = load_authoring_dir(authoring_dir, schema)
    splits = stratified_split(first, seed, dev, test)
    for round_dir in sorted(p for p in authoring_dir.glob(ROUND_DIRS) if p.is_dir()):
        records, more = load_authoring_dir(round_dir, schema)
        errors.extend(more)
        if records:
            for name, part in block_split(records, seed, dev, test).items():
                splits[name].extend(part)
    return splits, errors


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for r in records:
            handle.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _print_report(records: list[dict[str, Any]], errors: list[AuthoringError], schema: Schema) -> None:
    for err in errors:
        print(f"ERROR {err}")
    stats = corpus_statistics(records, schema)
    print(json.dumps(stats, indent=1))
    for key, sources in sorted(duplicate_openings(records).items()):
        print(f"DUPLICATE OPENING '{key}': {', '.join(sources)}")
    print(f"{len(records)} valid lines, {len(errors)} errors")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.authoring", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate authoring files and print statistics")
    check.add_argument("files", nargs="*", type=Path)
    check.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA)
    build = sub.add_parser("build", help="convert data/authoring/*.txt into train/dev/test JSONL")
    build.add_argument("--authoring-dir", type=Path, default=DEFAULT_AUTHORING_DIR)
    build.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    build.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA)
    build.add_argument("--seed", type=int, default=13)
    build.add_argument("--dev", type=float, default=0.15)
    build.add_argument("--test", type=float, default=0.15)
    args = parser.parse_args(argv)
    schema = Schema.load(args.schema)

    if args.command == "check":
        files = args.files or sorted(DEFAULT_AUTHORING_DIR.rglob("*.txt"))
        records: list[dict[str, Any]] = []
        errors: list[AuthoringError] = []
        for path in files:
            recs, errs = read_authoring_file(path, schema)
            records.extend(recs)
            errors.extend(errs)
        _print_report(records, errors, schema)
        return 1 if errors else 0

    splits, errors = build_splits(args.authoring_dir, schema, args.seed, args.dev, args.test)
    if errors:
        for err in errors:
            print(f"ERROR {err}", file=sys.stderr)
        print(f"refusing to build: {len(errors)} malformed lines", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        write_jsonl(args.output_dir / f"{name}.jsonl", part)
        print(f"{name}: {len(part)} sentences -> {args.output_dir / (name + '.jsonl')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
