"""The one permission-checked fetch of a Project for staff pages, APIs and commands."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotate.models import Project


def project_get_for_staff(*, user: AbstractBaseUser | AnonymousUser, slug: str) -> Project:
    """The project with this slug, for active staff only: anyone else is refused (403) before
    learning whether it exists; 404 when there is no such project."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        raise PermissionDenied("This is for staff.")
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    return project
