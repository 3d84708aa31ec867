"""The chat page in a real headless Chromium against a real `transformers serve`: two turns by
keyboard alone at 1280 and at 390 px (a phone: the sticky panel keeps to its share of the
window), nothing wider than the window, the message shown as text, then staff download the HH
export and find the conversation in it.

UPDATE_SCREENSHOTS=1 also writes the chat page's screenshots (annotate/static/annotate/
screenshots/chat-1280.png and chat-390.png).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from annotate.models import Comparison, Pair, Project
from annotate.services.generation import generator_create
from tests.browser.chromium import phone_context, sticky_panel_share
from tests.browser.staff_pages import OVERFLOW_JS, log_in, reduce_colours

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "annotate/static/annotate/screenshots"
PASSWORD = "pw-for-tests"  # tests/factories.py
# The left reply's top is on screen, and at least 100 px of it (or all of it) above the panel.
REPLY_SHOWN_JS = """(() => {
  const reply = document.getElementById('reply-left').getBoundingClientRect();
  const panel = document.getElementById('judgment').getBoundingClientRect();
  return reply.top >= 0 && panel.top - reply.top >= Math.min(reply.height, 100);
})()"""
FIRST = "Say <b>hi</b> <img src=x onerror=window.__xss=1>"
SECOND = "Tell me more."


@pytest.mark.parametrize("width", [1280, 390])
def test_two_turns_by_keyboard_then_the_hh_export_holds_the_conversation(
    browser, live_server, project, labeler, staff, chat_server, settings, tmp_path, width
):
    from playwright.sync_api import expect

    Project.objects.filter(pk=project.pk).update(ask_strength=True)
    for name, temperature in (("alpha", 1.0), ("beta", 0.8)):
        generator_create(
            project=project,
            name=name,
            base_url=chat_server.base_url,
            model=chat_server.model,
            temperature=temperature,
            max_tokens=12,
        )
    phone = width == 390
    context = (
        phone_context(browser)
        if phone
        else browser.new_context(viewport={"width": 1280, "height": 900})
    )
    page = context.new_page()
    log_in(page, live_server.url, labeler.username, PASSWORD)
    page.click("a[href='/projects/demo/chat/']")  # the projects page links the chat
    page.wait_for_selector("#chat-app[data-ready]")
    if phone:
        assert sticky_panel_share(page) <= 0.30

    # Each turn: the message typed, Enter; both replies stream in; the keys of the labeling
    # page choose (a side, then a strength), Enter submits.
    for message, keys in ((FIRST, ["1", "w"]), (SECOND, ["2", "q"])):
        page.keyboard.type(message)
        page.keyboard.press("Enter")
        page.wait_for_selector("#chat-app[data-phase=choose]")
        # The panel shows the choices only: the message box waits for the next turn.
        assert page.is_visible(".choice[data-choice=left]") and page.is_visible("#choosing")
        assert not page.is_visible("#composer") and not page.is_visible("#retry-row")
        for side in ("left", "right"):
            assert page.inner_text(f"#reply-{side} .reply-text").strip()
        assert page.evaluate(OVERFLOW_JS)["wide"] == []
        for key in keys:
            page.keyboard.press(key)
        if phone:
            assert sticky_panel_share(page) <= 0.50
            # The replies are on screen above the panel, not left below it.
            assert page.evaluate(REPLY_SHOWN_JS), page.evaluate(REPLY_SHOWN_JS.replace(">=", "-"))
        if message == SECOND:
            shot = Path(os.environ.get("TMPDIR", "/tmp")) / f"chat-{width}.png"
            page.screenshot(path=str(shot))
            if os.environ.get("UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(SCREENSHOTS / f"chat-{width}.png"))
                reduce_colours(SCREENSHOTS / f"chat-{width}.png")
        page.keyboard.press("Enter")
        page.wait_for_selector("#chat-app[data-phase=compose]")
        expect(page.locator("#session-count")).to_contain_text("judged")
        assert page.is_visible("#message") and not page.is_visible("#choosing")

    # The conversation on screen: both messages, each followed by the reply that joined it;
    # the labeler's markup shown as text, and nothing of it live.
    turns = page.locator("#conversation .turn")
    assert turns.count() == 4
    assert turns.nth(0).inner_text().endswith(FIRST)
    assert page.locator("#work img, #work b").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate(OVERFLOW_JS)["wide"] == []
    context.close()

    pairs = list(Pair.objects.order_by("pk"))
    assert len(pairs) == 2
    first, second = pairs
    joined = second.prompt.messages[1]["content"]
    assert first.prompt.messages == [{"role": "user", "content": FIRST}]
    assert second.prompt.messages == [
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": joined},
        {"role": "user", "content": SECOND},
    ]
    assert first.prompt.metadata["conversation"] == second.prompt.metadata["conversation"]
    assert joined in (first.response_a.text, first.response_b.text)
    assert [c.strength for c in Comparison.objects.order_by("pk")] == [2, 1]
    assert turns_text_matches(first, joined)

    # Staff download the HH export: the second turn is the whole conversation, as Anthropic's.
    settings.MEDIA_ROOT = tmp_path / "media"
    staff_page = browser.new_page(accept_downloads=True)
    log_in(staff_page, live_server.url, staff.username, PASSWORD)
    staff_page.goto(f"{live_server.url}/projects/demo/export/")
    staff_page.select_option("select[name=format]", "hh")
    with staff_page.expect_download() as download:
        staff_page.click("#export-form button[type=submit]")
    with zipfile.ZipFile(download.value.path()) as archive:
        data = next(n for n in archive.namelist() if n.endswith(".jsonl"))
        rows = [json.loads(line) for line in archive.read(data).decode().splitlines()]
    by_pair = {row["pair_id"]: row for row in rows}
    assert set(by_pair) == {first.pk, second.pk}
    head = f"\n\nHuman: {FIRST}\n\nAssistant: {joined}\n\nHuman: {SECOND}\n\nAssistant: "
    assert by_pair[second.pk]["chosen"].startswith(head)
    assert by_pair[second.pk]["rejected"].startswith(head)
    assert by_pair[first.pk]["chosen"] == f"\n\nHuman: {FIRST}\n\nAssistant: {joined}"
    staff_page.close()


def turns_text_matches(pair: Pair, joined: str) -> bool:
    """The first turn's chosen reply (the labeler pressed 1, left) is the one that joined."""
    comparison = Comparison.objects.get(pair=pair)
    chosen = pair.response_a if comparison.choice == "a" else pair.response_b
    return chosen.text == joined


