"""The actor-country gazetteer: the table and the span and modifier rules of `model.gazetteer`."""

from __future__ import annotations

import json
import re

import pytest

from eventcoder.model import gazetteer
from eventcoder.model.gazetteer import lookup, resolve_country

UN_MEMBERS = """
AFG ALB DZA AND AGO ATG ARG ARM AUS AUT AZE BHS BHR BGD BRB BLR BEL BLZ BEN BTN BOL BIH BWA BRA BRN BGR BFA BDI CPV KHM
CMR CAN CAF TCD CHL CHN COL COM COG COD CRI CIV HRV CUB CYP CZE DNK DJI DMA DOM ECU EGY SLV GNQ ERI EST SWZ ETH FJI FIN
FRA GAB GMB GEO DEU GHA GRC GRD GTM GIN GNB GUY HTI HND HUN ISL IND IDN IRN IRQ IRL ISR ITA JAM JPN JOR KAZ KEN KIR PRK
KOR KWT KGZ LAO LVA LBN LSO LBR LBY LIE LTU LUX MDG MWI MYS MDV MLI MLT MHL MRT MUS MEX FSM MDA MCO MNG MNE MAR MOZ MMR
NAM NRU NPL NLD NZL NIC NER NGA MKD NOR OMN PAK PLW PAN PNG PRY PER PHL POL PRT QAT ROU RUS RWA KNA LCA VCT WSM SMR STP
SAU SEN SRB SYC SLE SGP SVK SVN SLB SOM ZAF SSD ESP LKA SDN SUR SWE CHE SYR TJK TZA THA TLS TGO TON TTO TUN TUR TKM TUV
UGA UKR ARE GBR USA URY UZB VUT VEN VNM YEM ZMB ZWE
""".split()
EXTRA = ["TWN", "XKX", "PSE", "ESH", "HKG", "NCL", "GRL"]


def _raw_table() -> dict[str, list[str]]:
    return json.loads(gazetteer.GAZETTEER_FILE.read_text(encoding="utf-8"))


# --- the table ---------------------------------------------------------------------------------------

def test_table_covers_every_un_member_and_the_listed_territories() -> None:
    table = _raw_table()
    assert len(UN_MEMBERS) == 193
    missing = [code for code in UN_MEMBERS + EXTRA if not table.get(code)]
    assert missing == []
    assert "_comment" in table and any("XKX" in line for line in table["_comment"])


def test_table_codes_are_alpha3_and_names_unique() -> None:
    table = _raw_table()
    for code, names in table.items():
        if code.startswith("_"):
            continue
        assert re.fullmatch(r"[A-Z]{3}", code), code
        assert names and all(isinstance(n, str) and n.strip() == n and n for n in names), code
        assert len(names) == len(set(names)), code
    gazetteer._table.cache_clear()
    table_index, longest = gazetteer._table()  # raises if a name is listed under two countries
    assert longest >= 4 and len(table_index) > 1000


@pytest.mark.parametrize("code, name", [
    ("USA", "White House"), ("USA", "Pentagon"), ("RUS", "Kremlin"), ("GBR", "Downing Street"), ("FRA", "Elysee"),
    ("FRA", "Quai d'Orsay"), ("CHN", "Zhongnanhai"), ("KOR", "Blue House"), ("LBN", "Hezbollah"), ("YEM", "Houthis"),
    ("PSE", "Hamas"), ("AFG", "Taliban"), ("SOM", "al-Shabaab"), ("NGA", "Boko Haram"), ("COD", "M23"),
    ("COL", "FARC"), ("COL", "ELN"), ("IRQ", "Kataib Hezbollah"), ("SDN", "RSF"), ("TUR", "PKK"), ("UGA", "ADF"),
    ("RWA", "FDLR"), ("MLI", "JNIM"), ("XKX", "Kosovo"), ("ESH", "Western Sahara"), ("HKG", "Hong Kong"),
    ("NCL", "New Caledonia"), ("GRL", "Greenland"), ("TWN", "Taipei"),
])
def test_required_names_are_in_the_table(code: str, name: str) -> None:
    assert name in _raw_table()[code]
    assert lookup(name) == code


def test_shared_or_risky_names_are_left_out() -> None:
    names = {n.lower() for code, ns in _raw_table().items() if not code.startswith("_") for n in ns}
    for risky in ("san jose", "korea", "korean", "male", "victoria", "english", "split"):
        assert risky not in names, risky


