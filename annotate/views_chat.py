"""The chat page (live conversations in HH or Arena mode) and its two JSON endpoints: a turn,
answered as JSON Lines while both replies stream in, and the vote. The work is in
annotate/services/chat.py.

A turn's answer is a StreamingHttpResponse that lasts as long as the slower reply (at most
GENERATION_TIMEOUT_SECONDS of generating, plus two quick retries), generated in two threads of
the web process. A sync gunicorn worker is held for the whole stream, so docs/chat.md has
gunicorn run gthread workers where labelers chat (a stream then holds one thread); `make run`'s
development server gives each request a thread of its own already. Generating in a Celery task
instead would free the worker but add a broker round trip to every piece of text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from annotate import json_limits
from annotate.errors import ApplicationError
from annotate.rendering import markdown_to_safe_html
from annotate.selectors.generation import generators_of
from annotate.selectors.labeling import project_get_for_labeler, project_scale
from annotate.services.chat import (
    MESSAGE_MAX,
    MODES,
    ChatInvalid,
    chat_pairings,
    chat_refusal,
    chat_turn_plan,
    chat_turn_stream,
    chat_vote,
)
from annotate.services.labeling import labeler_exclusion


@login_required
def chat(request: HttpRequest, slug: str) -> HttpResponse:
    """The page shell; chat.js sends the turns and the votes. `?mode=arena` for Arena mode,
    `?generators=a,b` to choose who replies (else the first choice of chat_pairings). A
    project that ranks or rates gets the page's refusal instead (chat_refusal)."""
    project = project_get_for_labeler(labeler=request.user, slug=slug)
    mode = request.GET.get("mode", "hh")
    mode = mode if mode in MODES else "hh"
    generators = list(generators_of(project=project))
    pairings = chat_pairings(generators=generators, mode=mode)
    values = [value for value, _ in pairings]
    wanted = request.GET.get("generators", "")
    return render(
        request,
        "annotate/chat.html",
        {
            "project": project,
            "mode": mode,
            "generators": generators,
            "pairings": pairings,
            "chosen": wanted if wanted in values else (values[0] if values else ""),
            "scale": project_scale(project),
            "message_max": MESSAGE_MAX,
            "instructions_html": markdown_to_safe_html(project.instructions),
            "excluded": labeler_exclusion(project=project, labeler=request.user),
            "refusal": chat_refusal(project=project),
        },
    )


@login_required
@require_POST
def chat_turn(request: HttpRequest, slug: str) -> HttpResponse:
    """One turn: `{"message", "state"}` (or, to start, `{"message", "mode", "generators"}`),
    with `"keep": {side: reply}` on a Retry. A refused request is a JSON `{"detail"}` with its
    status; an accepted one streams the service's events, one JSON object a line."""
    project = project_get_for_labeler(labeler=request.user, slug=slug)
    try:
        body = _body(request)
        plan = chat_turn_plan(
            project=project,
            labeler=request.user,
            message=body.get("message"),
            state=body.get("state") or None,
            mode=str(body.get("mode") or "hh"),
            generators=str(body.get("generators") or ""),
            keep=body.get("keep") or {},
        )
    except ApplicationError as exc:
        return JsonResponse({"detail": str(exc)}, status=exc.status)
    response = StreamingHttpResponse(
        _lines(chat_turn_stream(plan=plan)), content_type="application/x-ndjson; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx passes each line on at once
    return response


def _lines(events: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """Each event as a line; closed early (the browser left), the events stop too."""
    try:
        for event in events:
            yield (json.dumps(event, ensure_ascii=False) + "\n").encode()
    finally:
        events.close()


@login_required
@require_POST
def chat_vote_view(request: HttpRequest, slug: str) -> JsonResponse:
    """The vote on a turn: `{"turn", "choice", "strength", "reasons", "comment",
    "time_spent_ms"}`; answers the next state and the generators' names."""
    project = project_get_for_labeler(labeler=request.user, slug=slug)
    try:
        body = _body(request)
        result = chat_vote(
            project=project,
            labeler=request.user,
            turn=body.get("turn"),
            choice=body.get("choice"),
            strength=body.get("strength"),
            reasons=body.get("reasons") or [],
            comment=body.get("comment") or "",
            time_spent_ms=body.get("time_spent_ms"),
        )
    except ApplicationError as exc:
        return JsonResponse({"detail": str(exc)}, status=exc.status)
    return JsonResponse(result)


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json_limits.loads(request.body)
    except RequestDataTooBig:
        raise ChatInvalid("the request is larger than the server accepts") from None
    except ValueError as exc:
        raise ChatInvalid(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ChatInvalid("the body is a JSON object")
    return body
