"""API authentication classes (a module of its own: DRF imports these while it loads its
views, so nothing here may import a view)."""

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """The same tokens as `Authorization: Token <key>`, sent as `Bearer <key>` (what OpenAI-
    style clients and the reward server's clients send)."""

    keyword = "Bearer"
