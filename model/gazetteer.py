"""Actor countries from a hand-written gazetteer (`model/gazetteer.json`).

The gazetteer maps ISO 3166-1 alpha-3 codes (plus XKX, the user-assigned code for Kosovo) to names:
official and short names, demonyms, capitals and seats of government, metonyms ("Kremlin",
"Zhongnanhai") and armed or political groups whose country is unambiguous ("Houthis" -> YEM).
Multinational bodies and adjectives ("UN", "NATO", "EU", "African Union", "European", "Western")
are listed here in `MULTINATIONAL_NAMES`: they name no single country.

Matching
- Whole words, case-insensitive ("TEHRAN" and "Tehran" both give IRN), with two exceptions:
  acronyms of up to three characters ("US", "UN", "EU", "AU", "CAR", "WHO") match only in capitals,
  so the pronoun in "told us" names no country; and names that are also ordinary lowercase English
  words (`CAPITALIZED_ONLY`: "China", "Turkey", "Polish", "Chad", "Guinea"...) must be capitalised.
- Dotted abbreviations read as acronyms ("U.S." = "US", "U.N." = "UN"); a possessive "'s" is
  dropped ("Nigeria's" = "Nigeria"); a hyphen (or en dash) separates words ("U.S.-backed" = "US" + "backed").
- Reading left to right, the longest name starting at each word wins: "Kataib Hezbollah" -> IRQ
  (not "Hezbollah" -> LBN), "Papua New Guinea" -> PNG and "Guinea-Bissau" -> GNB (not "Guinea"),
  "South Sudanese" -> SSD, "Northern Ireland" -> GBR, "Inner Mongolia" -> CHN.
- A name followed by "de/da/del/do/dos/das/di/du" and a capitalised word is the start of a longer
  place name and names no country: "San Francisco de Macoris", "Mocimboa da Praia".
- "Brussels" on its own, or as the place of an actor ("diplomats in Brussels"), stands for the EU
  (multinational); as the first word of a longer span ("Brussels assize court") it is BEL.

Span rules (`lookup`): the span's country is the first country named in it, with these rules:
- A sponsor modifier names who backs, leads, arms or inspires the actor, not the actor's own
  country, and is skipped: a name joined by a hyphen to one of `SPONSOR_SUFFIXES` ("Iran-linked",
  "Russian-backed", "US-led", "Saudi-funded", "Iranian-made"), a name after "pro-"/"anti-"
  ("pro-Russian"), and a name after "backed by", "loyal to", "allied with"... So "Iran-linked Iraqi
  militias" -> IRQ and "Russian-backed separatists" -> empty. Suffixes that say where the actor
  is or who owns it are not sponsors: "Singapore-based firm" -> SGP, "Houthi-run ministry" -> YEM,
  "Liberian-flagged tanker" -> LBR. An occupier or controller is skipped too, since a place has
  the country it lies in: "Russian-occupied Kherson" -> UKR, "Israeli-occupied West Bank" -> PSE.
- "X-led coalition" (or alliance, bloc, mission, force, operation, peacekeepers...), with X a
  country or a multinational body, is multinational: empty, whatever else the span names.
  ("Kurdish-led SDF" is not: "Kurdish" is no country, and "SDF" -> SYR.)
- A multinational name read before any country ends the reading with empty: "the UN", "NATO",
  "EU foreign ministers", "UN mission in South Sudan". After a country it does not matter
  ("Afghan women employed by the UN" -> AFG).
- A span naming two or more countries takes the first one: "Israeli and Egyptian officials" -> ISR.

Modifier rules (`resolve_country`): when the span names no country (nothing at all, or only
sponsors), its nearest modifiers outside it are read, in this order:
- a name just before it, as a possessive ("Nigeria's police" -> NGA; "the EU's envoy" -> empty) or
  separated by a single space ("Japanese" + span "motorists" -> JPN); punctuation in between breaks
  the link;
- "in/of/from/at/across/inside PLACE" just after it, optionally through "the", a compass word
  ("in northern Syria") or "based/operating/stationed in": "police in Lagos" -> NGA. PLACE must
  start with a gazetteer name, or be "Town, COUNTRY" ("residents of Mokwa, Nigeria" -> NGA). When
  the place is a list naming several countries ("rulers of Mali, Burkina Faso and Niger") the
  actor is multinational: empty.
A span that is multinational never reads its modifiers. Unresolved stays empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

GAZETTEER_FILE = Path(__file__).with_name("gazetteer.json")

# "<NAME>-<suffix>": the name is a sponsor/patron/origin of the thing, not the actor's own country.
SPONSOR_SUFFIXES = frozenset((
    "linked", "backed", "led", "allied", "aligned", "supported", "sponsored", "funded", "financed", "armed",
    "trained", "equipped", "affiliated", "inspired", "friendly", "leaning", "oriented", "influenced",
    "brokered", "mediated", "controlled", "held", "occupied", "bound", "made", "built", "supplied",
    "speaking", "majority", "dominated", "style",
))
# "<prefix>-<NAME>": pro-Russian, anti-American, non-Iraqi.
SPONSOR_PREFIXES = frozenset(("pro", "anti", "non"))
# "<phrase> <NAME>" inside a span: "militias backed by Iran", "fighters loyal to Tehran".
SPONSOR_PHRASES = frozenset((
    ("backed", "by"), ("funded", "by"), ("financed", "by"), ("supported", "by"), ("sponsored", "by"),
    ("armed", "by"), ("trained", "by"), ("equipped", "by"), ("led", "by"), ("linked", "to"), ("loyal", "to"),
    ("allied", "to"), ("allied", "with"), ("aligned", "with"), ("affiliated", "with"), ("close", "to"),
    ("tied", "to"),
))
MULTINATIONAL_HEADS = frozenset((
    "coalition", "alliance", "bloc", "consortium", "mission", "task force", "force", "forces", "operation",
    "peacekeepers", "peacekeeping",
))
# Bodies and adjectives that stand for several countries: they resolve to empty.
MULTINATIONAL_NAMES = (
    "UN", "U.N.", "United Nations", "UN Security Council", "Security Council", "UNSC", "EU", "E.U.",
    "European Union", "European Commission", "European Parliament", "European Council", "Council of Europe",
    "European Central Bank", "ECB", "European", "Europeans", "Frontex", "Europol", "NATO", "North Atlantic Treaty Organization",
    "North Atlantic Treaty Organisation", "KFOR", "EUFOR", "African Union", "AU", "ECOWAS",
    "Economic Community of West African States", "SADC", "Southern African Development Community", "EAC",
    "East African Community", "IGAD", "ECCAS", "African", "Africans", "West African", "West Africans",
    "East African", "East Africans", "Southern African", "North African", "Sub-Saharan", "Sahel", "Alliance of Sahel States",
    "ASEAN", "Asian", "Asians", "OAS", "Organization of American States", "Organisation of American States",
    "Inter-American", "Latin America", "Latin American", "Latin Americans", "South America", "South American",
    "Central America", "Central American", "Central Americans", "North America", "North American",
    "Mercosur", "CARICOM", "Caribbean Community", "Pacific Islands Forum", "Arab League", "League of Arab States",
    "Arab states", "Arab countries", "Arab governments", "Gulf states", "Gulf Arab", "Gulf Arab states",
    "Gulf Cooperation Council", "GCC", "Middle East", "Middle Eastern", "OSCE", "OIC",
    "Organisation of Islamic Cooperation", "Organization of Islamic Cooperation", "Western", "Westerners",
    "the West", "Nordic", "Baltic states", "Balkan", "G7", "G20", "BRICS", "OPEC", "Quartet",
    "ICC", "International Criminal Court", "ICJ", "International Court of Justice", "World Bank", "IMF",
    "International Monetary Fund", "WTO", "World Trade Organization", "WHO", "World Health Organization",
    "World Health Organisation", "UNICEF", "UNHCR", "UNRWA", "WFP", "World Food Programme", "OCHA", "UNESCO",
    "UNDP", "UNFPA", "UNIFIL", "MONUSCO", "UNMISS", "MINUSCA", "MINUSMA", "UNSMIL", "IAEA",
    "International Atomic Energy Agency", "IOM", "International Organization for Migration", "FAO", "ILO",
    "Interpol", "ICRC", "International Committee of the Red Cross", "African Development Bank",
    "Asian Development Bank", "Warsaw Pact",
)
# Seats that news uses for a multinational body: "Brussels" on its own, or as the place of an actor
# ("diplomats in Brussels"), stands for the EU; as the first word of a longer span ("Brussels assize
# court") it is the Belgian city.
MULTINATIONAL_SEATS = frozenset((("brussels",),))
# "San Francisco de Macoris", "Mocimboa da Praia": a name followed by one of these and a capitalised word
# is part of a longer place name and names no country.
_NAME_CONNECTORS = frozenset(("de", "da", "do", "del", "dos", "das", "di", "du"))
# Names that are also ordinary lowercase words: matched only when capitalised.
CAPITALIZED_ONLY = frozenset((
    "china", "turkey", "polish", "poles", "chad", "guinea", "dutch", "panama", "swede", "swedes", "western",
    "nice", "georgia", "jordan", "sofia", "kingston", "wellington", "santiago", "victoria", "lima", "bali", "fano",
    "amal", "sucre", "porto", "split", "praia", "planalto", "duma", "west",
))
_TOKEN = re.compile(r"((?:[^\W\d_]\.){2,})|([^\W_]+(?:['\u2019][^\W_]+)*)")
_LEADS = ("led",)


@dataclass(frozen=True)
class _Token:
    norm: str  # lower-cased, dots of acronyms and a possessive 's removed
    raw: str  # as written, dots of acronyms removed
    start: int
    end: int
    joined: bool  # joined to the previous token by a hyphen
    possessive: bool


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    previous_end = None
    for match in _TOKEN.finditer(text):
        raw = (match.group(1) or "").replace(".", "") or match.group(2)
        raw = raw.replace("\u2019", "'")
        possessive = len(raw) > 2 and raw[-2:].lower() == "'s"
        if possessive:
            raw = raw[:-2]
        joined = previous_end is not None and text[previous_end : match.start()] in ("-", "\u2010", "\u2011", "\u2013")
        tokens.append(_Token(raw.lower(), raw, match.start(), match.end(), joined, possessive))
        previous_end = match.end()
    return tokens


@dataclass(frozen=True)
class _Entry:
    code: str  # '' for a multinational name
    raws: tuple[str, ...]


@lru_cache(maxsize=1)
def _table() -> tuple[dict[tuple[str, ...], _Entry], int]:
    """Name (tuple of normalised words) -> entry, and the longest name length in words."""
    raw: dict[str, list[str]] = json.loads(GAZETTEER_FILE.read_text(encoding="utf-8"))
    table: dict[tuple[str, ...], _Entry] = {}
    pairs = [(code, name) for code, names in raw.items() if not code.startswith("_") for name in names]
    pairs += [("", name) for name in MULTINATIONAL_NAMES]
    for code, name in pairs:
        tokens = _tokens(name)
        key = tuple(t.norm for t in tokens)
        if not key:
            raise ValueError(f"gazetteer name {name!r} has no words")
        previous = table.get(key)
        if previous is not None and previous.code != code:
            raise ValueError(f"gazetteer name {name!r} is listed under {previous.code or 'multinational'} and {code}")
        if previous is None:
            table[key] = _Entry(code, tuple(t.raw for t in tokens))
    return table, max(len(k) for k in table)


def _case_ok(name_raw: str, text_raw: str) -> bool:
    if len(name_raw) <= 3 and name_raw.isupper():
        return text_raw == name_raw
    if name_raw.lower() in CAPITALIZED_ONLY:
        return text_raw[:1].isupper()
    return True


def _match_at(tokens: list[_Token], index: int) -> tuple[int, _Entry] | None:
    """The longest name starting at tokens[index]: (its length in tokens, its entry)."""
    table, longest = _table()
    for size in range(min(longest, len(tokens) - index), 0, -1):
        window = tokens[index : index + size]
        entry = table.get(tuple(t.norm for t in window))
        if entry and all(_case_ok(n, t.raw) for n, t in zip(entry.raws, window)):
            after = tokens[index + size : index + size + 2]
            if len(after) == 2 and after[0].norm in _NAME_CONNECTORS and after[1].raw[:1].isupper():
                return None
            return size, entry
    return None


def _is_seat(tokens: list[_Token], index: int, size: int) -> bool:
    return tuple(t.norm for t in tokens[index : index + size]) in MULTINATIONAL_SEATS


def _is_sponsor(tokens: list[_Token], index: int, size: int, phrases: bool = True) -> bool:
    after = index + size
    if after < len(tokens) and tokens[after].joined and tokens[after].norm in SPONSOR_SUFFIXES:
        return True
    if index > 0 and tokens[index].joined and tokens[index - 1].norm in SPONSOR_PREFIXES:
        return True
    return phrases and index > 1 and (tokens[index - 2].norm, tokens[index - 1].norm) in SPONSOR_PHRASES


def _leads(tokens: list[_Token], index: int, size: int) -> bool:
    """The name at tokens[index:index+size] is the leader in "X-led" or "led by X"."""
    after = index + size
    if after < len(tokens) and tokens[after].joined and tokens[after].norm in _LEADS:
        return True
    return index > 1 and (tokens[index - 2].norm, tokens[index - 1].norm) == ("led", "by")


def _has_multinational_head(tokens: list[_Token]) -> bool:
    words = [t.norm for t in tokens]
    text = " ".join(words)
    return any(head in words if " " not in head else f" {head} " in f" {text} " for head in MULTINATIONAL_HEADS)


def _scan(tokens: list[_Token]) -> tuple[str, str]:
    """(code, kind) of a span: kind is 'country', 'multinational', 'sponsor' (only sponsors) or 'none'."""
    kind = "none"
    index = 0
    while index < len(tokens):
        found = _match_at(tokens, index)
        if found is None:
            index += 1
            continue
        size, entry = found
        if _leads(tokens, index, size) and _has_multinational_head(tokens):
            return "", "multinational"
        if _is_sponsor(tokens, index, size):
            kind = "sponsor"
            index += size
            continue
        if not entry.code or (_is_seat(tokens, index, size) and not (index == 0 and size < len(tokens))):
            return "", "multinational"
        return entry.code, "country"
    return "", kind


def lookup(text: str) -> str:
    """ISO code of the country `text` names by the span rules, or ''."""
    return _scan(_tokens(text))[0]


_COMPASS = (r"(?:north|south|east|west|northern|southern|eastern|western|central|north-?east|north-?west|"
            r"south-?east|south-?west|northeastern|northwestern|southeastern|southwestern|"
            r"north-eastern|north-western|south-eastern|south-western|occupied|neighbouring|neighboring|"
            r"rural|coastal|war-torn)")
_AFTER = re.compile(
    r"\s*,?\s+(?:(?:based|stationed|deployed|operating|living|working|detained|held)\s+)?"
    r"(?:in|of|from|at|across|inside)\s+(?:the\s+)?(?:" + _COMPASS + r"\s+)?(?=\S)")
_LIST_LINK = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|\s(?:and|or)\s+)(?:the\s+)?(?=\S)")
_TOWN_COMMA = re.compile(r"(?:[A-Z][\w'\u2019.-]*\s+){0,3}?[A-Z][\w'\u2019.-]*,\s+(?:the\s+)?(?=[A-Z])")


def _name_before(sentence: str, start: int) -> str | None:
    """Code of a name written just before the span ('' if multinational), or None.

    The name must end at the span's edge, either as a possessive ("Nigeria's police") or separated from the
    span by one space only ("Japanese motorists" when only "motorists" is the span); a comma or other
    punctuation between them breaks the link ("accusations against Israel, officials said").
    """
    before = sentence[max(0, start - 80) : start]
    if not re.search(r"(?:['\u2019]s|s['\u2019]|[^\W_]) $|['\u2019]s\s+$|s['\u2019]\s+$", before):
        return None
    tokens = _tokens(before)
    if not tokens:
        return None
    _, longest = _table()
    for size in range(min(longest, len(tokens)), 0, -1):
        first = len(tokens) - size
        found = _match_at(tokens, first)
        if found and found[0] == size:
            # Only the name's own hyphenated sponsor marks count here ("pro-Russian hackers"): a phrase such
            # as "accounts linked to Burkina Faso's junta" is about the actor, not its sponsor.
            if _is_sponsor(tokens, first, size, phrases=False):
                return None
            return "" if _is_seat(tokens, first, size) else found[1].code
    return None


def _name_at(text: str) -> tuple[str, int] | None:
    """(code, end offset) of the gazetteer name that `text` starts with, or None."""
    tokens = _tokens(text)
    if not tokens or tokens[0].start != 0:
        return None
    found = _match_at(tokens, 0)
    if found is None:
        return None
    size, entry = found
    if _is_sponsor(tokens, 0, size):
        return None
    return ("" if _is_seat(tokens, 0, size) else entry.code), tokens[size - 1].end


def _place_after(sentence: str, end: int) -> str:
    """Code of the "in/of/from PLACE" modifier just after the span, or ''."""
    after = sentence[end : end + 160]
    link = _AFTER.match(after)
    if not link:
        return ""
    rest = after[link.end() :]
    named = _name_at(rest)
    if named is None:
        town = _TOWN_COMMA.match(rest)
        if town is None:
            return ""
        rest = rest[town.end() :]
        named = _name_at(rest)
        if named is None:
            return ""
    code, offset = named
    if not code:
        return ""
    # A list of places naming more than one country: the actor is multinational.
    rest = rest[offset:]
    while (link := _LIST_LINK.match(rest)) is not None:
        following = _name_at(rest[link.end() :])
        if following is None:
            break
        other, offset = following
        if other and other != code:
            return ""
        rest = rest[link.end() + offset :]
    return code


def resolve_country(sentence: str, start: int, end: int) -> str:
    """Country of the actor at sentence[start:end], looking at its nearest modifiers if needed."""
    code, kind = _scan(_tokens(sentence[start:end]))
    if kind in ("country", "multinational"):
        return code
    before = _name_before(sentence, start)
    if before is not None:
        return before
    return _place_after(sentence, end)
