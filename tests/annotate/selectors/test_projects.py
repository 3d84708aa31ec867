"""The one staff project fetch, and every staff door that uses it: labelers, inactive staff and
strangers are refused before they learn whether a project exists."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client

from annotate.selectors.projects import project_get_for_staff
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

STAFF_GETS = [
    "/projects/{slug}/import/",
    "/projects/{slug}/export/",
    "/projects/{slug}/quality/",
    "/projects/{slug}/training/",
    "/projects/{slug}/models/1/download/",
    "/projects/{slug}/models/1/download/status/",
    "/api/projects/{slug}/export/",
    "/api/projects/{slug}/quality/",
    "/api/projects/{slug}/training-runs/",
]


def test_staff_get_the_project(project, staff):
    assert project_get_for_staff(user=staff, slug="demo") == project
    with pytest.raises(Http404):
        project_get_for_staff(user=staff, slug="nope")


def test_everyone_else_is_refused_whether_or_not_it_exists(project, labeler):
    inactive = StaffFactory(is_active=False)
    for user in (labeler, inactive):
        for slug in ("demo", "nope"):
            with pytest.raises(PermissionDenied):
                project_get_for_staff(user=user, slug=slug)


@pytest.mark.parametrize("url", STAFF_GETS)
def test_every_staff_door_refuses_a_labeler_and_404s_an_unknown_project(
    project, labeler, staff, url
):
    client = Client()
    client.force_login(labeler)
    refused = client.get(url.format(slug="demo"))
    # Pages send a labeler to the login page or answer 403; never the project's data.
    assert refused.status_code in (302, 403)
    assert client.get(url.format(slug="nope")).status_code == refused.status_code
    client.force_login(staff)
    assert client.get(url.format(slug="nope")).status_code == 404
