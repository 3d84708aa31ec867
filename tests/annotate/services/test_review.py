"""Excluding a labeler: only members can be excluded (others answer 404 and get no
membership), and an excluded labeler is served no more pairs and is told why."""

import pytest
from django.http import Http404
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.models import Lease, Membership
from annotate.services.labeling import LabelerExcluded, pair_lease_next
from annotate.services.review import membership_exclude, membership_include
from tests.factories import UserFactory, make_pair

pytestmark = pytest.mark.django_db


def test_excluding_a_non_member_is_404_and_gives_no_access(client, project, staff):
    outsider = UserFactory(username="outsider")
    client.force_login(staff)
    url = reverse("project-quality-labeler", args=[project.slug, outsider.pk])
    for action in ("exclude", "include"):
        assert client.post(url, {"action": action, "reason": "x"}).status_code == 404
    assert not Membership.objects.filter(user=outsider).exists()
    with pytest.raises(Http404):
        membership_exclude(project=project, user=outsider, reason="spam")
    with pytest.raises(Http404):
        membership_include(project=project, user=outsider)
    assert not Membership.objects.filter(user=outsider).exists()
    outsider_client = APIClient()
    outsider_client.force_authenticate(outsider)
    assert outsider_client.get(f"/api/projects/{project.slug}/next/").status_code == 404


def test_an_excluded_labeler_gets_no_more_pairs_and_is_told_why(client, project, labeler):
    make_pair(project, "Which?", a="This.", b="That.")
    make_pair(project, "Another?", a="Yes.", b="No.")
    held = pair_lease_next(project=project, labeler=labeler)
    membership_exclude(project=project, user=labeler, reason="always picks the left side")

    with pytest.raises(LabelerExcluded, match="always picks the left side"):
        pair_lease_next(project=project, labeler=labeler)
    api = APIClient()
    api.force_authenticate(labeler)
    answer = api.get(f"/api/projects/{project.slug}/next/")
    assert answer.status_code == 403 and answer.json()["code"] == "excluded"
    assert "always picks the left side" in answer.json()["detail"]
    assert list(Lease.objects.values_list("pair_id", flat=True)) == [held.pair_id]

    client.force_login(labeler)
    page = client.get(reverse("label", args=[project.slug])).content.decode()
    assert "Staff excluded you from this project" in page and "always picks the left side" in page
    assert 'id="label-app"' not in page and "label.js" not in page

    membership_include(project=project, user=labeler)
    assert pair_lease_next(project=project, labeler=labeler).pair_id == held.pair_id
    assert 'id="label-app"' in client.get(reverse("label", args=[project.slug])).content.decode()
