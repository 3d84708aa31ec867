"""Error pages Django's defaults get wrong for this app: a request body over the size limit is
a 413 that names the limit, not a bare 400 (the admin's forms, any page)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: Django raises RequestDataTooBig as a SuspiciousOperation (400)."""
    if isinstance(exception, RequestDataTooBig):
        return render(
            request,
            "413.html",
            {
                "limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
                "upload_limit": settings.MAX_UPLOAD_BYTES,
            },
            status=413,
        )
    return defaults.bad_request(request, exception)
