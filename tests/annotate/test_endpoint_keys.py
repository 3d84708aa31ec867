"""A wrong API key, against a real `transformers serve` that asks for one as vLLM's `--api-key`
does (the session's keyed_server, tests/annotate/keyed_serve.py): the right key generates; a
wrong or missing one fails the generation job, the test prompt, the judging job and the chat
turn with an error that names the generator (or judge) and the variable that holds the key, never
the key; nothing is stored and the labels already there are untouched."""

from __future__ import annotations

import html
import json

import pytest
from rest_framework.test import APIClient

from annotate.generation.client import EndpointError
from annotate.models import (
    Comparison,
    GeneratedSample,
    JudgeVerdict,
    Pair,
    Prompt,
    Response,
)
from annotate.services.generation import generation_job_create, generator_create, generator_test
from annotate.services.generation_run import generation_job_execute
from annotate.services.judges import judge_add, judging_job_create
from annotate.services.judging_run import judging_job_execute
from tests.annotate.keyed_serve import REFUSED
from tests.factories import ComparisonFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db

RIGHT = "PREFLOOP_TEST_RIGHT_KEY"
WRONG = "PREFLOOP_TEST_WRONG_KEY"
WRONG_KEY = "sk-wrong-0123456789abcdef"


@pytest.fixture
def keys(monkeypatch, serve_key):
    """RIGHT holds the server's key, WRONG another; both values must stay out of every error."""
    monkeypatch.setenv(RIGHT, serve_key)
    monkeypatch.setenv(WRONG, WRONG_KEY)
    return (serve_key, WRONG_KEY)


def _generator(project, server, name: str, key_env: str = ""):
    return generator_create(
        project=project,
        name=name,
        base_url=server.base_url,
        model=server.model,
        api_key_env=key_env,
        max_tokens=4,
        concurrency=2,
    )


def _generate(project, name: str, n_prompts: int = 2):
    prompts = [[{"role": "user", "content": f"w{i} w{i + 1}"}] for i in range(n_prompts)]
    job = generation_job_create(
        project=project, generators=[name], samples=2, prompts=prompts, enqueue=False
    )
    return generation_job_execute(job_id=job.pk)


def _labels(project) -> list[tuple]:
    return list(
        Comparison.objects.filter(project=project)
        .order_by("pk")
        .values_list("pk", "pair_id", "labeler_id", "choice", "left")
    )


def _refused(server, name: str, kind: str = "generator") -> str:
    url = f"{server.base_url}/chat/completions"
    # The server echoed the wrong key: the client masks it.
    return f"{kind} {name!r}: {url} refused the API key in {WRONG} (401: {REFUSED}: [the key])"


def _shows_no_key(text: str, keys: tuple[str, str]) -> None:
    for key in keys:
        assert key not in text


def test_the_right_key_generates(project, keyed_server, keys):
    _generator(project, keyed_server, "keyed", RIGHT)
    job = _generate(project, "keyed")
    # The server answers 401 to a request without its key: the header went with each one.
    assert job.status == "succeeded", job.error
    assert GeneratedSample.objects.count() == 4 and Pair.objects.exists()


def test_a_wrong_key_fails_the_job_naming_the_generator_and_keeps_the_labels(
    project, labeler, keyed_server, keys, staff, staff_client
):
    labeled = make_pair(project, "w1 w2", a="w3", b="w4")
    ComparisonFactory(pair=labeled, labeler=labeler, choice="a")
    ComparisonFactory(pair=labeled, labeler=UserFactory(username="bob"), choice="b")
    before = (_labels(project), Response.objects.count(), Pair.objects.count())
    _generator(project, keyed_server, "alpha", WRONG)

    job = _generate(project, "alpha")
    assert job.status == "failed"
    assert job.error == _refused(keyed_server, "alpha")
    assert not GeneratedSample.objects.exists()
    assert (_labels(project), Response.objects.count(), Pair.objects.count()) == before

    page = html.unescape(staff_client.get("/projects/demo/generators/").content.decode())
    assert job.error in page
    api = APIClient()
    api.force_authenticate(staff)
    shown = api.get(f"/api/projects/demo/generation/jobs/{job.pk}/")
    assert shown.json()["error"] == job.error
    for text in (job.error, page, shown.content.decode()):
        _shows_no_key(text, keys)


