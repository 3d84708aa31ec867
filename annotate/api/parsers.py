"""The API's JSON parser: DRF's, with nesting bounded (annotate/json_limits.py), so that a
deeply nested body is a 400 that says why instead of a RecursionError."""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from annotate import json_limits


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            return json_limits.loads(text)
        except json_limits.TooDeep as exc:
            raise ParseError(f"JSON parse error - {exc}.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