def test_a_failed_reply_names_its_generator_and_retry_keeps_the_other(
    browser, live_server, project, labeler, chat_server
):
    generator_create(
        project=project,
        name="alpha",
        base_url=chat_server.base_url,
        model=chat_server.model,
        max_tokens=8,
    )
    gone = generator_create(
        project=project, name="gone", base_url="http://127.0.0.1:9/v1", model="m"
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, labeler.username, PASSWORD)
    page.goto(f"{live_server.url}/projects/demo/chat/")
    page.wait_for_selector("#chat-app[data-ready]")
    page.keyboard.type("Hello?")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat-app[data-phase=failed]")
    errors = page.locator(".side-status.error")
    assert errors.count() == 1
    assert errors.first.inner_text().startswith("generator 'gone': could not reach")
    assert page.is_visible("#retry") and not Pair.objects.exists()
    kept = page.locator(".response:not(:has(.side-status.error)) .reply-text").inner_text()

    gone.base_url, gone.model = chat_server.base_url, chat_server.model
    gone.save()
    page.keyboard.press("r")
    page.wait_for_selector("#chat-app[data-phase=choose]")
    # The reply that came the first time is kept, not asked again.
    assert kept in [page.inner_text(f"#reply-{side} .reply-text") for side in ("left", "right")]
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat-app[data-phase=compose]")
    pair = Pair.objects.get()
    assert kept in (pair.response_a.text, pair.response_b.text)
    assert Comparison.objects.get(pair=pair).choice == "tie"
    page.close()


def test_arena_names_the_models_only_after_the_vote(
    browser, live_server, project, labeler, chat_server
):
    for name in ("alpha", "beta"):
        generator_create(
            project=project,
            name=name,
            base_url=chat_server.base_url,
            model=chat_server.model,
            max_tokens=8,
        )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, labeler.username, PASSWORD)
    page.goto(f"{live_server.url}/projects/demo/chat/?mode=arena")
    page.wait_for_selector("#chat-app[data-ready]")
    for turn, message in enumerate(("Hi", "And?"), start=1):
        page.keyboard.type(message)
        page.keyboard.press("Enter")
        page.wait_for_selector("#chat-app[data-phase=choose]")
        if turn == 1:
            shown = page.inner_text("#work")
            assert "alpha" not in shown and "beta" not in shown
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        page.wait_for_selector("#chat-app[data-phase=compose]")
        names = [page.text_content(f"#reply-{side} .side-name") for side in ("left", "right")]
        assert sorted(n.split(" · ")[1].split(" ")[0] for n in names) == ["alpha", "beta"]
    # Each side keeps its own history: both messages and its own two replies.
    for side in ("left", "right"):
        assert page.locator(f"#reply-{side} .history .turn").count() == 4
    assert Pair.objects.count() == Comparison.objects.count() == 2
    page.close()
