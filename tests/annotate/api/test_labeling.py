"""The labeling API through the front door (APIClient with token and session auth), then the
rows it stored."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.models import Comparison, Lease, Project, Response
from annotate.rendering import EMPTY_RESPONSE_HTML
from tests.factories import MembershipFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(labeler):
    client = APIClient()
    client.force_authenticate(labeler)
    return client


def test_projects_lists_the_callers_projects_with_their_progress(api, project, labeler):
    Project.objects.create(name="Not mine", slug="not-mine")
    make_pair(project)
    lease = api.get("/api/projects/demo/next/").json()
    api.post("/api/comparisons/", {"pair_id": lease["pair_id"], "preferred": "tie"}, format="json")
    body = api.get("/api/projects/").json()
    assert [p["slug"] for p in body] == ["demo"]
    assert body[0]["my_comparisons"] == 1 and body[0]["pair_count"] == 1
    assert body[0]["comparison_count"] == 1
    assert body[0]["scale"]["strength_labels"] == [
        "slightly better",
        "better",
        "clearly better",
        "much better",
    ]


def test_next_returns_the_pair_in_display_order(api, project, labeler):
    pair = make_pair(project, "What is 2+2?", a="**4**", b="<b>five</b>")
    response = api.get("/api/projects/demo/next/")
    assert response.status_code == 200
    body = response.json()
    assert body["pair_id"] == pair.pk and body["prompt"] == "What is 2+2?"
    assert body["messages"] == [
        {"role": "user", "content": "What is 2+2?", "html": "<p>What is 2+2?</p>\n"}
    ]
    lease = Lease.objects.get(labeler=labeler, pair=pair)
    ids = [r["id"] for r in body["responses"]]
    expected = (
        [pair.response_a_id, pair.response_b_id]
        if lease.left == "a"
        else [pair.response_b_id, pair.response_a_id]
    )
    assert ids == expected
    html = {r["id"]: r["html"] for r in body["responses"]}
    assert html[pair.response_a_id] == "<p><strong>4</strong></p>\n"
    assert html[pair.response_b_id] == "<p>&lt;b&gt;five&lt;/b&gt;</p>\n"
    assert set(body["scale"]) == {
        "allow_tie",
        "allow_both_bad",
        "ask_strength",
        "strength_labels",
        "reason_tags",
    }
    # Asking again (a reload) returns the same pair in the same order.
    assert [r["id"] for r in api.get("/api/projects/demo/next/").json()["responses"]] == ids


def test_next_is_204_when_nothing_is_left(api, project):
    assert api.get("/api/projects/demo/next/").status_code == 204


def test_submit_stores_the_comparison_with_the_shown_order(api, project, labeler):
    Project.objects.filter(pk=project.pk).update(
        ask_strength=True, reason_tags=["accurate", "safe"]
    )
    pair = make_pair(project)
    body = api.get("/api/projects/demo/next/").json()
    right_id = body["responses"][1]["id"]
    response = api.post(
        "/api/comparisons/",
        {
            "pair_id": pair.pk,
            "preferred": right_id,
            "strength": 2,
            "reasons": ["safe"],
            "comment": "right is safer",
            "time_spent_ms": 5300,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    out = response.json()
    stored = Comparison.objects.get(pk=out["id"])
    canonical = "a" if right_id == pair.response_a_id else "b"
    # The right response was preferred, so the left one is the other response.
    assert stored.choice == canonical
    assert stored.left == ("b" if canonical == "a" else "a")
    assert (stored.strength, stored.reasons, stored.comment, stored.time_spent_ms) == (
        2,
        ["safe"],
        "right is safer",
        5300,
    )
    assert out["preferred"] == str(right_id) and out["left"] == stored.left
    assert not Lease.objects.filter(labeler=labeler).exists()


def test_a_repeat_submit_is_409_with_the_existing_id(api, project):
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    payload = {"pair_id": pair.pk, "preferred": "both_bad"}
    first = api.post("/api/comparisons/", payload, format="json")
    second = api.post("/api/comparisons/", payload, format="json")
    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["id"] == first.json()["id"] and second.json()["code"] == "exists"
    assert Comparison.objects.count() == 1


@pytest.mark.parametrize(
    "payload, status",
    [
        ({"preferred": "left"}, 400),
        ({"preferred": "tie", "strength": 9}, 400),
        ({"preferred": "tie", "time_spent_ms": -1}, 400),
        ({"preferred": "tie", "reasons": ["unknown"]}, 400),
        ({}, 400),
    ],
)
def test_invalid_submissions_are_400_and_store_nothing(api, project, payload, status):
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    response = api.post("/api/comparisons/", {"pair_id": pair.pk, **payload}, format="json")
    assert response.status_code == status
    assert response.json()
    assert not Comparison.objects.exists()


def test_a_malformed_submission_names_each_bad_field(api, project):
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    bad = {"pair_id": "x", "preferred": "tie", "time_spent_ms": -5, "reasons": "safe"}
    response = api.post("/api/comparisons/", bad, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "pair_id", "time_spent_ms", "reasons"}
    assert response.json()["detail"].startswith("pair_id: A valid integer is required.")
    # A body that is not an object at all, twice (the parser holds no state between calls).
    for _ in range(2):
        response = api.post("/api/comparisons/", [pair.pk, "tie"], format="json")
        assert response.status_code == 400 and "non_field_errors" in response.json()
    ok = api.post("/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json")
    assert ok.status_code == 201 and Comparison.objects.count() == 1


def test_ties_refused_by_the_project_are_400(api, project):
    Project.objects.filter(pk=project.pk).update(allow_tie=False)
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    response = api.post(
        "/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json"
    )
    assert response.status_code == 400 and "ties" in response.json()["detail"]


def test_skip_frees_the_pair_and_moves_on(api, project):
    first = make_pair(project, priority=1)
    second = make_pair(project)
    assert api.get("/api/projects/demo/next/").json()["pair_id"] == first.pk
    assert api.post(f"/api/pairs/{first.pk}/skip/").status_code == 204
    assert api.get("/api/projects/demo/next/").json()["pair_id"] == second.pk


def test_token_auth_works_and_anonymous_is_refused(project, labeler):
    make_pair(project)
    token = Token.objects.create(user=labeler)
    client = APIClient()
    assert client.get("/api/projects/").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/projects/demo/next/").status_code == 200


def test_session_auth_needs_csrf_for_writes(project, labeler):
    pair = make_pair(project)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(labeler)
    client.get("/api/projects/demo/next/")
    response = client.post(
        "/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json"
    )
    assert response.status_code == 403
    assert not Comparison.objects.exists()


def test_own_comparisons_list(api, project, labeler):
    bob = UserFactory(username="bob")
    MembershipFactory(project=project, user=bob)
    Project.objects.filter(pk=project.pk).update(redundancy=2)
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    mine = api.post("/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json")
    other = APIClient()
    other.force_authenticate(bob)
    other.get("/api/projects/demo/next/")
    other.post("/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json")
    listed = api.get("/api/comparisons/?project=demo").json()["results"]
    assert [c["id"] for c in listed] == [mine.json()["id"]]


def test_own_comparisons_refuse_a_blank_project_and_a_form_body(api, project):
    # A blank filter is a mistake, not "every project"; a judgment is JSON (it carries nulls).
    blank = api.get("/api/comparisons/?project=")
    assert blank.status_code == 400 and "project" in blank.json()["detail"]
    pair = make_pair(project)
    api.get("/api/projects/demo/next/")
    form = api.post("/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"})
    assert form.status_code == 415
    assert not Comparison.objects.exists()


def test_schema_and_docs_pages_work(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/projects/",
        "/api/projects/{slug}/next/",
        "/api/comparisons/",
        "/api/pairs/{pair_id}/skip/",
    ):
        assert path in paths
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_payloads_have_the_documented_shapes(api, project):
    """The lease and comparison payloads are built by hand for speed: the schema's serializers
    must name exactly their keys, and the list endpoint answers in the same shape."""
    from annotate.api.labeling import ComparisonApi
    from annotate.api.serializers import LeasedPairSerializer

    make_pair(project)
    lease = api.get("/api/projects/demo/next/").json()
    assert set(lease) == set(LeasedPairSerializer().fields)
    assert lease["lease_expires_at"].endswith("Z")
    created = api.post(
        "/api/comparisons/", {"pair_id": lease["pair_id"], "preferred": "tie"}, format="json"
    ).json()
    assert set(created) == set(ComparisonApi.OutputSerializer().fields)
    assert created["project"] == "demo" and created["preferred"] == "tie"
    listed = api.get("/api/comparisons/").json()["results"]
    assert listed == [created]


def test_a_pair_never_served_to_the_caller_is_404_and_stores_nothing(api, project, labeler):
    """Labelers judge what they were served: a pair id picked by hand is refused."""
    pair = make_pair(project)
    response = api.post(
        "/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json"
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "No such pair."}
    assert not Comparison.objects.exists()


def test_an_empty_response_is_served_as_a_visible_placeholder(api, project):
    # An imported judgment may hold an empty response (HH-RLHF); should its pair ever be
    # served, the labeler sees a placeholder, not a blank panel, and the text stays "".
    pair = make_pair(project, "Say something harmful", b="Here goes.")
    Response.objects.filter(pk=pair.response_a_id).update(text="")

    body = api.get("/api/projects/demo/next/").json()

    shown = {r["id"]: r for r in body["responses"]}
    assert shown[pair.response_a_id]["text"] == ""
    assert shown[pair.response_a_id]["html"] == EMPTY_RESPONSE_HTML
    assert shown[pair.response_b_id]["html"] == "<p>Here goes.</p>\n"
