"""The generators page: staff add, edit and test a generator against a real
`transformers serve`, start a job (its queue side is in test_generation_e2e.py), cancel it;
bad input is named on the page; labelers are refused; the admin lists the new models."""

from __future__ import annotations

import pytest

from annotate.models import GenerationJob, Generator
from annotate.services.generation import generator_create

pytestmark = pytest.mark.django_db
URL = "/projects/demo/generators/"


def test_labelers_are_refused(client, labeler, project):
    client.force_login(labeler)
    assert client.get(URL).status_code == 403


def test_staff_add_test_and_edit_a_generator(staff_client, project, chat_server):
    added = staff_client.post(
        URL,
        {"name": "tiny", "base_url": chat_server.base_url, "model": chat_server.model,
         "api_key_env": "", "max_tokens": "5", "concurrency": "2"},
    )  # fmt: skip
    assert added.status_code == 302, added.content.decode()[-2000:]
    page = staff_client.get(URL).content.decode()
    assert "tiny" in page and chat_server.base_url in page

    tested = staff_client.post(f"{URL}tiny/", {"test": "w1 <b>w2</b>"})
    assert tested.status_code == 200
    body = tested.content.decode()
    assert 'id="generator-reply"' in body and "5 completion tokens" in body

    edited = staff_client.post(
        f"{URL}tiny/",
        {"name": "tiny", "base_url": chat_server.base_url, "model": "no-such-model",
         "api_key_env": "", "concurrency": "1"},
    )  # fmt: skip
    assert edited.status_code == 302
    assert Generator.objects.get(name="tiny").model == "no-such-model"
    refused = staff_client.post(f"{URL}tiny/", {"test": "w1"})
    assert "generator &#x27;tiny&#x27;" in refused.content.decode()
    assert "answered 400" in refused.content.decode()


def test_the_page_names_bad_input(staff_client, project):
    generator_create(project=project, name="a", base_url="http://127.0.0.1:9/v1", model="m")
    taken = staff_client.post(
        URL, {"name": "a", "base_url": "http://h/v1", "model": "m", "concurrency": "1"}
    )
    assert taken.status_code == 400
    assert "already has a generator named" in taken.content.decode()
    bad = staff_client.post(
        f"{URL}jobs/", {"generators": ["a"], "samples": "1", "prompts": '{"prompt": ""}'}
    )
    assert bad.status_code == 400 and "line 1: prompt is empty" in bad.content.decode()
    assert not GenerationJob.objects.exists()


def test_staff_start_and_cancel_a_job(staff_client, project):
    generator_create(project=project, name="a", base_url="http://127.0.0.1:9/v1", model="m")
    started = staff_client.post(
        f"{URL}jobs/", {"generators": ["a"], "samples": "2", "prompts": '{"prompt": "hi"}\n'}
    )
    assert started.status_code == 302
    job = GenerationJob.objects.get()
    assert (job.status, job.total) == ("queued", 2)
    assert "0/2" in staff_client.get(URL).content.decode()
    assert staff_client.post(f"{URL}jobs/{job.pk}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert staff_client.post(f"{URL}jobs/{job.pk}/cancel/").status_code == 409
    assert staff_client.post(f"{URL}jobs/{job.pk}/explode/").status_code == 404


def test_the_admin_lists_generators_and_jobs(staff_client, project):
    generator_create(project=project, name="a", base_url="http://127.0.0.1:9/v1", model="m")
    for model in ("generator", "generationjob", "generatedsample"):
        assert staff_client.get(f"/admin/annotate/{model}/").status_code == 200
