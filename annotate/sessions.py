"""Browser sessions stored in the database (LoginSession), read with their user in one
statement.

Every request of a signed-in labeler loads its session and then its user. Django's database
sessions do that in two queries; its cached sessions keep each web worker's copy in that
worker's memory, so signing out in one worker left the session alive in the others. Here the
database is the only copy, the user row comes along with the session row, and the login
backend (annotate/auth.py) takes that user instead of reading it again. Django's checks stay
as they are: an inactive user or a changed password still signs the session out.

Settings: SESSION_ENGINE = "annotate.sessions", and SessionUserMiddleware in place of
Django's AuthenticationMiddleware.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.contrib import auth
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from annotate.models import LoginSession
from annotate.services import queue_sql

# The session whose user is being resolved right now (set by SessionUserMiddleware).
_resolving: ContextVar[SessionStore | None] = ContextVar("resolving_session", default=None)


class SessionStore(DatabaseSessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        # The signed-in user's row as it was read with the session; None before the load.
        self.user: AbstractBaseUser | None = None

    @classmethod
    def get_model_class(cls) -> type[LoginSession]:
        return LoginSession

    def create_model_instance(self, data: dict) -> LoginSession:
        session = super().create_model_instance(data)
        user_id = data.get(SESSION_KEY)
        session.user_id = (
            get_user_model()._meta.pk.to_python(user_id) if user_id is not None else None
        )
        return session

    def _get_session_from_db(self) -> LoginSession | None:
        self.user = None
        # The key was validated when set (a malformed cookie leaves it None).
        found = (
            queue_sql.session_with_user(session_key=self.session_key, now=timezone.now())
            if self.session_key is not None
            else None
        )
        if found is None:
            self._session_key = None
            return None
        session, self.user = found
        return session


def prefetched_user(user_id: int) -> AbstractBaseUser | None:
    """The user read with the session of the request being authenticated, if it is this
    user; None means: read the user from the database."""
    session = _resolving.get()
    user = getattr(session, "user", None)
    return user if user is not None and user.pk == user_id else None


def _request_user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    if not hasattr(request, "_cached_user"):
        token = _resolving.set(request.session)
        try:
            request._cached_user = auth.get_user(request)
        finally:
            _resolving.reset(token)
    return request._cached_user


class SessionUserMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, resolving request.user from the user that came
    with the session."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _request_user(request))
