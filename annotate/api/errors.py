"""Every /api/ answer is JSON with a `detail`, DEBUG on or off: DRF's errors (a field map
gets a `detail` that sums it up, a body over the size limit is a 413), and Django's own 404,
405 and 500 pages for API routes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("django.request")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's answer, with a `detail` always present: a 400 that lists fields
    (`{"pair_id": ["This field is required."]}`) keeps them and gains a one-line summary."""
    if isinstance(exc, RequestDataTooBig):
        # Django's check, met when DRF reads the body: a SuspiciousOperation, a 500 here.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE ({limit:,} bytes)."},
            status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, list):
        response.data = {"detail": _summary(data), "errors": data}
    elif isinstance(data, dict) and "detail" not in data:
        response.data = {"detail": _summary(data), **data}
    return response


def _summary(errors: Any) -> str:
    """`pair_id: This field is required. preferred: ...` from DRF's nested error structure."""
    parts: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            for inner in value:
                walk(inner, where)
        else:
            parts.append(f"{where}: {value}" if where else str(value))

    walk(errors, "")
    return " ".join(parts) or "Invalid input."


class ApiJsonErrorsMiddleware:
    """For /api/ routes: an unhandled exception answers a JSON 500 (logged as Django logs
    it, without DEBUG's HTML traceback), and a non-JSON error page (the URL resolver's 404,
    a 405) is replaced by `{"detail": ...}` with the same status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(settings.API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return _json_error(response.status_code, response)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path.startswith(settings.API_PREFIX):
            return None
        got_request_exception.send(sender=None, request=request)
        logger.error("Internal Server Error: %s", request.path, exc_info=exc)
        return _json_error(500)


def _json_error(status: int, original: HttpResponse | None = None) -> JsonResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    answer = JsonResponse({"detail": f"{phrase}."}, status=status)
    if original is not None and original.has_header("Allow"):
        answer["Allow"] = original["Allow"]
    return answer
