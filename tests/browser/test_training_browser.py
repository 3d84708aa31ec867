"""In a real Chromium: an admin clicks "Retrain now" on the training page and, without reloading
it, watches the run's progress bar reach done while a real Celery worker trains."""

from __future__ import annotations

import re

import pytest

from rewardtrain.models import ModelVersion
from tests.rewardtrain.queue_helpers import (  # noqa: F401 - fixtures
    broker,
    seed_labeled_project,
    start_worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_clicks_retrain_and_watches_the_progress_bar_reach_done(
    browser,
    live_server,
    project,
    labeler,
    staff,
    tmp_path,
    start_worker,  # noqa: F811
):
    from playwright.sync_api import expect

    seed_labeled_project(
        project,
        labeler,
        tmp_path / "tiny-bert",
        per_split={"train": 24, "validation": 4, "test": 4},
    )
    worker = start_worker()
    page = browser.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.slug}/training/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/projects/{project.slug}/training/")
    expect(page.locator("#versions")).to_contain_text("No model version yet")
    # Set on this document: still there at the end only if the page never reloaded.
    page.evaluate("window.sameDocument = true")

    expect(page.locator("#runs")).to_contain_text("No run yet")
    page.click("#retrain-now")
    expect(page.locator("#run-message")).to_contain_text("queued")
    expect(page.locator("#run-panel")).to_be_visible()
    # "Recent runs" lists the run while it is queued or running, not only once it ended.
    run_id = page.locator("#run-id").inner_text()
    expect(page.locator(f'#runs tr[data-run="{run_id}"] .badge')).to_have_text(
        re.compile("Queued|Running")
    )
    try:
        expect(page.locator("#run-percent")).to_have_text("done", timeout=120_000)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.output()}") from exc

    assert page.locator("#run-progress").evaluate("el => el.value") == 100
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    expect(page.locator("#loss-curve polyline")).to_have_count(1)
    expect(page.locator("#run-outcome")).to_contain_text("Version 1 was promoted")
    # The version table was swapped in from the server, with v1 active.
    expect(page.locator('#versions tr[data-version="1"].active')).to_be_visible()
    expect(page.locator("#versions .metrics-chart")).to_have_count(1)
    assert page.evaluate("window.sameDocument") is True
    assert ModelVersion.objects.get().is_active
