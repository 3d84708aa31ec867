"""Login protection (django-axes) through the front doors: the login page, the admin's login
and POST /api/token/, then the AccessAttempt rows it keeps."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests/factories.py
LIMIT = 5  # LOGIN_FAILURE_LIMIT's default


def sign_in(client: Client, username: str, password: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return client.get("/api/projects/").status_code == 200


def fail(client: Client, username: str, times: int, path: str = "/accounts/login/") -> None:
    for _ in range(times):
        sign_in(client, username, "not-the-password", path)


def test_25_wrong_passwords_then_the_right_one_is_still_locked_out(project, labeler):
    client = Client()
    fail(client, "alice", 25)
    answer = sign_in(client, "alice", PASSWORD)
    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.content.decode()
    assert int(answer["Retry-After"]) == 30 * 60
    assert not signed_in(client)
    (attempt,) = AccessAttempt.objects.all()
    assert (attempt.username, attempt.ip_address) == ("alice", "127.0.0.1")
    assert attempt.failures_since_start >= 25


def test_fewer_failures_than_the_limit_do_not_lock(project, labeler):
    client = Client()
    fail(client, "alice", LIMIT - 1)
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert signed_in(client)
    # A success forgets the failures before it.
    assert not AccessAttempt.objects.filter(failures_since_start__gt=0).exists()


def test_the_limit_comes_from_the_settings(project, labeler, settings):
    settings.AXES_FAILURE_LIMIT = 2
    client = Client()
    fail(client, "alice", 2)
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_the_lockout_is_per_username_and_address(project, labeler):
    UserFactory(username="bob")
    fail(Client(REMOTE_ADDR="10.0.0.1"), "alice", LIMIT)
    assert sign_in(Client(REMOTE_ADDR="10.0.0.1"), "alice", PASSWORD).status_code == 429
    # The same user from elsewhere, and another user from the same address, still sign in.
    elsewhere = Client(REMOTE_ADDR="10.0.0.2")
    assert sign_in(elsewhere, "alice", PASSWORD).status_code == 302 and signed_in(elsewhere)
    other_user = Client(REMOTE_ADDR="10.0.0.1")
    assert sign_in(other_user, "bob", PASSWORD).status_code == 302


def test_behind_the_proxy_the_address_is_the_proxys_header(project, labeler, settings):
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    fail(Client(HTTP_X_REAL_IP="203.0.113.7"), "alice", LIMIT)
    assert AccessAttempt.objects.get().ip_address == "203.0.113.7"
    assert sign_in(Client(HTTP_X_REAL_IP="203.0.113.7"), "alice", PASSWORD).status_code == 429
    assert sign_in(Client(HTTP_X_REAL_IP="203.0.113.8"), "alice", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(project, labeler, settings):
    client = Client()
    fail(client, "alice", LIMIT)
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    # The last failure was a cool-off and a second ago.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_try_during_the_lockout_is_refused_and_restarts_the_cool_off(project, labeler, settings):
    client = Client()
    fail(client, "alice", LIMIT)
    almost = timezone.now() - settings.AXES_COOLOFF_TIME + timedelta(minutes=1)
    AccessAttempt.objects.update(attempt_time=almost)
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    assert AccessAttempt.objects.get().attempt_time > almost


def test_the_admin_login_is_locked_out_too(staff):
    client = Client()
    fail(client, "admin", 25, path="/admin/login/")
    answer = sign_in(client, "admin", PASSWORD, path="/admin/login/")
    assert answer.status_code == 429
    assert client.get("/admin/").status_code == 302  # to the login page: not signed in


def test_staff_unlock_in_the_admin(project, labeler, staff):
    fail(Client(), "alice", LIMIT)
    assert sign_in(Client(), "alice", PASSWORD).status_code == 429
    admin = Client(REMOTE_ADDR="10.0.0.9")
    assert sign_in(admin, "admin", PASSWORD).status_code == 302
    changelist = "/admin/axes/accessattempt/"
    assert "alice" in admin.get(changelist).content.decode()
    attempt = AccessAttempt.objects.get(username="alice")
    answer = admin.post(
        changelist, {"action": "unlock", "_selected_action": [attempt.pk]}, follow=True
    )
    assert "Unlocked: alice from 127.0.0.1." in answer.content.decode()
    assert not AccessAttempt.objects.filter(username="alice").exists()
    client = Client()
    assert sign_in(client, "alice", PASSWORD).status_code == 302 and signed_in(client)


def test_the_token_endpoint_gives_the_users_api_token(project, labeler):
    client = Client()
    answer = client.post(
        "/api/token/", {"username": "alice", "password": PASSWORD}, content_type="application/json"
    )
    assert answer.status_code == 200
    key = answer.json()["token"]
    assert Token.objects.get(user=labeler).key == key
    # The one token model: the same key as Token or Bearer on the API (and the reward server).
    for scheme in ("Token", "Bearer"):
        api = Client(HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert api.get("/api/projects/").status_code == 200
    again = client.post("/api/token/", {"username": "alice", "password": PASSWORD})
    assert again.json()["token"] == key


def test_the_token_endpoint_refuses_wrong_credentials_in_json(project, labeler):
    answer = Client().post("/api/token/", {"username": "alice", "password": "nope"})
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Wrong username or password."}
    assert not Token.objects.exists()


def test_the_token_endpoint_is_locked_out_too(project, labeler):
    client = Client()
    statuses = [
        client.post("/api/token/", {"username": "alice", "password": "x"}).status_code
        for _ in range(25)
    ]
    assert statuses == [400] * (LIMIT - 1) + [429] * (25 - LIMIT + 1)
    answer = client.post("/api/token/", {"username": "alice", "password": PASSWORD})
    assert answer.status_code == 429
    assert answer.json()["code"] == "locked_out"
    assert "Too many failed sign-ins" in answer.json()["detail"]
    assert not Token.objects.exists()
    # The failures were counted like the login page's: it is locked for alice here too.
    assert sign_in(client, "alice", PASSWORD).status_code == 429
