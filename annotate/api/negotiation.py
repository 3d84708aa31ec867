"""Content negotiation that skips the work when there is nothing to choose from."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class OnlyRendererNegotiation(DefaultContentNegotiation):
    """In production every API view renders JSON only (config/settings.py): answering in it
    without parsing the Accept header saves that work on every labeling request. Views with
    several renderers (the schema, the browsable API under DEBUG) negotiate as usual."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        if len(renderers) == 1 and not format_suffix and "format" not in request.query_params:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
