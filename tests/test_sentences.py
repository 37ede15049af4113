from __future__ import annotations

import pytest

from eventcoder.model.sentences import split_sentences


@pytest.mark.parametrize("text, expected", [
    ("BAGHDAD -- Kataib Hezbollah warned on Jan. 4 it would strike U.S. forces. \"We will not stop. We will win,\" "
     "a spokesman said.  Maj. Gen. John Smith denied it.",
     ["BAGHDAD -- Kataib Hezbollah warned on Jan. 4 it would strike U.S. forces.",
      "\"We will not stop. We will win,\" a spokesman said.", "Maj. Gen. John Smith denied it."]),
    ("Police fired tear gas in Nairobi on Tuesday", ["Police fired tear gas in Nairobi on Tuesday"]),
    ("  One sentence only.  ", ["One sentence only."]),
    ("Troops withdrew. Talks resumed in Doha.", ["Troops withdrew.", "Talks resumed in Doha."]),
    ("", []),
    ("   \n ", []),
])
def test_splits_keep_offsets_into_the_document(text: str, expected: list[str]) -> None:
    spans = split_sentences(text)
    assert [s for _, _, s in spans] == expected
    for start, end, sentence in spans:
        assert text[start:end] == sentence
