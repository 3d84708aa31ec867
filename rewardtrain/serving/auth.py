"""Who may score: the app's API tokens (`Authorization: Token <key>` or `Bearer <key>`) of
active staff, or of users holding the "may score" permission (rewardtrain.may_score)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import close_old_connections

SCORE_PERMISSION = "rewardtrain.may_score"
# A granted token is trusted this long before the database is asked again, so that a busy
# trainer costs no query per request; a revoked token or permission stops within this time.
GRANT_SECONDS = 5.0


@dataclass(frozen=True)
class Denied:
    status: int  # 401: no valid token; 403: a valid token without the permission
    message: str


def token_key(header: str | None) -> str | None:
    """The key of an `Authorization: Token <key>` or `Bearer <key>` header."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() not in ("token", "bearer") or not key or " " in key:
        return None
    return key


def check_token(key: str) -> Denied | None:
    """None when the token's user may score (a database read: call it off the event loop)."""
    from rest_framework.authtoken.models import Token

    close_old_connections()
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return Denied(401, "invalid token")
    user = token.user
    if not (user.is_staff or user.has_perm(SCORE_PERMISSION)):
        return Denied(
            403,
            f"user {user.get_username()} may not score: staff or the "
            f"'may score' permission ({SCORE_PERMISSION}) is needed",
        )
    return None


class TokenAuth:
    """Awaitable check of a request's Authorization header; grants are cached briefly."""

    def __init__(self, *, grant_seconds: float = GRANT_SECONDS) -> None:
        self.grant_seconds = grant_seconds
        self._granted: dict[str, float] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="token-auth")

    async def __call__(self, header: str | None) -> Denied | None:
        key = token_key(header)
        if key is None:
            return Denied(401, "an 'Authorization: Token <key>' (or Bearer) header is needed")
        now = time.monotonic()
        if self._granted.get(key, 0.0) > now:
            return None
        denied = await asyncio.get_running_loop().run_in_executor(self._executor, check_token, key)
        if denied is None:
            self._granted[key] = now + self.grant_seconds
        else:
            self._granted.pop(key, None)
        return denied

    def close(self) -> None:
        self._executor.shutdown(wait=False)
