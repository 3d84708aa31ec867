"""The login backend: Django's ModelBackend, taking the signed-in user that was read with
the session (annotate/sessions.py) and otherwise reading it in one plain statement."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser

from annotate.services.queue_sql import instances
from annotate.sessions import prefetched_user


class UserBackend(ModelBackend):
    def get_user(self, user_id: int) -> AbstractBaseUser | None:
        user = prefetched_user(user_id)
        if user is None:
            user_model = get_user_model()
            pk = user_model._meta.pk.column
            found = instances(user_model, f"WHERE t.{pk} = %s", [user_id])
            user = found[0] if found else None
        # The same rule as ModelBackend: an inactive user is signed out.
        return user if user is not None and self.user_can_authenticate(user) else None
