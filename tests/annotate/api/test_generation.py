"""The generation API's refusals and answers without a worker (the queue's side is in
tests/annotate/test_generation_e2e.py): staff only, bad input named, a job's progress."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotate.models import GenerationJob
from annotate.services.generation import generator_create
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


def _url(slug: str = "demo") -> str:
    return f"/api/projects/{slug}/generation/jobs/"


def test_only_staff_ask_for_generation(project, labeler):
    client = APIClient()
    client.force_authenticate(labeler)
    assert client.post(_url(), {"generators": ["a"]}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"generators": ["zzz"], "prompts": ["hi"]}, "no generator named zzz in demo"),
        ({"generators": ["a"], "prompts": ["hi"], "samples": 0}, "samples"),
        ({"generators": ["a"], "prompts": ["hi"], "samples": 2**70}, "samples"),
        ({"generators": ["a"], "prompts": [""]}, "item 1: prompt is empty"),
        ({"generators": ["a"]}, "give prompts, or from_project"),
        ({"generators": ["a"], "from_project": True}, "demo has no prompts yet"),
        ({"generators": []}, "generators"),
    ],
)
def test_bad_input_is_named_and_makes_no_job(api, project, body, named):
    generator_create(project=project, name="a", base_url="http://127.0.0.1:9/v1", model="m")
    answer = api.post(_url(), body, format="json")
    assert answer.status_code == 400, answer.content
    assert named in answer.json()["detail"]
    assert not GenerationJob.objects.exists()


def test_a_job_is_accepted_and_shown_only_in_its_project(api, project):
    generator_create(project=project, name="a", base_url="http://127.0.0.1:9/v1", model="m")
    asked = api.post(_url(), {"generators": ["a"], "prompts": ["hi", "yo"]}, format="json")
    assert asked.status_code == 202
    shown = api.get(asked["Location"]).json()
    assert (shown["status"], shown["total"], shown["generators"]) == ("queued", 2, ["a"])
    other = ProjectFactory(slug="other")
    assert api.get(f"{_url(other.slug)}{shown['id']}/").status_code == 404
    assert api.post(f"{_url()}{shown['id']}/resume/").status_code == 409
    assert api.post(f"{_url()}{shown['id']}/cancel/").json()["status"] == "cancelled"