# --- span rules (lookup) -----------------------------------------------------------------------------

@pytest.mark.parametrize("span, code", [
    # names, demonyms, capitals, metonyms
    ("Tehran", "IRN"),
    ("Iraqi", "IRQ"),
    ("Washington", "USA"),
    ("the Kremlin", "RUS"),
    ("Iraqi police", "IRQ"),
    ("TEHRAN", "IRN"),
    ("tehran", "IRN"),
    ("Houthi rebels", "YEM"),
    ("Zhongnanhai", "CHN"),
    ("Quai d\u2019Orsay", "FRA"),
    ("Ivorian soldiers", "CIV"),
    ("Cote d'Ivoire", "CIV"),
    ("N'Djamena", "TCD"),
    # possessives
    ("Nigeria's police", "NGA"),
    ("Nigeria\u2019s army", "NGA"),
    ("the Palestinians' negotiators", "PSE"),
    # US, U.S. and the pronoun
    ("US officials", "USA"),
    ("U.S. troops", "USA"),
    ("U.S. Navy", "USA"),
    ("the U.S.", "USA"),
    ("UK ministers", "GBR"),
    ("U.K. police", "GBR"),
    ("told us", ""),
    ("people like us", ""),
    ("Us and them", ""),
    # sponsors are skipped
    ("Iran-linked Iraqi militias", "IRQ"),
    ("Russian-backed separatists", ""),
    ("U.S.-backed forces", ""),
    ("US-backed Syrian fighters", "SYR"),
    ("Saudi-funded militia", ""),
    ("Iranian-made drones", ""),
    ("pro-Russian hackers", ""),
    ("anti-American protesters", ""),
    ("militias backed by Iran", ""),
    ("Iran\u2013backed militias", ""),
    ("Iraqi militias loyal to Tehran", "IRQ"),
    # where the actor is or who owns it is not a sponsor
    ("Singapore-based cybersecurity firm", "SGP"),
    ("Hong Kong-based shipping firms", "HKG"),
    ("Houthi-run water authorities", "YEM"),
    ("Liberian-flagged bulk carrier", "LBR"),
    ("Marshall Islands-flagged oil tanker", "MHL"),
    # multinational
    ("US-led coalition", ""),
    ("U.S.-led coalition forces", ""),
    ("Saudi-led coalition", ""),
    ("NATO-led KFOR mission", ""),
    ("Kenyan-led security mission", ""),
    ("Kurdish-led SDF", "SYR"),
    ("the UN", ""),
    ("UN", ""),
    ("the U.N. Security Council", ""),
    ("NATO", ""),
    ("EU", ""),
    ("EU foreign ministers", ""),
    ("European Union", ""),
    ("African Union", ""),
    ("UN mission in South Sudan", ""),
    ("Western diplomats", ""),
    ("Inter-American Development Bank", ""),
    ("Afghan women employed by the UN", "AFG"),
    ("Brussels", ""),
    ("Brussels assize court", "BEL"),
    ("the pope", "VAT"),
    ("Coptic Pope Tawadros II", "EGY"),
    # two countries: the first one
    ("Israeli and Egyptian officials", "ISR"),
    ("Chinese embassy in Bangui", "CHN"),
    # longest match
    ("Kataib Hezbollah", "IRQ"),
    ("Hezbollah", "LBN"),
    ("Kataib Hezbollah fighters in Lebanon", "IRQ"),
    ("Guinea", "GIN"),
    ("Papua New Guinea", "PNG"),
    ("Papua New Guinean police", "PNG"),
    ("Equatorial Guinea", "GNQ"),
    ("Guinea-Bissau", "GNB"),
    ("Guinea Bissau army", "GNB"),
    ("South Sudan", "SSD"),
    ("South Sudanese troops", "SSD"),
    ("Sudanese army", "SDN"),
    ("Niger", "NER"),
    ("Nigerien junta", "NER"),
    ("Niger Delta militants", "NGA"),
    ("Democratic Republic of Congo", "COD"),
    ("Republic of Congo", "COG"),
    ("People's Republic of China", "CHN"),
    ("Northern Ireland police", "GBR"),
    ("Irish police", "IRL"),
    ("Greek Cypriot leader", "CYP"),
    ("Turkish Cypriot authorities", "CYP"),
    ("Tehrik-e-Taliban Pakistan", "PAK"),
    ("Afghan Taliban", "AFG"),
    ("Port-au-Prince residents", "HTI"),
    ("New Mexico police", "USA"),
    ("Inner Mongolia", "CHN"),
    # common words must be capitalised, acronyms must be capitals
    ("Turkey", "TUR"),
    ("turkey farmers", ""),
    ("Polish farmers", "POL"),
    ("workers polish the floor", ""),
    ("china plates", ""),
    ("the car", ""),
    ("CAR rebels", "CAF"),
    # longer place names
    ("Protesters in San Francisco de Macoris", ""),
    ("Mocimboa da Praia", ""),
    # nothing
    ("gunmen", ""),
    ("", ""),
])
def test_lookup(span: str, code: str) -> None:
    assert lookup(span) == code


