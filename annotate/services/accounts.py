"""Accounts: the password rules every password passes, and the API token of a user (the one
token model of the app: DRF's authtoken, also what the reward server accepts)."""

from __future__ import annotations

from http import HTTPStatus

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from rest_framework.authtoken.models import Token

from annotate.errors import ApplicationError


class PasswordRefused(ApplicationError, ValueError):
    """A password that fails AUTH_PASSWORD_VALIDATORS; the message lists every rule broken."""

    status = HTTPStatus.BAD_REQUEST
    code = "password_refused"


def password_check(*, password: str, username: str) -> None:
    """Django's password validators for an account of this username (existing or not).
    Raises PasswordRefused naming each rule the password breaks."""
    User = get_user_model()
    user = User.objects.filter(username=username).first() or User(username=username)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise PasswordRefused(
            f"Password refused for {username!r}: " + " ".join(error.messages)
        ) from None


def api_token_for(*, user: AbstractBaseUser) -> str:
    """The user's API token (made on first use): `Authorization: Token <key>` or
    `Bearer <key>` on /api/ and on the reward server."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
