"""Every /api/ answer is JSON with a `detail`, DEBUG on or off: a service's refusal (an error
that names its status and code, annotate.errors), DRF's errors (a field map gets a `detail`
that sums it up, a body over the size limit is a 413), and Django's own 404, 405 and 500 pages
for API routes."""

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
    """A refusal's own answer; else DRF's, with a `detail` always present: a 400 that lists
    fields (`{"pair_id": ["This field is required."]}`) keeps them and gains a summary."""
    refusal = _refusal_answer(exc, context.get("view"))
    if refusal is not None:
        return refusal
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


def _refusal_answer(exc: Exception, view: Any) -> Response | None:
    """`{"detail": ...}` with the error's status, for any exception whose class names an
    HTTPStatus `status` and a str `code`: annotate.errors.ApplicationError's subclasses, and
    rewardtrain.core.config.ConfigError, whose Django-free core cannot import annotate (and
    annotate cannot import rewardtrain, so no table here could name it) and so carries the
    two attributes plainly. A view's `refusal_prefix` opens the `detail` of each it raises."""
    status, code = getattr(exc, "status", None), getattr(exc, "code", None)
    if not isinstance(status, HTTPStatus) or not isinstance(code, str):
        return None
    body: dict[str, Any] = {"detail": f"{getattr(view, 'refusal_prefix', '')}{exc}"}
    if getattr(exc, "code_in_body", False):
        body["code"] = code
    body.update(getattr(exc, "extra", {}))
    return Response(body, status=status)


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
