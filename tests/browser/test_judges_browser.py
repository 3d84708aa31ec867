"""The judges page in a real Chromium, at a desktop and a phone width, after a judge has read
pairs through a real `transformers serve`: nothing overflows sideways, the judge's account is
marked as an AI judge, its job's progress is shown, and "Judge pairs" queues a job. The review
page shows the judge's readings beside the people's votes."""

from __future__ import annotations

import pytest

from annotate.models import JudgingJob
from annotate.services.judges import judge_add, judging_job_create
from annotate.services.judging_run import judging_job_execute
from tests.browser.staff_pages import WIDTHS, StaffPage, log_in, visit
from tests.factories import ComparisonFactory, ReviewItemFactory, UserFactory, make_pair

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_judges_page_fits_both_widths_and_starts_a_job(
    browser, live_server, project, staff, judge_server, tmp_path
):
    judge_add(
        project=project,
        name="a-long-named-tiny-judge",
        base_url=judge_server.base_url,
        model=judge_server.model,
        max_tokens=6,
        rubric="A long custom rubric line that must wrap on a phone rather than widen the "
        "page: {prompt} / {response_1} / {response_2}",
    )
    pairs = [make_pair(project, f"w{i}", a=f"w{i + 1} good", b=f"w{i + 2} bad") for i in range(3)]
    ReviewItemFactory(pair=pairs[0])
    ComparisonFactory(pair=pairs[0], labeler=UserFactory(username="dana"), choice="a")
    job = judging_job_create(
        project=project, judge="a-long-named-tiny-judge", limit=2, enqueue=False
    )
    assert judging_job_execute(job_id=job.pk).status == "succeeded"

    page = browser.new_page()
    log_in(page, live_server.url, staff.username, "pw-for-tests")
    judges = StaffPage(
        "judges",
        f"/projects/{project.slug}/judges/",
        ("table.judges .badge.ai-judge", f"#judging-job-{job.pk}", "form.judge-form"),
    )
    review = StaffPage("review", f"/projects/{project.slug}/review/", ("table.judge-verdicts",))
    problems = []
    for width in WIDTHS:
        for staff_page in (judges, review):
            report = visit(page, live_server.url, staff_page, width, tmp_path)
            where = f"{staff_page.name} at {width}px"
            if report["scrollWidth"] > report["innerWidth"]:
                problems.append(f"{where}: page is {report['scrollWidth']}px wide")
            problems += [f"{where}: wider than the viewport: {w}" for w in report["wide"]]
            problems += [f"{where}: missing {m}" for m in report["missing"]]
    assert not problems, "\n".join(problems)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/projects/{project.slug}/judges/")
    assert "2/2" in page.locator(f"#judging-job-{job.pk}").inner_text()
    row = page.locator("#judge-a-long-named-tiny-judge")
    row.locator("input[name=open_only]").check()
    row.get_by_role("button", name="Judge pairs").click()
    page.wait_for_load_state("load")
    queued = JudgingJob.objects.exclude(pk=job.pk).get()
    assert (queued.status, queued.total, queued.open_only) == ("queued", 1, True)
    assert "0/1" in page.locator(f"#judging-job-{queued.pk}").inner_text()

    page.goto(f"{live_server.url}/projects/{project.slug}/review/")
    verdicts = page.locator("table.judge-verdicts").inner_text()
    assert "A first" in verdicts and "B first" in verdicts and "B better" in verdicts
