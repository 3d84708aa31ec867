"""The secret key and the proxy's HTTPS header, read from the environment at start-up.

A fixed key in the repository would let anyone forge sessions and reverse the labeler
pseudonyms of an export, so there is none: production must set SECRET_KEY, and development
(DEBUG on) gets a random key made once per machine and kept under DATA_DIR.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Every generated development key starts with this, so that one copied into a production
# environment is refused like an unset key.
DEV_KEY_PREFIX = "dev-only-insecure-"


def secret_key(value: str, *, debug: bool, dev_key_file: Path) -> str:
    """SECRET_KEY as given; with DEBUG off a missing or development key stops start-up."""
    if value and not value.startswith(DEV_KEY_PREFIX):
        return value
    if not debug:
        problem = "is not set" if not value else "is a development key"
        raise ImproperlyConfigured(
            f"SECRET_KEY {problem} and DEBUG is off. Set SECRET_KEY to a long random value, "
            "e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))' "
            "(or DEBUG=1 for development only)."
        )
    return value or _dev_key(dev_key_file)


def _dev_key(path: Path) -> str:
    """This machine's development key, made on first use. Linked into place in one step, so
    that processes starting together (web, worker, beat) all end up with the same key."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    staging.write_text(DEV_KEY_PREFIX + secrets.token_urlsafe(50))
    staging.chmod(0o600)
    try:
        os.link(staging, path)
    except FileExistsError:
        pass
    finally:
        staging.unlink()
    return path.read_text().strip()


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """`HTTP_X_FORWARDED_PROTO,https` -> the tuple Django takes; empty -> None (no proxy)."""
    if not value.strip():
        return None
    header, sep, expected = value.partition(",")
    if not sep or not header.strip() or not expected.strip():
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER must be HEADER,value (e.g. HTTP_X_FORWARDED_PROTO,https), "
            f"not {value!r}."
        )
    return header.strip(), expected.strip()
