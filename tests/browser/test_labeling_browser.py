"""The labeling page in a real headless Chromium: keyboard-only labeling on a desktop, touch-only
labeling on a phone with the judgment panel kept small, and model output that carries script
payloads runs nothing.

UPDATE_SCREENSHOTS=1 also writes the README's screenshots of the labeling page (desktop, phone).
"""

import os
import re
from pathlib import Path

import pytest

from annotate.hashing import user_message
from annotate.models import Comparison, Pair, Project, Prompt
from annotate.services.demo import REASON_TAGS
from tests.browser.chromium import phone_context, sticky_panel_share
from tests.browser.staff_pages import OVERFLOW_JS, reduce_colours
from tests.factories import ResponseFactory, make_pair

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "annotate/static/annotate/screenshot-labeling.png"
PHONE_SCREENSHOT = ROOT / "annotate/static/annotate/screenshots/labeling-390.png"
STATIC = ROOT / "annotate/static/annotate"
PASSWORD = "pw-for-tests"  # tests/factories.py

CONVERSATION = [
    {"role": "user", "content": "How do I reverse a string in Python?"},
    {"role": "assistant", "content": "Do you mean a `str`, or a list of characters?"},
    {"role": "user", "content": "A `str`. And is there an in-place way?"},
]
LEFTISH = (
    'Use slicing with a step of -1:\n\n```python\ntext = "hello"\nprint(text[::-1])  # olleh\n```'
    "\n\nStrings are **immutable**, so there is no in-place reverse: slicing makes a new string."
)
RIGHTISH = (
    'Yes: call `.reverse()` on it.\n\n```python\ns = "hello"\ns.reverse()\n```\n\n'
    "This modifies the string in place."
)
PAYLOAD = (
    "Look: <script>window.__xss = 1; document.title = 'pwned'</script>\n\n"
    '<img src="x" onerror="window.__xss = 2">\n\n'
    '[click me](javascript:window.__xss=3) and <a href="javascript:window.__xss=4">this</a>\n\n'
    '<svg onload="window.__xss=5"></svg> <iframe src="javascript:window.__xss=6"></iframe>'
)


def conversation_pair(project: Project) -> Pair:
    prompt = Prompt.objects.create(project=project, messages=CONVERSATION, content_hash="conv")
    first = ResponseFactory(prompt=prompt, text=LEFTISH)
    second = ResponseFactory(prompt=prompt, text=RIGHTISH)
    pair = Pair.objects.create(
        project=project, prompt=prompt, response_a=first, response_b=second, priority=10
    )
    Project.objects.filter(pk=project.pk).update(pair_count=project.pairs.count())
    return pair


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_url(f"{base_url}/")


def shown_pair(page) -> tuple[int, int, int]:
    """(pair id, left response id, right response id) as the page displays them."""
    page.wait_for_selector("#work:not([hidden])[data-pair-id]")
    return (
        int(page.get_attribute("#work", "data-pair-id")),
        int(page.get_attribute("#response-left", "data-response-id")),
        int(page.get_attribute("#response-right", "data-response-id")),
    )


def wait_for_change(page, pair_id: int) -> None:
    page.wait_for_function(
        "id => document.getElementById('work').dataset.pairId !== String(id)"
        " || !document.getElementById('done').hidden",
        arg=pair_id,
    )


