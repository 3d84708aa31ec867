"""Browser sessions: the database is their only copy, so signing out holds in every web
worker, and a request reads its session and its user in one statement."""

from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotate.models import LoginSession
from annotate.sessions import SessionStore

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests/factories.py


@pytest.fixture
def browser(labeler, project):
    client = Client()
    assert client.login(username=labeler.username, password=PASSWORD)
    assert client.get("/api/projects/").status_code == 200
    return client


def test_a_signed_in_session_row_names_its_user(browser, labeler):
    (session,) = LoginSession.objects.all()
    assert session.user_id == labeler.pk
    assert session.session_key == browser.cookies["sessionid"].value


def test_a_session_deleted_in_the_database_is_signed_out_at_once(browser):
    # What another web worker's sign-out (or the admin deleting the row) leaves behind: a
    # per-worker session cache would still let this request in.
    LoginSession.objects.all().delete()
    assert browser.get("/api/projects/").status_code == 403
    assert browser.get("/").status_code == 302


def test_signing_out_deletes_the_session(browser):
    assert browser.post("/accounts/logout/").status_code == 302
    assert not LoginSession.objects.exists()
    assert browser.get("/api/projects/").status_code == 403


def test_a_deactivated_labeler_is_signed_out_on_the_next_request(browser, labeler):
    get_user_model().objects.filter(pk=labeler.pk).update(is_active=False)
    assert browser.get("/api/projects/").status_code == 403


def test_a_changed_password_signs_other_sessions_out(browser, labeler):
    labeler.set_password("a-new-password-1")
    labeler.save()
    assert browser.get("/api/projects/").status_code == 403


def test_deleting_a_user_deletes_their_sessions(browser, labeler):
    labeler.delete()
    assert not LoginSession.objects.exists()


def test_a_request_reads_its_session_and_user_in_one_statement(browser, labeler):
    user_table = get_user_model()._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        response = browser.get("/api/projects/")
    assert response.status_code == 200 and response.json()[0]["slug"] == "demo"
    reads_of_users = [q["sql"] for q in queries.captured_queries if user_table in q["sql"]]
    assert len(reads_of_users) == 1
    assert LoginSession._meta.db_table in reads_of_users[0]


def test_an_anonymous_request_reads_no_user(db):
    user_table = get_user_model()._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert Client().get("/api/projects/").status_code == 403
    assert not [q for q in queries.captured_queries if user_table in q["sql"]]


def test_an_expired_session_is_signed_out_and_clearsessions_drops_it(browser):
    LoginSession.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert browser.get("/api/projects/").status_code == 403
    call_command("clearsessions")
    assert not LoginSession.objects.exists()


def test_a_session_saved_as_its_user_is_deleted_signs_in_nobody(db):
    session = SessionStore()
    session[SESSION_KEY] = "987654"  # a user deleted while their request ran
    session.save()
    reloaded = SessionStore(session.session_key)
    assert reloaded[SESSION_KEY] == "987654" and reloaded.user is None
    client = Client()
    client.cookies["sessionid"] = session.session_key
    assert client.get("/api/projects/").status_code == 403
