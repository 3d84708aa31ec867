"""Sign-in as the settings configure it: Django's database sessions and its
AuthenticationMiddleware, so that a sign-out holds in every web worker at once."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests/factories.py


@pytest.fixture
def signed_in(labeler, project):
    client = Client()
    answer = client.post("/accounts/login/", {"username": labeler.username, "password": PASSWORD})
    assert answer.status_code == 302
    assert client.get("/api/projects/").status_code == 200
    return client


def test_a_signed_in_session_is_a_row_that_names_its_user(signed_in, labeler):
    (session,) = Session.objects.all()
    assert session.session_key == signed_in.cookies["sessionid"].value
    assert session.get_decoded()["_auth_user_id"] == str(labeler.pk)


def test_a_session_deleted_in_the_database_is_signed_out_at_once(signed_in):
    # What another web worker's sign-out leaves behind: a per-worker session cache would
    # still let this request in.
    Session.objects.all().delete()
    assert signed_in.get("/api/projects/").status_code == 403
    assert signed_in.get("/").status_code == 302


def test_signing_out_deletes_the_session(signed_in):
    assert signed_in.post("/accounts/logout/").status_code == 302
    assert not Session.objects.exists()
    assert signed_in.get("/api/projects/").status_code == 403


def test_a_deactivated_labeler_is_signed_out_on_the_next_request(signed_in, labeler):
    type(labeler).objects.filter(pk=labeler.pk).update(is_active=False)
    assert signed_in.get("/api/projects/").status_code == 403


def test_a_changed_password_signs_other_sessions_out(signed_in, labeler):
    labeler.set_password("a-new-password-1")
    labeler.save()
    assert signed_in.get("/api/projects/").status_code == 403


def test_a_deleted_user_is_signed_out(signed_in, labeler):
    labeler.delete()
    assert signed_in.get("/api/projects/").status_code == 403


def test_an_expired_session_is_signed_out_and_clearsessions_drops_it(signed_in):
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert signed_in.get("/api/projects/").status_code == 403
    call_command("clearsessions")
    assert not Session.objects.exists()