def test_a_labeler_labels_three_pairs_with_the_keyboard(browser, live_server, project, labeler):
    Project.objects.filter(pk=project.pk).update(
        ask_strength=True, reason_tags=["more accurate", "clearer"]
    )
    conversation_pair(project)
    make_pair(project, "Name a prime number.", a="**7** is prime.", b="9 is prime.", priority=5)
    make_pair(project, "Capital of Australia?", a="Canberra.", b="Sydney.", priority=1)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")

    # Each step: the keys pressed, and the expected choice relative to the screen.
    steps = [(["1", "w"], "left"), (["2", "q"], "right"), (["3"], "tie")]
    seen = []
    for i, (keys, side) in enumerate(steps):
        pair_id, left_id, right_id = shown_pair(page)
        for key in keys:
            page.keyboard.press(key)
        if i == 0:
            # The conversation is shown turn by turn, and code blocks as code.
            assert page.locator(".turn").count() == 3
            assert page.locator("#response-left pre code").count() == 1
            # A desktop shows the whole panel at once: nothing folded, no "More" button.
            assert page.is_visible(".strengths") and page.is_visible("#comment")
            assert page.is_visible("#skip") and not page.is_visible("#more")
            page.screenshot(path=str(Path(os.environ.get("TMPDIR", "/tmp")) / "label.png"))
            if os.environ.get("UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(SCREENSHOT))
        page.keyboard.press("Enter")
        wait_for_change(page, pair_id)
        seen.append((pair_id, left_id, right_id, side))

    page.wait_for_selector("#done:not([hidden])")
    stored = {c.pair_id: c for c in Comparison.objects.filter(labeler=labeler)}
    assert len(stored) == 3
    for pair_id, left_id, right_id, side in seen:
        c = stored[pair_id]
        pair = Pair.objects.get(pk=pair_id)
        # The recorded left side is the response the page showed on the left.
        assert c.left == ("a" if left_id == pair.response_a_id else "b")
        assert {left_id, right_id} == {pair.response_a_id, pair.response_b_id}
        if side == "tie":
            assert (c.choice, c.strength) == ("tie", None)
        else:
            preferred = left_id if side == "left" else right_id
            assert c.choice == ("a" if preferred == pair.response_a_id else "b")
        assert c.time_spent_ms is not None and c.time_spent_ms >= 0
    strengths = [stored[p].strength for p, *_ in seen]
    assert strengths == [2, 1, None]
    page.close()


def stored(pair_id: int, labeler, shown_left_id: int) -> tuple[Comparison, str]:
    """The stored judgment of a pair, and which response it prefers as the page showed them."""
    c = Comparison.objects.get(pair_id=pair_id, labeler=labeler)
    pair = Pair.objects.get(pk=pair_id)
    left_is_a = shown_left_id == pair.response_a_id
    assert c.left == ("a" if left_is_a else "b")
    side = {"a": "left" if left_is_a else "right", "b": "right" if left_is_a else "left"}
    return c, side.get(c.choice, c.choice)


def test_a_labeler_judges_by_touch_on_a_phone_and_the_text_keeps_the_screen(
    browser, live_server, project, labeler
):
    # The demo project's scale: four choices, four strengths, five reason tags.
    Project.objects.filter(pk=project.pk).update(ask_strength=True, reason_tags=REASON_TAGS)
    conversation_pair(project)
    make_pair(project, "Name a prime number.", a="**7** is prime.", b="9 is prime.", priority=5)
    context = phone_context(browser)
    page = context.new_page()
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")
    pair_id, left_id, _ = shown_pair(page)

    # Before a choice the panel is one compact row: the choices and "More".
    assert sticky_panel_share(page) <= 0.30
    assert page.is_visible("#more") and page.is_visible(".choice[data-choice=both_bad]")
    for folded in (".strengths", ".reasons", "#comment", "#skip", "#submit"):
        assert not page.is_visible(folded), folded
    assert page.evaluate(OVERFLOW_JS)["wide"] == []
    page.screenshot(path=str(Path(os.environ.get("TMPDIR", "/tmp")) / "label-390.png"))
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.screenshot(path=str(PHONE_SCREENSHOT))
        reduce_colours(PHONE_SCREENSHOT)

    # "More" opens the rest in place, and closes it again.
    page.tap("#more")
    for shown in (".strengths", ".reasons", "#comment", "#skip"):
        assert page.is_visible(shown), shown
    assert sticky_panel_share(page) <= 0.50
    assert page.evaluate(OVERFLOW_JS)["wide"] == []
    page.tap("#more")
    assert not page.is_visible(".reasons")

    # A decisive choice owes a strength: the details open by themselves, Submit appears.
    page.tap(".choice[data-choice=left]")
    assert page.is_visible(".strengths") and page.is_visible("#submit")
    assert sticky_panel_share(page) <= 0.50
    page.tap(".strength[data-level='3']")
    page.tap(".reason[data-reason='clearer']")
    page.tap("#comment")
    page.keyboard.insert_text("The right one calls .reverse() on a str.")  # the on-screen keys
    page.tap("#submit")
    wait_for_change(page, pair_id)
    c, side = stored(pair_id, labeler, left_id)
    assert (side, c.strength, c.reasons) == ("left", 3, ["clearer"])
    assert c.comment == "The right one calls .reverse() on a str."

    # The next pair starts folded again, and every shortcut still works at this width.
    pair_id, left_id, _ = shown_pair(page)
    assert sticky_panel_share(page) <= 0.30 and not page.is_visible(".strengths")
    for key in ("2", "q", "Enter"):
        page.keyboard.press(key)
    page.wait_for_selector("#done:not([hidden])")
    c, side = stored(pair_id, labeler, left_id)
    assert (side, c.strength) == ("right", 1)
    context.close()


def test_only_the_shared_panel_sticks_to_the_bottom():
    """A labeling page added later (rankings, ratings, chat) gets the phone rule by using
    panel.css's .sticky-panel: no other stylesheet sticks a panel to the window's bottom (a
    table header stuck to the top is another matter)."""
    bottom_sticky = re.compile(r"\{[^}]*position\s*:\s*sticky[^}]*\bbottom\s*:[^}]*\}")
    assert bottom_sticky.search((STATIC / "panel.css").read_text(encoding="utf-8"))
    for sheet in STATIC.glob("*.css"):
        if sheet.name != "panel.css":
            assert not bottom_sticky.search(sheet.read_text(encoding="utf-8")), sheet.name


def test_script_in_model_output_never_runs(browser, live_server, project, labeler):
    prompt = Prompt.objects.create(
        project=project, messages=user_message("Show HTML. " + PAYLOAD), content_hash="xss"
    )
    first = ResponseFactory(prompt=prompt, text=PAYLOAD)
    second = ResponseFactory(prompt=prompt, text="Plain answer with <b>bold</b> tags as text.")
    Pair.objects.create(project=project, prompt=prompt, response_a=first, response_b=second)

    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")
    shown_pair(page)
    title = page.title()

    # The payload is on screen as text ...
    assert "<script>" in page.inner_text("#work")
    assert "onerror" in page.inner_text("#work")
    # ... and nothing of it became live markup.
    for selector in (
        "script",
        "img",
        "svg",
        "iframe",
        "[onerror]",
        "[onload]",
        "a[href^='javascript']",
    ):
        assert page.locator(f"#work {selector}").count() == 0, selector
    # Follow every link the responses contain: none runs code.
    for link in page.locator("#work a").all():
        href = link.get_attribute("href") or ""
        assert href.startswith(("http:", "https:", "mailto:")), href
    page.keyboard.press("1")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.title() == title and "pwned" not in title
    assert dialogs == []
    page.close()


@pytest.mark.parametrize("shot", [SCREENSHOT, PHONE_SCREENSHOT], ids=["desktop", "phone"])
def test_screenshot_is_committed_and_small(shot):
    if not shot.exists():
        pytest.skip("Run the browser tests with UPDATE_SCREENSHOTS=1 to write the screenshot.")
    assert shot.stat().st_size < 300_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
