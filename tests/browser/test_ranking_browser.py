"""The ranking and rating page in a real headless Chromium: a full ranking with ties by the
keyboard alone, ratings by the keyboard alone, both by touch on a phone with nothing wider than
the window, and model output that carries script payloads shown as text.

UPDATE_SCREENSHOTS=1 also writes the README's screenshots of the page at 1280 and 390 px.
"""

import os
from pathlib import Path

import pytest

from annotate.hashing import user_message
from annotate.models import DEFAULT_ASPECTS, Project, Prompt, Ranking, Rating, ResponseSet
from annotate.services.rankings import response_sets_create
from tests.browser.chromium import phone_context, sticky_panel_share
from tests.browser.staff_pages import OVERFLOW_JS, reduce_colours
from tests.browser.test_labeling_browser import PAYLOAD, log_in
from tests.factories import ResponseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "annotate/static/annotate/screenshots"
TMP = Path(os.environ.get("TMPDIR", "/tmp"))
ASPECTS = [a["name"] for a in DEFAULT_ASPECTS]

QUESTION = "Explain in one or two sentences why the sky is blue."
ANSWERS = [
    "Sunlight scatters off the molecules of the air, and blue light, with its shorter "
    "wavelength, scatters far more than red (Rayleigh scattering), so blue reaches your eyes "
    "from every direction of the sky.",
    "Because it reflects the ocean.",
    "The air scatters short wavelengths more strongly than long ones. Violet scatters most, "
    "but sunlight holds less of it and our eyes are less sensitive to it, so we see blue.",
    "",
]


def set_project(project: Project, task_kind: str, texts: list[str], question: str = QUESTION):
    Project.objects.filter(pk=project.pk).update(task_kind=task_kind, ranking_size=len(texts))
    project.refresh_from_db()
    prompt = Prompt.objects.create(
        project=project, messages=user_message(question), content_hash=question[:60]
    )
    for i, text in enumerate(texts):
        ResponseFactory(prompt=prompt, text=text, content_hash=f"{question[:20]}{i}")
    response_sets_create(project=project)
    return project


def shown_set(page) -> tuple[int, list[int]]:
    """(set id, response ids in the order the page shows them)."""
    page.wait_for_selector("#work:not([hidden])[data-set-id]")
    set_id = int(page.get_attribute("#work", "data-set-id"))
    ids = page.eval_on_selector_all(
        ".set-response", "els => els.map(e => Number(e.dataset.responseId))"
    )
    return set_id, ids


def wait_for_change(page, set_id: int) -> None:
    page.wait_for_function(
        "id => document.getElementById('work').dataset.setId !== String(id)"
        " || !document.getElementById('done').hidden",
        arg=set_id,
    )


def shoot(page, name: str) -> None:
    page.screenshot(path=str(TMP / name))
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.screenshot(path=str(SHOTS / name))
        reduce_colours(SHOTS / name)


def test_a_full_ranking_with_a_tie_by_keyboard_alone(browser, live_server, project, labeler):
    set_project(project, "ranking", ANSWERS)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")
    set_id, ids = shown_set(page)
    assert page.locator(".empty-response").inner_text() == "(empty response)"

    # Best first: 3, 1, 4, 2; then 2 moves up one slot and ties with 1: 3 > 1 = 2 > 4.
    for key in ("3", "1", "4", "2", "ArrowUp", "="):
        page.keyboard.press(key)
    assert page.inner_text("#ranking-line") == "Ranking: 3 > 1 = 2 > 4"
    assert page.evaluate(OVERFLOW_JS)["wide"] == []
    shoot(page, "ranking-1280.png")
    page.keyboard.press("Enter")
    wait_for_change(page, set_id)

    ranking = Ranking.objects.get(labeler=labeler)
    assert ranking.shown == ids
    assert ranking.groups == [[ids[2]], [ids[0], ids[1]], [ids[3]]]
    assert not ranking.all_bad and ranking.time_spent_ms >= 0
    page.wait_for_selector("#done:not([hidden])")
    page.close()


