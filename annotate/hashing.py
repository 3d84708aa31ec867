"""Content identities: the same prompt or response text always hashes to the same key, so that
imports are idempotent."""

import hashlib
import json
from typing import Any


def content_hash(value: Any) -> str:
    """sha256 of a canonical JSON encoding (sorted keys, no whitespace variation)."""
    encoded = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def user_message(text: str) -> list[dict[str, str]]:
    """A single-turn prompt as a conversation of one user message."""
    return [{"role": "user", "content": text}]
