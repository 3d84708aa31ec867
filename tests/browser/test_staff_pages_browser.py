"""Every staff page on the loop demo's data (judged pairs, a flagged labeler, a trained and
promoted model, the queue ranked by it), in a real Chromium at a desktop and a phone width:
nothing overflows the viewport sideways, each page's main figures are there, and the export
form's checkboxes have their labels beside them.

Screenshots go to a temporary folder, or to SCREENSHOT_DIR when set (the README's come from
`python -m tests.browser.staff_pages` against `make run`, see that module).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annotate.services.demo import loop_demo_seed
from annotate.services.quality import quality_compute
from rewardtrain.models import ModelVersion, TrainingRun
from rewardtrain.services import rescore_pairs, run_create, run_execute
from tests.browser.staff_pages import WIDTHS, log_in, staff_pages, visit
from tests.factories import StaffFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(backbone):
    """The loop demo as `make run` leaves it once the worker is done, with a tiny backbone
    in place of MiniLM: seeded, trained, promoted, pairs rescored (and new ones paired), the
    quality figures computed."""
    staff = StaffFactory(username="admin")
    project, _ = loop_demo_seed(staff=staff, members=[staff])
    run, _ = run_create(
        project=project,
        trigger=TrainingRun.Trigger.COMMAND,
        config_overrides={"backbone": backbone, "device": "cpu", "max_length": 32, "epochs": 1},
    )
    run_execute(run_id=run.pk)
    assert ModelVersion.objects.get(project=project).is_active
    rescore_pairs(project=project)
    # The worker's computation of the quality figures, queued by the first look at them.
    quality_compute(project_id=project.pk)
    return project, staff


def test_every_staff_page_fits_both_widths_and_shows_its_figures(
    browser, live_server, demo, tmp_path
):
    project, staff = demo
    out = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    quinn = project.memberships.get(user__username="quinn").user
    page = browser.new_page()
    log_in(page, live_server.url, staff.username, "pw-for-tests")

    problems = []
    for width in WIDTHS:
        for staff_page in staff_pages(slug=project.slug, labeler_id=quinn.pk):
            report = visit(page, live_server.url, staff_page, width, out)
            assert report["screenshot"].stat().st_size > 0
            where = f"{staff_page.name} at {width}px"
            if report["scrollWidth"] > report["innerWidth"]:
                problems.append(f"{where}: page is {report['scrollWidth']}px wide")
            problems += [f"{where}: wider than the viewport: {w}" for w in report["wide"]]
            problems += [f"{where}: missing {m}" for m in report["missing"]]
            if width >= 1280:
                # On a desktop every table fits without scrolling inside its box.
                problems += [f"{where}: table scrolls: {s}" for s in report["scrolled"]]
    assert not problems, "\n".join(problems)

    # The export form as the labeling page lays out its controls: each checkbox's label
    # beside it on one line, selects as wide as their options.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/projects/{project.slug}/export/")
    checks = page.locator("label.check").all()
    assert len(checks) == 4  # drop ties, include excluded, real usernames, no AI judges
    for label in checks:
        box = label.locator("input[type=checkbox]").bounding_box()
        text = label.bounding_box()
        assert text["height"] < 2 * box["height"] + 12, label.inner_text()
        assert box["x"] - text["x"] < 4 and box["width"] < 40, label.inner_text()
    for select in page.locator("form.export-form select").all():
        assert select.bounding_box()["width"] < 300
    # Counts that moved for a reason say it.
    counts = page.locator("#pair-counts").inner_text()
    assert "added by model pairing" in counts and "with all their judgments" in counts
