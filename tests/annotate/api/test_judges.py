"""The judges API's answers without a worker (the queue's side is in
tests/annotate/test_judging_e2e.py): staff only, bad input named with a 400, judges listed and
added, a job accepted with its URL, cancelled and resumed."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotate.models import Judge, JudgingJob
from annotate.services.judges import judge_add
from tests.factories import ProjectFactory, make_pair

pytestmark = pytest.mark.django_db
JUDGES = "/api/projects/demo/judges/"
JOBS = "/api/projects/demo/judging/jobs/"


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def judge(project):
    return judge_add(project=project, name="a", base_url="http://127.0.0.1:9/v1", model="m")


def test_only_staff_see_or_ask_judges(project, labeler):
    client = APIClient()
    client.force_authenticate(labeler)
    assert client.get(JUDGES).status_code == 403
    assert client.post(JOBS, {"judge": "a"}, format="json").status_code == 403


def test_judges_are_listed_and_added(api, project, judge):
    rubric = "{prompt}\n1) {response_1}\n2) {response_2}\n"
    added = api.post(
        JUDGES,
        {"name": "b", "base_url": "http://vllm:8000/v1", "model": "qwen", "rubric": rubric,
         "temperature": 0, "max_tokens": 256, "concurrency": 8},
        format="json",
    )  # fmt: skip
    assert added.status_code == 201, added.content
    assert added.json()["username"] == "judge:demo:b"
    assert Judge.objects.get(name="b").rubric == rubric
    listed = api.get(JUDGES).json()
    assert [(j["name"], j["concurrency"], j["temperature"]) for j in listed] == [
        ("a", 4, None),
        ("b", 8, 0.0),
    ]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"rubric": "Which is better?"}, "the rubric must contain {prompt}, {response_1} and"),
        ({"rubric": "{prompt} {response_1}"}, "it lacks {response_2}"),
        ({"base_url": "vllm:8000"}, "base_url must be an http:// or https:// URL"),
        ({"name": "a"}, "the project already has a judge named 'a'"),
        ({"name": "not a slug"}, "name"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_tokens": 2**70}, "max_tokens"),
    ],
)
def test_a_bad_judge_is_named_and_not_added(api, project, judge, body, named):
    answer = api.post(
        JUDGES, {"name": "b", "base_url": "http://h/v1", "model": "m", **body}, format="json"
    )
    assert answer.status_code == 400, answer.content
    assert named in answer.json()["detail"]
    assert Judge.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"judge": "zzz"}, "no judge named zzz in demo (it has: a)"),
        ({"judge": "a", "limit": 0}, "limit"),
        ({"judge": "a", "limit": -3}, "limit"),
        ({"judge": "a", "limit": "many"}, "limit"),
        ({"judge": "a", "limit": 2**70}, "limit"),
        ({"judge": ""}, "judge"),
        ({}, "judge"),
    ],
)
def test_bad_job_input_is_named_and_makes_no_job(api, project, judge, body, named):
    answer = api.post(JOBS, body, format="json")
    assert answer.status_code == 400, answer.content
    assert named in answer.json()["detail"]
    assert not JudgingJob.objects.exists()


def test_a_job_is_accepted_followed_cancelled_and_resumed(api, project, judge):
    for i in range(3):
        make_pair(project, f"q{i}")
    asked = api.post(JOBS, {"judge": "a", "limit": 2, "open_only": True}, format="json")
    assert asked.status_code == 202, asked.content
    assert asked["Location"] == asked.json()["url"]
    shown = api.get(asked["Location"]).json()
    assert (shown["status"], shown["judge"], shown["total"], shown["limit"]) == (
        "queued", "a", 2, 2,
    )  # fmt: skip
    assert shown["open_only"] and shown["progress"] == 0.0
    other = ProjectFactory(slug="other")
    assert api.get(f"/api/projects/{other.slug}/judging/jobs/{shown['id']}/").status_code == 404

    cancelled = api.post(f"{JOBS}{shown['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    refused = api.post(f"{JOBS}{shown['id']}/cancel/")
    assert refused.status_code == 409 and "already cancelled" in refused.json()["detail"]
    resumed = api.post(f"{JOBS}{shown['id']}/resume/")
    assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
    assert api.post(f"{JOBS}{shown['id']}/resume/").status_code == 409
