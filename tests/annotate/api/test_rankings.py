"""The ranking and rating API through the front door (APIClient), then the rows it stored:
lease, skip, submit, and every bad input a 400 that names the problem with nothing stored."""

import pytest
from rest_framework.test import APIClient

from annotate.hashing import user_message
from annotate.models import DEFAULT_ASPECTS, Project, Ranking, Rating, ResponseSet, SetLease
from annotate.services.rankings import response_sets_create
from tests.factories import PromptFactory, ResponseFactory, UserFactory

pytestmark = pytest.mark.django_db

ASPECTS = [a["name"] for a in DEFAULT_ASPECTS]


@pytest.fixture
def api(labeler):
    client = APIClient()
    client.force_authenticate(labeler)
    return client


def ranking_project(project, task_kind="ranking_rating", k=3, texts=None):
    Project.objects.filter(pk=project.pk).update(task_kind=task_kind, ranking_size=k)
    project.refresh_from_db()
    prompt = PromptFactory(project=project, messages=user_message("Rank these?"))
    for i, text in enumerate(texts or [f"Reply {i}" for i in range(k)]):
        ResponseFactory(prompt=prompt, text=text or "", content_hash=f"h{i}")
    response_sets_create(project=project)
    return project


def ratings_for(ids, value=1):
    return [{"response_id": i, "aspect": a, "value": value} for i in ids for a in ASPECTS]


def test_next_shows_the_set_in_this_labelers_order_as_plain_text(api, project, labeler):
    ranking_project(project, texts=["<b>bold</b> **md**", "", "Plain."])
    response = api.get("/api/projects/demo/sets/next/")
    assert response.status_code == 200
    body = response.json()
    lease = SetLease.objects.get(labeler=labeler)
    assert body["set_id"] == lease.response_set_id
    assert [r["id"] for r in body["responses"]] == lease.shown
    texts = {r["text"] for r in body["responses"]}
    assert texts == {"<b>bold</b> **md**", "", "Plain."}
    assert (body["task_kind"], body["ask_ranking"], body["ask_ratings"]) == (
        "ranking_rating",
        True,
        True,
    )
    assert [a["name"] for a in body["aspects"]] == ASPECTS
    assert body["messages"] == [{"role": "user", "content": "Rank these?"}]
    assert body["prompt"] == "Rank these?"
    # Asked again: the same set in the same order.
    assert api.get("/api/projects/demo/sets/next/").json()["responses"] == body["responses"]


def test_submit_stores_the_ranking_and_ratings(api, project, labeler):
    ranking_project(project)
    lease = api.get("/api/projects/demo/sets/next/").json()
    a, b, c = [r["id"] for r in lease["responses"]]
    body = {
        "set_id": lease["set_id"],
        "ranking": [c, [a, b]],
        "ratings": ratings_for([a, b, c], value=4),
        "time_spent_ms": 9000,
    }
    response = api.post("/api/set-judgments/", body, format="json")
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["ranking"] == [[c], [a, b]] and answer["shown"] == [a, b, c]
    ranking = Ranking.objects.get()
    assert (ranking.groups, ranking.labeler, ranking.time_spent_ms) == (
        [[c], [a, b]],
        labeler,
        9000,
    )
    assert Rating.objects.filter(labeler=labeler, value=4).count() == 15
    assert answer["ranking_id"] == ranking.pk
    # Submitting again: 409 with its code, still one of each.
    again = api.post("/api/set-judgments/", body, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "set_exists" and again.json()["set_id"] == lease["set_id"]
    assert Ranking.objects.count() == 1 and Rating.objects.count() == 15
    assert api.get("/api/projects/demo/sets/next/").status_code == 204


def test_bad_input_is_a_400_naming_the_problem_and_stores_nothing(api, project):
    ranking_project(project)
    lease = api.get("/api/projects/demo/sets/next/").json()
    a, b, c = ids = [r["id"] for r in lease["responses"]]
    good = ratings_for(ids)
    set_id = lease["set_id"]
    cases = [
        ({"ranking": [a, b], "ratings": good}, f"The ranking omits response {c}."),
        ({"ranking": [a, b, c, b], "ratings": good}, f"The ranking lists response {b} twice."),
        ({"ranking": [a, b, 4242], "ratings": good}, "Response 4242 is not one of"),
        (
            {"ranking": ids, "ratings": [*good[1:], {**good[0], "value": 9}]},
            f"helpfulness is rated from 0 to 4; response {a} got 9.",
        ),
        (
            {
                "ranking": ids,
                "ratings": [*good, {"response_id": a, "aspect": "humour", "value": 1}],
            },
            "This project has no aspect 'humour'.",
        ),
        ({"ranking": ids, "ratings": [{"response_id": a, "aspect": "x"}]}, "ratings"),
        ({"ranking": ids, "ratings": good, "time_spent_ms": -5}, "time_spent_ms"),
        ({"ranking": list(range(10)), "ratings": good}, "ranking"),
        ({"ranking": ids, "ratings": [None, None]}, "ratings"),
    ]
    for extra, message in cases:
        response = api.post("/api/set-judgments/", {"set_id": set_id, **extra}, format="json")
        assert response.status_code == 400, (extra, response.content)
        assert message in response.json()["detail"], (message, response.json())
    assert not Ranking.objects.exists() and not Rating.objects.exists()
    assert ResponseSet.objects.get(pk=set_id).human_count == 0

    Project.objects.filter(pk=project.pk).update(task_kind="rating")
    response = api.post(
        "/api/set-judgments/", {"set_id": set_id, "ranking": ids, "ratings": good}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "This project asks for ratings, not a ranking."}
    assert not Ranking.objects.exists() and not Rating.objects.exists()


def test_a_set_not_served_is_404_and_a_pairwise_project_is_409(api, project):
    ranking_project(project)
    set_id = ResponseSet.objects.get().pk
    response = api.post(
        "/api/set-judgments/", {"set_id": set_id, "all_bad": True, "ratings": []}, format="json"
    )
    assert response.status_code == 404
    assert api.post(f"/api/sets/{set_id}/skip/").status_code == 404
    Project.objects.filter(pk=project.pk).update(task_kind="pairwise")
    response = api.get("/api/projects/demo/sets/next/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "This project labels pairs, not rankings or ratings.",
        "code": "wrong_task_kind",
    }


def test_skip_hands_the_set_to_others(api, project, labeler):
    ranking_project(project, task_kind="ranking")
    set_id = api.get("/api/projects/demo/sets/next/").json()["set_id"]
    assert api.post(f"/api/sets/{set_id}/skip/").status_code == 204
    assert api.get("/api/projects/demo/sets/next/").status_code == 204
    bob = UserFactory(username="bob")
    project.memberships.create(user=bob)
    other = APIClient()
    other.force_authenticate(bob)
    assert other.get("/api/projects/demo/sets/next/").json()["set_id"] == set_id


def test_the_label_page_serves_the_set_page_for_ranking_projects(project, labeler, client):
    client.force_login(labeler)
    assert b"label.js" in client.get("/projects/demo/label/").content
    ranking_project(project)
    page = client.get("/projects/demo/label/").content.decode()
    assert "label_set.js" in page and "/api/projects/demo/sets/next/" in page
    assert "<kbd>=</kbd> tie it with the one above" in page
