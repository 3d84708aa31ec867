"""`transformers serve` that asks for an API key, as vLLM's `--api-key` does: test support for
the wrong-key tests, not a fake server. `transformers serve` has no key option, and production
endpoints (vLLM `--api-key`, TGI behind a gateway, OpenAI) answer 401 to a missing or wrong
bearer key; vLLM implements its option as one middleware on its app.

This launcher does the same to transformers' own app: it wraps the app factory
(transformers.cli.serving.server.build_server) so that the app gets a middleware answering 401,
with OpenAI's error body, to a /v1 request whose `Authorization` is not `Bearer <key>`.
Everything else is transformers serve's own code: real HTTP, real chat completions.

    python -P tests/annotate/keyed_serve.py --api-key KEY serve MODEL [serve's options]

(`-P`: this folder must not come first on sys.path, its `selectors` package would shadow the
standard library's.)

`keyed_chat_server` starts it as a scripts.chat_server.ChatServer (in a test process).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

REFUSED = "Incorrect API key provided"
# OpenAI's answer to a wrong key; the message goes on with the key that was sent.
UNAUTHORIZED = {
    "error": {
        "message": REFUSED,
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
}


class ApiKeyMiddleware:
    """vLLM's AuthenticationMiddleware, with OpenAI's error body: /v1 requests need
    `Authorization: Bearer <key>`; /health and CORS preflights (OPTIONS) need none."""

    def __init__(self, app: Any, *, key: str) -> None:
        self.app = app
        self.expected = f"Bearer {key}".encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            return await self.app(scope, receive, send)
        if not scope["path"].startswith("/v1"):
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        # A constant-time comparison, as vLLM's: a key is a secret.
        if secrets.compare_digest(given, self.expected):
            return await self.app(scope, receive, send)
        from starlette.responses import JSONResponse

        # The refused key echoed whole, as some gateways do (OpenAI masks its middle): the
        # client must keep it out of the messages it stores and shows.
        echo = given.decode(errors="replace").removeprefix("Bearer ")
        body = {
            "error": {**UNAUTHORIZED["error"], "message": f"{REFUSED}: {echo}" if echo else REFUSED}
        }
        await JSONResponse(body, status_code=401)(scope, receive, send)


def main(argv: list[str]) -> None:
    """`--api-key KEY` then `transformers`' own command line (`serve MODEL ...`)."""
    if len(argv) < 2 or argv[0] != "--api-key" or not argv[1]:
        sys.exit("usage: keyed_serve.py --api-key KEY serve MODEL [options]")
    key, rest = argv[1], argv[2:]
    from transformers.cli.serving import server

    build_server = server.build_server

    def build_keyed_server(*args: Any, **kwargs: Any) -> Any:
        app = build_server(*args, **kwargs)
        app.add_middleware(ApiKeyMiddleware, key=key)
        return app

    # Serve.run imports build_server from this module when it runs: it gets the wrapped one.
    server.build_server = build_keyed_server
    from transformers.cli.transformers import app

    sys.argv = ["transformers", *rest]
    app()


def keyed_chat_server(*, model: str, key: str, log: Path) -> Any:
    """A ChatServer (not started) running this launcher with `key`."""
    from scripts.chat_server import ChatServer

    launcher = ("-P", str(Path(__file__).resolve()), "--api-key", key)
    return ChatServer(model=model, log=log, launcher=launcher)


if __name__ == "__main__":
    main(sys.argv[1:])
