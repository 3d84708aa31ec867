"""The chat page and its endpoints through Django's front door: the page for members only, the
link from the projects page when a generator exists and the way to add one when none does, a
turn streamed as JSON Lines from a real `transformers serve` and its vote, refusals as JSON."""

from __future__ import annotations

import json

import pytest

from annotate.models import Comparison, Pair
from annotate.services.generation import generator_create
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db
PAGE = "/projects/demo/chat/"


@pytest.fixture
def labeler_client(client, labeler):
    client.force_login(labeler)
    return client


def _generator(project, server, name: str):
    return generator_create(
        project=project, name=name, base_url=server.base_url, model=server.model, max_tokens=5
    )


def _post(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def test_the_page_says_how_to_add_a_generator_when_there_is_none(
    labeler_client, client, project, staff
):
    page = labeler_client.get(PAGE).content.decode()
    assert 'id="no-generators"' in page and "Ask a project admin" in page
    assert 'id="chat-app"' not in page
    assert "/projects/demo/chat/" not in labeler_client.get("/").content.decode()

    MembershipFactory(project=project, user=staff)
    client.force_login(staff)
    page = client.get(PAGE).content.decode()
    assert "/projects/demo/generators/" in page and "manage.py add_generator" in page


def test_members_only(labeler_client, project):
    ProjectFactory(slug="other")
    assert labeler_client.get("/projects/other/chat/").status_code == 404
    assert _post(labeler_client, "/projects/other/chat/turn/", {}).status_code == 404
    assert labeler_client.get(PAGE + "turn/").status_code == 405


def test_the_page_offers_who_replies_and_the_projects_page_links_it(labeler_client, project):
    for name in ("alpha", "beta"):
        generator_create(project=project, name=name, base_url="http://h/v1", model="m")
    page = labeler_client.get(PAGE).content.decode()
    assert '<option value="alpha,beta" selected>alpha and beta</option>' in page
    assert '<option value="beta,beta">beta, sampled twice</option>' in page
    arena = labeler_client.get(PAGE + "?mode=arena&generators=alpha,beta").content.decode()
    assert 'data-mode="arena"' in arena and "sampled twice" not in arena
    assert '<option value="random">Two drawn at random</option>' in arena
    assert '<option value="alpha,beta" selected>' in arena
    assert 'href="/projects/demo/chat/"' in labeler_client.get("/").content.decode()


def test_a_turn_streams_json_lines_and_the_vote_stores_the_comparison(
    labeler_client, labeler, project, chat_server
):
    _generator(project, chat_server, "alpha")
    _generator(project, chat_server, "beta")
    answer = _post(
        labeler_client,
        PAGE + "turn/",
        {"message": "Hello <b>there</b>", "mode": "hh", "generators": "alpha,beta"},
    )
    assert answer.status_code == 200 and answer.streaming
    assert answer["Content-Type"].startswith("application/x-ndjson")
    assert answer["X-Accel-Buffering"] == "no"
    events = [json.loads(line) for line in b"".join(answer.streaming_content).splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "turn" and kinds.count("done") == 2
    assert kinds.count("text") >= 2  # each reply in pieces as it came
    turn = events[-1]

    refused = _post(labeler_client, PAGE + "vote/", {"turn": turn["turn"], "choice": "up"})
    assert refused.status_code == 400 and "choice must be one of" in refused.json()["detail"]
    voted = _post(
        labeler_client,
        PAGE + "vote/",
        {"turn": turn["turn"], "choice": "left", "time_spent_ms": 1200, "comment": "ok"},
    )
    assert voted.status_code == 200, voted.content
    comparison = Comparison.objects.get(labeler=labeler)
    assert comparison.pair == Pair.objects.get(pk=turn["pair_id"])
    assert (comparison.time_spent_ms, comparison.comment) == (1200, "ok")
    assert voted.json()["joined"] == "left"


def test_refusals_are_json_with_a_detail(labeler_client, project):
    generator_create(project=project, name="alpha", base_url="http://h/v1", model="m")
    cases = [
        ("not json", "the body is not JSON"),
        ([1, 2], "the body is a JSON object"),
        ({"message": "hi", "generators": "alpha,zeta"}, "no generator named zeta"),
        ({"message": "hi", "state": "forged"}, "not one this server signed"),
        ({"message": "", "generators": "alpha,alpha"}, "write a message first"),
        ({"message": "x" * 20_001, "generators": "alpha,alpha"}, "at most 20,000 characters"),
    ]
    for body, detail in cases:
        data = body if isinstance(body, str) else json.dumps(body)
        answer = labeler_client.post(PAGE + "turn/", data, content_type="application/json")
        assert answer.status_code == 400, body
        assert detail in answer.json()["detail"], answer.json()
    for value in (-1, 2**31, 10**40, True, "3"):
        answer = _post(
            labeler_client,
            PAGE + "vote/",
            {"turn": "x", "choice": "left", "time_spent_ms": value},
        )
        assert answer.status_code == 400
        assert "time_spent_ms must be a whole number from 0 to" in answer.json()["detail"]
