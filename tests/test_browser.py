"""The web page in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from eventcoder.model.predictor import Predictor
from eventcoder.serve.app import ModelHolder, build_demo
from eventcoder.serve.examples import EXAMPLES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def page_url(trained_model: Path, tmp_path: Path):
    corrections = tmp_path / "corrections.jsonl"
    holder = ModelHolder(Predictor.from_pretrained(trained_model), trained_model)
    demo = build_demo(holder, corrections)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", corrections
    finally:
        demo.close()


def test_paste_code_read_and_correct_in_chromium(page_url: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, corrections = page_url
    article = EXAMPLES[0][1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.goto(url)
            page.locator("#article textarea").fill(article)
            page.locator("#run").click()
            page.wait_for_function(
                "() => document.querySelectorAll('#sentences [role=row].virtual-row').length >= 3", timeout=60_000)
            assert page.locator("#sentences [role=row].virtual-row").count() >= 5
            assert page.locator('#sentences [data-testid="cell-0-1"]').inner_text().startswith("ERBIL")
            event_type = page.locator('#sentences [data-testid="cell-0-2"]').inner_text().strip()
            assert event_type in {"ACCUSE", "ASSAULT", "CONSULT", "NONE", "PROTEST"}
            highlighted = page.locator("#highlighted").inner_text()
            assert "Harir air base" in highlighted or "drones" in highlighted
            assert page.locator("#status").inner_text().strip().startswith(tuple("0123456789"))
            assert page.locator(".toast-body.error").count() == 0
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)

            page.locator("#corrections").get_by_text("Correct a sentence and retrain").click()
            page.locator("#save-correction").click()
            page.wait_for_function(
                "() => document.querySelector('#correction-status').innerText.includes('Saved')", timeout=30_000)
            page.screenshot(path=str(tmp_path / "corrected.png"), full_page=True)
        finally:
            browser.close()
    saved = [json.loads(line) for line in corrections.read_text().splitlines()]
    assert len(saved) == 1 and saved[0]["text"].startswith("ERBIL") and saved[0]["event_type"]
    assert (tmp_path / "page.png").stat().st_size > 10_000
