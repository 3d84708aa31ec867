"""What django-axes needs from this app: the client's address (behind the proxy too) and the
answer to a locked-out sign-in (JSON on /api/, the login page's look elsewhere)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKED_OUT_STATUS = 429


def client_ip(request: HttpRequest) -> str:
    """The address a sign-in came from: the proxy's header when CLIENT_IP_HEADER names one
    (the proxy overwrites it, so a client cannot choose its own), else the socket's peer."""
    if settings.CLIENT_IP_HEADER:
        forwarded = request.META.get(settings.CLIENT_IP_HEADER, "").strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


def lockout_message() -> str:
    minutes = settings.AXES_COOLOFF_TIME.total_seconds() / 60
    return (
        f"Too many failed sign-ins for this username from this address: locked out for "
        f"{minutes:g} minutes after the last try. Staff can unlock it in the admin "
        f"(Axes > Access attempts)."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """429 with Retry-After; the right password does not get through until the cool-off."""
    message = lockout_message()
    if request.path.startswith(settings.API_PREFIX):
        response: HttpResponse = JsonResponse(
            {"detail": message, "code": "locked_out"}, status=LOCKED_OUT_STATUS
        )
    else:
        response = render(
            request,
            "registration/locked_out.html",
            {"message": message},
            status=LOCKED_OUT_STATUS,
        )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
