"""The login backend: Django's ModelBackend, with the signed-in user read in one plain
statement. Every request of a labeling session loads its user; composing that query through
the ORM cost more CPU than the database spent answering it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser

from annotate.services.queue_sql import instances


class UserBackend(ModelBackend):
    def get_user(self, user_id: int) -> AbstractBaseUser | None:
        user_model = get_user_model()
        pk = user_model._meta.pk.column
        found = instances(user_model, f"WHERE t.{pk} = %s", [user_id])
        # The same rule as ModelBackend: an inactive user is signed out.
        return found[0] if found and self.user_can_authenticate(found[0]) else None