# --- modifier rules (resolve_country) ----------------------------------------------------------------

def _resolve(sentence: str, span: str) -> str:
    start = sentence.index(span)
    return resolve_country(sentence, start, start + len(span))


@pytest.mark.parametrize("sentence, span, code", [
    ("Police in Lagos fired tear gas at protesters.", "Police", "NGA"),
    ("Nigeria's police arrested 12 people.", "police", "NGA"),
    ("Nigeria\u2019s federal police arrested 12 people.", "federal police", "NGA"),
    ("Japanese motorists were told to stay home.", "motorists", "JPN"),
    ("Gunmen in northern Syria killed four people.", "Gunmen", "SYR"),
    ("Officials in the Republic of Congo denied the report.", "Officials", "COG"),
    ("Residents of Mokwa, Nigeria fled the floods.", "Residents", "NGA"),
    ("Lecturers at Kenya's public universities went on strike.", "Lecturers", "KEN"),
    ("Militiamen from Zawiya handed over weapons.", "Militiamen", "LBY"),
    ("Police in Lagos, Nigeria detained him.", "Police", "NGA"),
    # a list of countries: multinational
    ("The military rulers of Mali, Burkina Faso and Niger postponed the vote.", "military rulers", ""),
    ("Chiefs of staff of South Korea, Japan and the United States met in Seoul.", "Chiefs of staff", ""),
    # sponsors are skipped, then modifiers read
    ("Russian-backed separatists in Donetsk shelled the town.", "Russian-backed separatists", "UKR"),
    ("Russian-backed separatists shelled the town.", "Russian-backed separatists", ""),
    ("Iran-backed militias in Iraq fired rockets.", "Iran-backed militias", "IRQ"),
    # multinational spans never read modifiers
    ("The US-led coalition in Iraq struck a convoy.", "US-led coalition", ""),
    ("The UN mission in Mali said 12 died.", "UN mission", ""),
    ("Diplomats in Brussels said the veto could be dropped.", "Diplomats", ""),
    ("The EU's envoy met rebels.", "envoy", ""),
    # the span's own country wins over modifiers
    ("China's embassy in Bamako said three workers were kidnapped.", "China's embassy in Bamako", "CHN"),
    ("Israeli police in Lagos", "Israeli police", "ISR"),
    ("Gaza-bound aid boat crew", "Gaza-bound aid boat crew", ""),
    ("Fake videos were pushed by accounts linked to Burkina Faso's junta.", "junta", "BFA"),
    ("Pro-Russian hackers knocked six Danish ministries offline.", "hackers", ""),
    # punctuation breaks the link to a name before the span; "on"/"for" are not the actor's place
    ("After talks with Israel, officials said the deal was close.", "officials", ""),
    ("The UN special envoy for Sudan resigned.", "UN special envoy for Sudan", ""),
    ("Sanctions were imposed on dozens of companies for Iran.", "dozens of companies", ""),
    # pronoun "us" and nothing to read
    ("They told us the army had left.", "us", ""),
    ("Gunmen killed four people.", "Gunmen", ""),
])
def test_resolve_country(sentence: str, span: str, code: str) -> None:
    assert _resolve(sentence, span) == code


def test_resolve_country_uses_offsets_not_first_occurrence() -> None:
    sentence = "Kenyan police and police in Uganda clashed at the border."
    second = sentence.index("police", 10)
    assert resolve_country(sentence, 0, len("Kenyan police")) == "KEN"
    assert resolve_country(sentence, second, second + len("police")) == "UGA"
