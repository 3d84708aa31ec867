"""The chat on a project that ranks or rates: its turns would be pairs, which such a project
does not ask for, so the page says why there is no chat and the endpoints refuse with a JSON
detail (409), storing nothing."""

from __future__ import annotations

import json

import pytest

from annotate.models import Comparison, Pair, Project, Prompt, TaskKind
from annotate.services.chat import ChatInvalid, ChatWrongTaskKind, chat_turn_plan
from annotate.services.generation import generator_create

pytestmark = pytest.mark.django_db
PAGE = "/projects/demo/chat/"


@pytest.fixture
def ranking_client(client, labeler, project):
    """alice signed in on the demo project, which ranks and rates 4 responses a time and has
    two generators (never asked: every request here is refused first)."""
    for name in ("alpha", "beta"):
        generator_create(project=project, name=name, base_url="http://h/v1", model="m")
    Project.objects.filter(pk=project.pk).update(task_kind=TaskKind.RANKING_RATING)
    client.force_login(labeler)
    return client


def post(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def test_the_page_says_chat_collects_pairs_and_names_the_task_kind(ranking_client):
    page = ranking_client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="wrong-task-kind"' in html and 'id="chat-app"' not in html
    assert "The chat collects pairwise judgments" in html
    assert "this project&#x27;s task kind is ranking_rating" in html
    assert 'href="/projects/demo/label/"' in html
    # The projects page no longer links a chat it would refuse.
    assert PAGE not in ranking_client.get("/").content.decode()


def test_the_endpoints_refuse_with_409_and_store_nothing(ranking_client):
    turn = post(
        ranking_client, PAGE + "turn/", {"message": "Hi", "mode": "hh", "generators": "alpha,beta"}
    )
    assert turn.status_code == 409 and not turn.streaming
    detail = turn.json()["detail"]
    assert "pairwise judgments" in detail and "task kind is ranking_rating" in detail
    vote = post(ranking_client, PAGE + "vote/", {"turn": "anything", "choice": "left"})
    assert vote.status_code == 409 and vote.json()["detail"] == detail
    assert not (Prompt.objects.exists() or Pair.objects.exists() or Comparison.objects.exists())


def test_the_service_refuses_every_kind_but_pairwise(project, labeler):
    for kind in (TaskKind.RANKING, TaskKind.RATING):
        Project.objects.filter(pk=project.pk).update(task_kind=kind)
        project.refresh_from_db()
        with pytest.raises(ChatWrongTaskKind, match=f"task kind is {kind.value} "):
            chat_turn_plan(project=project, labeler=labeler, message="Hi")
    # Back to pairs: the next check speaks (no generators named), not the task kind.
    Project.objects.filter(pk=project.pk).update(task_kind=TaskKind.PAIRWISE)
    project.refresh_from_db()
    with pytest.raises(ChatInvalid, match="name two generators"):
        chat_turn_plan(project=project, labeler=labeler, message="Hi")
