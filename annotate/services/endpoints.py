"""What a generator's and a judge's endpoint settings must be, checked once for both kinds (the
kinds' services raise their own error with the text)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from annotate.models import Endpoint


def endpoint_problem(endpoint: Endpoint, *, exclude: tuple[str, ...] = ()) -> str | None:
    """Why the endpoint's settings cannot be saved (a field's own check, a URL that is not an
    http(s) one with a host, a concurrency under 1), or None. Uniqueness is the database's."""
    try:
        endpoint.full_clean(
            exclude=list(exclude), validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        if hasattr(exc, "message_dict"):
            return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        return " ".join(exc.messages)
    url = urlsplit(endpoint.base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return f"base_url must be an http:// or https:// URL with a host, not {endpoint.base_url!r}"
    if endpoint.concurrency < 1:
        return "concurrency must be at least 1"
    return None
