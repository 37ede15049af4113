"""Actor countries from a hand-written gazetteer (`model/gazetteer.json`).

The gazetteer maps ISO 3166-1 alpha-3 codes to names, demonyms, capitals, seats of government and
short forms. A span resolves to the country of the first name found in it, reading left to right,
with these rules:

- A hyphenated sponsor modifier names who backs the actor, not the actor's own country:
  "Iran-linked Iraqi militias" -> IRQ, "Russian-backed separatists" -> empty (the sponsor is
  skipped and nothing else names a country).
- "X-led coalition" / "X-led forces" is a multinational body: empty.
- When the span names no country, the nearest modifiers outside it are read: a possessive just
  before it ("Nigeria's police" -> NGA) or "in/of/from PLACE" just after it ("police in Lagos" ->
  NGA).
- Unresolved stays empty.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

GAZETTEER_FILE = Path(__file__).with_name("gazetteer.json")
SPONSOR_SUFFIXES = ("linked", "backed", "led", "allied", "aligned", "supported", "sponsored", "funded",
                    "armed", "trained", "affiliated", "controlled", "run", "based", "bound", "made", "built")
MULTINATIONAL_HEADS = ("coalition", "alliance", "bloc", "consortium", "mission", "task force")
_WORD = re.compile(r"[A-Za-z][A-Za-z.'\u2019-]*")


@lru_cache(maxsize=1)
def _table() -> tuple[dict[tuple[str, ...], str], int]:
    """Name (lower-cased word tuple) -> ISO code, and the longest name length in words."""
    raw: dict[str, list[str]] = json.loads(GAZETTEER_FILE.read_text(encoding="utf-8"))
    table: dict[tuple[str, ...], str] = {}
    for code, names in raw.items():
        if code.startswith("_"):
            continue
        for name in names:
            table[tuple(_words(name))] = code
    return table, max(len(k) for k in table)


def _words(text: str) -> list[str]:
    return [w.lower().replace("\u2019", "'").rstrip(".'") if not w.lower().endswith("u.s.") else "u.s."
            for w in _WORD.findall(text)]


def _split_hyphens(words: list[str]) -> list[tuple[str, bool]]:
    """Word pieces, each flagged when it names a sponsor (the "Iran" of "Iran-linked")."""
    table, _ = _table()
    pieces: list[tuple[str, bool]] = []
    for word in words:
        parts = [p for p in word.split("-") if p]
        if len(parts) > 1 and parts[-1] in SPONSOR_SUFFIXES:
            pieces.extend((p, True) for p in parts[:-1])
            pieces.append((parts[-1], False))
        elif len(parts) > 1 and (word,) not in table:
            pieces.extend((p, False) for p in parts)
        else:
            pieces.append((word, False))
    return pieces


def lookup(text: str) -> str:
    """ISO code of the first country named in `text` by the span rules, or ''."""
    words = _words(text)
    lowered = text.lower()
    if any(f"-led {head}" in lowered for head in MULTINATIONAL_HEADS) or any(
            lowered.rstrip().endswith(head) and "-led" in lowered for head in MULTINATIONAL_HEADS):
        return ""
    table, longest = _table()
    pieces = _split_hyphens(words)
    index = 0
    while index < len(pieces):
        for size in range(min(longest, len(pieces) - index), 0, -1):
            window = pieces[index : index + size]
            key = tuple(p for p, _ in window)
            if key in table:
                if any(sponsor for _, sponsor in window):
                    index += size - 1
                    break
                return table[key]
        index += 1
    return ""


def resolve_country(sentence: str, start: int, end: int) -> str:
    """Country of the actor at sentence[start:end], looking at its nearest modifiers if needed."""
    code = lookup(sentence[start:end])
    if code or _is_multinational(sentence[start:end]):
        return code
    before = sentence[max(0, start - 40) : start]
    possessive = re.search(r"([A-Z][\w.-]*(?: [A-Z][\w.-]*)*)['\u2019]s\s*$", before)
    if possessive:
        code = lookup(possessive.group(1))
        if code:
            return code
    after = sentence[end : end + 60]
    place = re.match(r"\s+(?:in|of|from)\s+(?:the\s+)?([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3})", after)
    if place:
        return lookup(place.group(1))
    return ""


def _is_multinational(span: str) -> bool:
    lowered = span.lower()
    return "-led" in lowered and any(head in lowered for head in MULTINATIONAL_HEADS)
