"""Project membership writes: put labelers on a Project (creating accounts when asked) and
exclude or re-include them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.models import Membership, Project
from annotate.services.accounts import password_check
from annotate.services.judges_verdict import memberships_verdict_recounted


@dataclass(frozen=True)
class LabelerAdded:
    username: str
    account_created: bool
    membership_created: bool
    # Set only for a new account created without a given password: shown once, never stored.
    generated_password: str | None = None


def membership_create(*, project: Project, user: AbstractBaseUser) -> tuple[Membership, bool]:
    return Membership.objects.get_or_create(project=project, user=user)


@transaction.atomic
def labelers_add(
    *, project: Project, usernames: Sequence[str], password: str | None = None
) -> list[LabelerAdded]:
    """Put these users on the project, creating the accounts that don't exist.

    New accounts get `password`, or a generated one that is returned so it can be shown once.
    Existing accounts keep their password. A given password that fails the password
    validators raises PasswordRefused before any account is made.
    """
    User = get_user_model()
    if password is not None:
        for username in usernames:
            if not User.objects.filter(username=username).exists():
                password_check(password=password, username=username)
    added = []
    for username in dict.fromkeys(usernames):
        user = User.objects.filter(username=username).first()
        generated = None
        account_created = user is None
        if user is None:
            if password is None:
                generated = secrets.token_urlsafe(12)
            user = User.objects.create_user(username=username, password=password or generated)
        _, membership_created = membership_create(project=project, user=user)
        added.append(
            LabelerAdded(
                username=username,
                account_created=account_created,
                membership_created=membership_created,
                generated_password=generated,
            )
        )
    return added


def memberships_set_excluded(
    *, memberships: Iterable[Membership], excluded: bool, reason: str = ""
) -> int:
    """Exclude labelers (their comparisons stay stored but leave training and export by
    default) or include them again; an AI judge's verdicts on its pairs are recounted with it
    (judge-first reads them). Returns how many memberships changed."""
    memberships = list(memberships)
    ids = [m.pk for m in memberships]
    with memberships_verdict_recounted(
        project_ids={m.project_id for m in memberships}, user_ids={m.user_id for m in memberships}
    ):
        return Membership.objects.filter(pk__in=ids).update(
            excluded=excluded, excluded_reason=reason[:500] if excluded else ""
        )