def test_the_test_prompt_shows_the_refusal(project, keyed_server, keys, staff_client):
    _generator(project, keyed_server, "alpha", WRONG)
    _generator(project, keyed_server, "keyed", RIGHT)
    answered = staff_client.post("/projects/demo/generators/keyed/", {"test": "w1"})
    assert 'id="generator-reply"' in answered.content.decode()

    refused = staff_client.post("/projects/demo/generators/alpha/", {"test": "w1"})
    body = html.unescape(refused.content.decode())
    assert 'id="generator-problem"' in body and _refused(keyed_server, "alpha") in body
    _shows_no_key(body, keys)


def test_no_key_named_says_the_endpoint_asks_for_one_and_how_to_give_it(
    project, keyed_server, keys
):
    generator = _generator(project, keyed_server, "bare")
    with pytest.raises(EndpointError) as refused:
        generator_test(generator=generator)
    message = str(refused.value)
    assert message.startswith(
        f"generator 'bare': {keyed_server.base_url}/chat/completions asks for an API key "
        f"(401: {REFUSED}) and this generator names none"
    )
    assert "--api-key-env VAR (manage.py add_generator)" in message
    assert '"Api key env" field' in message
    _shows_no_key(message, keys)


def test_a_wrong_key_fails_the_judging_job_naming_the_judge(project, keyed_server, keys, staff):
    settings = {"base_url": keyed_server.base_url, "model": keyed_server.model, "max_tokens": 8}
    judge_add(project=project, name="critic", api_key_env=WRONG, concurrency=1, **settings)
    judge_add(project=project, name="mute", concurrency=1, **settings)
    make_pair(project, "w1", a="w2", b="w3")

    job = judging_job_execute(
        job_id=judging_job_create(project=project, judge="critic", enqueue=False).pk
    )
    assert job.status == "failed"
    assert job.error == _refused(keyed_server, "critic", kind="judge")
    bare = judging_job_execute(
        job_id=judging_job_create(project=project, judge="mute", enqueue=False).pk
    )
    assert bare.status == "failed" and "asks for an API key" in bare.error
    assert "manage.py add_judge" in bare.error
    assert not Comparison.objects.exists() and not JudgeVerdict.objects.exists()
    api = APIClient()
    api.force_authenticate(staff)
    shown = api.get(f"/api/projects/demo/judging/jobs/{job.pk}/")
    assert shown.json()["error"] == job.error
    _shows_no_key(shown.content.decode(), keys)


def test_a_chat_turn_with_a_wrong_key_answers_the_error_and_stores_nothing(
    client, labeler, project, keyed_server, keys
):
    _generator(project, keyed_server, "alpha", WRONG)
    client.force_login(labeler)
    answer = client.post(
        "/projects/demo/chat/turn/",
        json.dumps({"message": "Hello", "mode": "hh", "generators": "alpha,alpha"}),
        content_type="application/json",
    )
    assert answer.status_code == 200
    body = b"".join(answer.streaming_content).decode()
    events = [json.loads(line) for line in body.splitlines()]
    errors = {e["side"]: e["message"] for e in events if e["type"] == "error"}
    assert errors == {
        "left": _refused(keyed_server, "alpha"),
        "right": _refused(keyed_server, "alpha"),
    }
    assert events[-1]["type"] == "failed" and "Nothing was stored" in events[-1]["message"]
    assert not (Prompt.objects.exists() or Response.objects.exists() or Pair.objects.exists())
    assert not Comparison.objects.exists()
    _shows_no_key(body, keys)
