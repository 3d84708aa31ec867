"""Who may do what: labelers label and see only their own work; staff manage in the admin."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotate.models import Comparison, Lease
from annotate.services.labeling import comparison_create, pair_lease_next
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(labeler):
    client = APIClient()
    client.force_authenticate(labeler)
    return client


def test_a_labeler_cannot_use_the_admin(labeler, project):
    client = Client()
    client.force_login(labeler)
    for url in ("/admin/", "/admin/annotate/comparison/", "/admin/annotate/project/add/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_see_every_annotate_model_in_the_admin(staff, project, labeler):
    pair = make_pair(project)
    lease = pair_lease_next(project=project, labeler=labeler)
    comparison_create(pair=lease.pair, labeler=labeler, choice="a")
    client = Client()
    client.force_login(staff)
    for model in (
        "project",
        "membership",
        "prompt",
        "response",
        "pair",
        "lease",
        "importbatch",
        "comparison",
    ):
        assert client.get(f"/admin/annotate/{model}/").status_code == 200, model
    assert client.get(f"/admin/annotate/pair/{pair.pk}/change/").status_code == 200
    assert client.get(f"/admin/annotate/project/{project.pk}/change/").status_code == 200


def test_staff_exclude_a_labeler_with_the_admin_action(staff, project, labeler):
    membership = project.memberships.get(user=labeler)
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/annotate/membership/",
        {"action": "exclude_labelers", "_selected_action": [membership.pk]},
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.excluded and "admin" in membership.excluded_reason
    client.post(
        "/admin/annotate/membership/",
        {"action": "include_labelers", "_selected_action": [membership.pk]},
    )
    membership.refresh_from_db()
    assert not membership.excluded


def test_a_labeler_not_on_the_project_gets_404(api, labeler):
    other = ProjectFactory(slug="secret")
    pair = make_pair(other)
    assert api.get("/api/projects/secret/next/").status_code == 404
    response = api.post(
        "/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json"
    )
    assert response.status_code == 404
    assert api.post(f"/api/pairs/{pair.pk}/skip/").status_code == 404
    assert api.get("/api/comparisons/?project=secret").status_code == 404
    client = Client()
    client.force_login(labeler)
    assert client.get("/projects/secret/label/").status_code == 404
    assert not Comparison.objects.exists() and not Lease.objects.exists()


def test_a_labeler_judges_only_pairs_served_to_them(api, project):
    # On the project, but this pair was never leased to the caller: picking by id is refused.
    pair = make_pair(project)
    response = api.post(
        "/api/comparisons/", {"pair_id": pair.pk, "preferred": "tie"}, format="json"
    )
    assert response.status_code == 404
    assert not Comparison.objects.exists()


def test_a_labeler_never_sees_others_comparisons(api, project, labeler):
    bob = UserFactory(username="bob")
    MembershipFactory(project=project, user=bob)
    make_pair(project)
    lease = pair_lease_next(project=project, labeler=bob)
    bobs = comparison_create(pair=lease.pair, labeler=bob, choice="a")
    assert api.get("/api/comparisons/").json()["results"] == []
    # Bob's pair was never served to the caller: no way to reach it through the API.
    assert api.post(f"/api/pairs/{bobs.pair_id}/skip/").status_code == 404
    assert api.get("/api/projects/demo/next/").status_code == 204


def test_pages_need_a_login(client, project):
    for url in ("/", "/projects/demo/label/", "/projects/demo/instructions/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_project_admin_links_the_staff_pages(client, staff, project):
    client.force_login(staff)
    body = client.get(f"/admin/annotate/project/{project.pk}/change/").content.decode()
    for page in ("import", "export", "training", "quality", "review"):
        assert f"/projects/{project.slug}/{page}/" in body
