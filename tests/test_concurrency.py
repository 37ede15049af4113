"""Concurrent use returns exactly what one user gets: sentence splitting, the Predictor from threads,
and the page under simultaneous requests. Every answer is compared with the one-user answer."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from eventcoder.model.sentences import split_sentences
from helpers import free_port

ARTICLES = [
    "BAGHDAD, Jan. 4 -- Kataib Hezbollah warned it would strike U.S. forces. Talks resumed in Doha. "
    "Maj. Gen. John Smith denied it.",
    "Police fired tear gas at students in Nairobi on Tuesday. The government condemned the march. "
    "Three people were detained.",
    "Germany condemned Belarus over the forced landing. The EU imposed sanctions on Minsk. "
    "Lukashenko called the move illegal. Talks were cancelled.",
    "Troops withdrew from the border town. Aid convoys reached Goma. Rebels shelled the airport. "
    "The UN urged restraint.",
] * 3


def test_split_sentences_from_many_threads_matches_one_thread() -> None:
    expected = [split_sentences(a) for a in ARTICLES]
    jobs = ARTICLES * 25
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(split_sentences, jobs))
    assert results == expected * 25


def test_predictor_from_threads_matches_one_thread(trained_model: Path) -> None:
    from eventcoder.model.predictor import Predictor

    predictor = Predictor.from_pretrained(trained_model, backend="onnx")
    expected = [[p.to_dict() for p in predictor.predict([a], targets=["Germany"])] for a in ARTICLES]

    def code(article: str) -> list[dict[str, Any]]:
        return [p.to_dict() for p in predictor.predict([article], targets=["Germany"])]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(code, ARTICLES * 4))
    assert results == expected * 4


@pytest.mark.integration
def test_page_answers_concurrent_users_as_it_answers_one(trained_model: Path, tmp_path: Path) -> None:
    from gradio_client import Client

    from eventcoder.model.predictor import Predictor
    from eventcoder.serve.app import ModelHolder, build_demo

    demo = build_demo(ModelHolder(Predictor.from_pretrained(trained_model, backend="onnx"), trained_model),
                      tmp_path / "corrections.jsonl")
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, quiet=True)
    url = f"http://127.0.0.1:{port}/"

    def table(article: str) -> Any:
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        result = client.predict(article, "Germany", api_name="/analyse")
        return json.dumps(result[1], sort_keys=True), result[-1]

    try:
        alone = [table(a) for a in ARTICLES[:4]]
        with ThreadPoolExecutor(max_workers=8) as pool:
            together = list(pool.map(table, ARTICLES[:4] * 4))
    finally:
        demo.close()
    assert all("sentences coded" in status for _, status in alone), alone
    assert together == alone * 4
