"""Sentence splitting with pysbd, keeping each sentence's character offsets in its document."""

from __future__ import annotations

from functools import lru_cache

import pysbd


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def split_sentences(text: str) -> list[tuple[int, int, str]]:
    """(start, end, sentence) for every non-blank sentence; offsets index into `text`.

    pysbd's spans include trailing whitespace; it is trimmed so `text[start:end] == sentence`.
    """
    if not text.strip():
        return []
    result: list[tuple[int, int, str]] = []
    for span in _segmenter().segment(text):
        start, end = span.start, span.end
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            result.append((start, end, text[start:end]))
    return result
