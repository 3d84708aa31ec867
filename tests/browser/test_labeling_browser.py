"""The labeling page in a real headless Chromium: keyboard-only labeling, and model output that
carries script payloads runs nothing.

UPDATE_SCREENSHOTS=1 also writes the README's screenshot of the labeling page.
"""

import os
from pathlib import Path

import pytest

from annotate.hashing import user_message
from annotate.models import Comparison, Pair, Project, Prompt
from tests.factories import ResponseFactory, make_pair

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = (
    Path(__file__).resolve().parents[2] / "annotate/static/annotate/screenshot-labeling.png"
)
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


def test_screenshot_is_committed_and_small():
    if not SCREENSHOT.exists():
        pytest.skip("Run the browser tests with UPDATE_SCREENSHOTS=1 to write the screenshot.")
    assert SCREENSHOT.stat().st_size < 300_000
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
