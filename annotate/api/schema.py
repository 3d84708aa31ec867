"""The OpenAPI schema's shared parts: how this app's own authentication class is described,
and the error answers every operation can give, added to each in one place (drf-spectacular
finds the extension by import: AnnotateConfig.ready imports this module; the hook is in
SPECTACULAR_SETTINGS)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

# An operation marked so takes an optional query parameter sent empty (`?split=`, as an HTML
# form sends it) as not sent; the schema says so with allowEmptyValue.
BLANK_QUERY_IS_ABSENT = "x-blank-query-is-absent"

ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What is wrong, in words."}},
    "required": ["detail"],
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "annotate.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The API token (POST /api/token/), as `Bearer <key>`.",
        }


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_error_answers(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Every operation lists the errors that any of its requests can meet before or around
    its own logic (answers it documents itself are kept): 403 without a signed-in user or
    without the staff flag, 404 for an unknown id or slug in the path, 400 for a malformed
    body or query, 413 for a body over the size limit, 415 for a body in a media type it
    does not read. Each is `{detail}`
    (annotate.api.errors makes every /api/ error JSON). Also applies BLANK_QUERY_IS_ABSENT."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            params = operation.get("parameters", [])
            if operation.pop(BLANK_QUERY_IS_ABSENT, False):
                for param in params:
                    if param.get("in") == "query" and not param.get("required"):
                        param["allowEmptyValue"] = True
            if operation.get("security") not in (None, [], [{}]):
                answers.setdefault("403", _error("Not signed in, or not allowed."))
            if "{" in path:
                answers.setdefault("404", _error("No such object, or not one of yours."))
            if "requestBody" in operation or any(p.get("in") == "query" for p in params):
                answers.setdefault("400", _error("Invalid input; `detail` names the problem."))
            if "requestBody" in operation:
                answers.setdefault("415", _error("A body in a media type this call does not read."))
                answers.setdefault("413", _error("A body over the size limit."))
    return result
