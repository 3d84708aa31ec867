"""The judges page: staff add a judge (its account marked as an AI judge), start a judging job
(its queue side is in test_judging_e2e.py) and cancel it; bad input is named on the page;
labelers are refused. The review page shows a pair's judge readings, as text, beside the
people's votes; the admin lists and adds judges."""

from __future__ import annotations

import pytest

from annotate.models import Judge, JudgeVerdict, JudgingJob
from annotate.services.judges import judge_add
from annotate.services.judging_run import judge_comparison_make
from tests.factories import ComparisonFactory, ReviewItemFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db
URL = "/projects/demo/judges/"


def _add(project, name="a"):
    return judge_add(project=project, name=name, base_url="http://127.0.0.1:9/v1", model="m")


def test_labelers_are_refused(client, labeler, project):
    client.force_login(labeler)
    assert client.get(URL).status_code == 403
    assert client.post(f"{URL}jobs/", {"judge": "a"}).status_code == 403


def test_staff_add_a_judge_and_see_it_marked(staff_client, project):
    page = staff_client.get(URL).content.decode()
    assert "No judge yet" in page and 'id="default-rubric"' in page
    assert "Pick the more helpful, honest and harmless response." in page  # the instructions
    added = staff_client.post(
        URL,
        {"name": "qwen", "base_url": "http://vllm:8000/v1", "model": "qwen2.5-7b",
         "api_key_env": "", "concurrency": "2", "rubric": ""},
    )  # fmt: skip
    assert added.status_code == 302, added.content.decode()[-2000:]
    page = staff_client.get(URL).content.decode()
    assert "judge:demo:qwen" in page and '<span class="badge ai-judge"' in page
    assert "Judge pairs" in page
    assert Judge.objects.get().user.username == "judge:demo:qwen"


def test_the_page_names_bad_input(staff_client, project):
    _add(project)
    bad = staff_client.post(
        URL,
        {"name": "b", "base_url": "http://h/v1", "model": "m", "concurrency": "1",
         "rubric": "Which is better, {response_1} or {response_2}?"},
    )  # fmt: skip
    assert bad.status_code == 400 and "it lacks {prompt}" in bad.content.decode()
    taken = staff_client.post(
        URL, {"name": "a", "base_url": "http://h/v1", "model": "m", "concurrency": "1"}
    )
    assert taken.status_code == 400 and "already has a judge named" in taken.content.decode()
    unknown = staff_client.post(f"{URL}jobs/", {"judge": "zzz"})
    assert unknown.status_code == 400 and "no judge named zzz in demo" in unknown.content.decode()
    limit = staff_client.post(f"{URL}jobs/", {"judge": "a", "limit": "0"})
    assert limit.status_code == 400 and "limit" in limit.content.decode()
    assert not JudgingJob.objects.exists() and Judge.objects.count() == 1


def test_staff_start_and_cancel_a_job(staff_client, project):
    _add(project)
    for i in range(3):
        make_pair(project, f"q{i}")
    started = staff_client.post(f"{URL}jobs/", {"judge": "a", "limit": "2", "open_only": "on"})
    assert started.status_code == 302
    job = JudgingJob.objects.get()
    assert (job.status, job.total, job.limit, job.open_only) == ("queued", 2, 2, True)
    assert "0/2" in staff_client.get(URL).content.decode()
    assert staff_client.post(f"{URL}jobs/{job.pk}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert staff_client.post(f"{URL}jobs/{job.pk}/cancel/").status_code == 409
    assert staff_client.post(f"{URL}jobs/{job.pk}/explode/").status_code == 404


def test_the_review_page_shows_the_judges_readings_as_text(staff_client, project):
    judge = _add(project, "critic")
    pair = make_pair(project, "q", a="one", b="two")
    ReviewItemFactory(pair=pair)
    ComparisonFactory(pair=pair, labeler=UserFactory(username="dana"), choice="a")
    for order, choice, rationale in (("ab", "a", "<b>A</b> is right"), ("ba", "", "")):
        JudgeVerdict.objects.create(
            judge=judge, pair=pair, order=order, choice=choice, rationale=rationale,
            raw="garbage <script>x</script>" if not choice else f"{rationale}\nVerdict: 1",
            parse_error="" if choice else "its last line is not a verdict line",
            attempts=1 if choice else 2,
        )  # fmt: skip
    judge_comparison_make(judge=judge, pair_id=pair.pk)
    page = staff_client.get("/projects/demo/review/").content.decode()
    assert "2 AI judge readings" in page
    assert "&lt;b&gt;A&lt;/b&gt; is right" in page and "<b>A</b>" not in page
    assert "garbage &lt;script&gt;" in page and "<script>x" not in page
    assert "A first" in page and "B first" in page and "unparsable" in page
    # The judge's own comparison among the votes, marked.
    assert "judge:demo:critic" in page and "AI judge, both orders combined" in page


def test_the_admin_lists_and_adds_judges(staff_client, project):
    judge = _add(project)
    make_pair(project, "q")
    JudgingJob.objects.create(project=project, judge=judge)
    for model in ("judge", "judgingjob", "judgeverdict", "membership", "comparison"):
        assert staff_client.get(f"/admin/annotate/{model}/").status_code == 200
    assert "AI judge" in staff_client.get("/admin/annotate/membership/").content.decode()
    refused = staff_client.post(
        "/admin/annotate/judge/add/",
        {"project": project.pk, "name": "b", "base_url": "http://h/v1", "model": "m",
         "concurrency": "1", "rubric": "no placeholders"},
    )  # fmt: skip
    assert refused.status_code == 200 and "it lacks {prompt}" in refused.content.decode()
    added = staff_client.post(
        "/admin/annotate/judge/add/",
        {"project": project.pk, "name": "b", "base_url": "http://h/v1", "model": "m",
         "concurrency": "1", "rubric": ""},
    )  # fmt: skip
    assert added.status_code == 302, added.content.decode()[-2000:]
    assert Judge.objects.get(name="b").user.username == "judge:demo:b"
    assert staff_client.get(f"/admin/annotate/judge/{judge.pk}/change/").status_code == 200
