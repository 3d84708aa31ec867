"""In a real Chromium: staff press Download on the export page. A small export is saved at
once; a large one shows that it is built in the background, follows the job's progress, and
downloads the file once the job (run here, as a worker would) has succeeded."""

from __future__ import annotations

import json
import time
import zipfile

import pytest

from annotate.models import ExportJob
from annotate.services.export_jobs import export_job_execute
from tests.annotate.export_data import judged_project
from tests.browser.staff_pages import log_in
from tests.rewardtrain.queue_helpers import broker  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_export_page_downloads_small_exports_and_follows_large_ones(
    browser,
    live_server,
    project,
    labeler,
    staff,
    settings,
    tmp_path,
    broker,  # noqa: F811 - the job's message goes to the test Redis
):
    from playwright.sync_api import expect

    judged_project(project, labeler)
    settings.MEDIA_ROOT = tmp_path / "media"
    page = browser.new_page(accept_downloads=True)
    log_in(page, live_server.url, staff.username, "pw-for-tests")
    page.goto(f"{live_server.url}/projects/{project.slug}/export/")

    with page.expect_download() as small:
        page.click("#export-form button[type=submit]")
    expect(page.locator("#export-message")).to_have_text("Downloaded.")
    with zipfile.ZipFile(small.value.path()) as archive:
        assert json.loads(archive.read("manifest.json"))["format"] == "trl"
    assert not ExportJob.objects.exists()

    settings.EXPORT_SYNC_MAX_COMPARISONS = 0
    page.select_option("select[name=format]", "raw")
    page.click("#export-form button[type=submit]")
    expect(page.locator("#export-message")).to_contain_text("in the background")
    deadline = time.monotonic() + 30
    while not (job := ExportJob.objects.first()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job is not None, "the page asked for no export job"
    with page.expect_download() as large:
        export_job_execute(job_id=job.pk)  # what the worker does
    assert large.value.suggested_filename == job.file_name
    expect(page.locator("#export-message")).to_contain_text("Ready")
    assert page.locator("#export-progress").evaluate("bar => bar.value") == 1
    with zipfile.ZipFile(large.value.path()) as archive:
        assert json.loads(archive.read("manifest.json"))["counts"]["rows"] == 10