def test_shift_number_places_a_response_and_all_bad_by_keyboard(
    browser, live_server, project, labeler
):
    set_project(project, "ranking", ANSWERS[:3])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")
    set_id, ids = shown_set(page)
    # Enter with a partial ranking is refused on the page, saying what is owed.
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    assert "Rank every response (1 of 3 ranked)" in page.inner_text("#status")
    for key in ("1", "3", "Shift+Digit1", "b", "Enter"):
        page.keyboard.press(key)
    wait_for_change(page, set_id)
    ranking = Ranking.objects.get(labeler=labeler)
    assert ranking.groups == [[ids[2]], [ids[1]], [ids[0]]] and ranking.all_bad
    page.close()


def test_ratings_by_keyboard_alone(browser, live_server, project, labeler):
    set_project(project, "rating", ANSWERS[:2])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")
    set_id, ids = shown_set(page)
    # Response 1: 4 3 4 2 1; response 2 typed 0 0 0 0 0, then its correctness fixed to 1.
    for key in "43421" + "00000":
        page.keyboard.press(key)
    assert page.inner_text("#rate-part") == "Rated 10 of 10"
    for key in ("ArrowLeft",) * 3:
        page.keyboard.press(key)
    page.keyboard.press("1")
    assert page.evaluate(OVERFLOW_JS)["wide"] == []
    shoot(page, "rating-1280.png")
    page.keyboard.press("Enter")
    wait_for_change(page, set_id)

    stored = {(r.response_id, r.aspect): r.value for r in Rating.objects.filter(labeler=labeler)}
    assert [stored[(ids[0], a)] for a in ASPECTS] == [4, 3, 4, 2, 1]
    assert [stored[(ids[1], a)] for a in ASPECTS] == [0, 1, 0, 0, 0]
    assert {r.position for r in Rating.objects.filter(response_id=ids[1])} == {1}
    assert not Ranking.objects.exists()
    page.close()


def test_rank_and_rate_by_touch_on_a_phone(browser, live_server, project, labeler):
    set_project(project, "ranking_rating", ANSWERS[:3])
    context = phone_context(browser)
    page = context.new_page()
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")
    set_id, ids = shown_set(page)

    # The responses stack, one column, and nothing is wider than the window.
    boxes = [page.locator(f"#response-{n}").bounding_box() for n in (1, 2, 3)]
    assert len({round(b["x"]) for b in boxes}) == 1 and boxes[0]["y"] < boxes[1]["y"]
    assert page.evaluate(OVERFLOW_JS)["wide"] == []
    assert sticky_panel_share(page) <= 0.30, sticky_panel_share(page)
    shoot(page, "ranking-rating-390.png")

    for n in (1, 2, 3):
        for aspect in ASPECTS:
            page.tap(
                f"#response-{n} .aspect-row:has(.aspect-name:text-is('{aspect}')) .rate[data-value='{n}']"
            )
    page.tap(".pick[data-position='1']")
    page.tap(".pick[data-position='2']")
    page.tap(".pick[data-position='0']")
    page.tap(".rank-action[data-action='tie']")
    assert page.evaluate(OVERFLOW_JS)["wide"] == []
    page.tap("#submit")
    wait_for_change(page, set_id)

    assert Ranking.objects.get().groups == [[ids[1]], [ids[2], ids[0]]]
    values = {(r.response_id, r.value) for r in Rating.objects.all()}
    assert values == {(ids[0], 1), (ids[1], 2), (ids[2], 3)}
    assert Rating.objects.count() == 15
    assert ResponseSet.objects.get(pk=set_id).human_count == 1
    context.close()


def test_script_in_model_output_never_runs(browser, live_server, project, labeler):
    set_project(
        project, "ranking", [PAYLOAD, "Plain <b>bold</b> as text.", "Third."], "Show " + PAYLOAD
    )
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, live_server.url, labeler.username)
    page.goto(f"{live_server.url}/projects/demo/label/")
    shown_set(page)
    title = page.title()
    assert "<script>" in page.inner_text("#work") and "<b>bold</b>" in page.inner_text("#work")
    for selector in ("script", "img", "svg", "iframe", "b", "a", "[onerror]", "[onload]"):
        assert page.locator(f"#work {selector}").count() == 0, selector
    page.keyboard.press("1")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.title() == title and dialogs == []
    page.close()


@pytest.mark.parametrize("name", ["ranking-1280.png", "rating-1280.png", "ranking-rating-390.png"])
def test_screenshot_is_committed_and_small(name):
    shot = SHOTS / name
    if not shot.exists():
        pytest.skip("Run the browser tests with UPDATE_SCREENSHOTS=1 to write the screenshot.")
    assert shot.stat().st_size < 300_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
