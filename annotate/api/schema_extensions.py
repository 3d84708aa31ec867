"""How the OpenAPI schema describes this app's own authentication classes (drf-spectacular
finds extensions by import: AnnotateConfig.ready imports this module)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "annotate.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The API token (POST /api/token/), as `Bearer <key>`.",
        }
