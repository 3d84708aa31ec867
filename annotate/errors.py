"""The errors services raise for a request they refuse, each class naming once the HTTP status
and short code of its answer; annotate.api.errors turns any of them into that answer (as
HackSoft's ApplicationError does). Plain Python: a service raises these without DRF."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar


class ApplicationError(Exception):
    """A refusal whose message is safe to show the caller. Each subclass sets `status` and
    `code` on the class (left unset here: a class without its own answer is a bug that
    tests/annotate/api/test_errors.py finds). `extra` holds the keys an API answer carries
    beside `detail`."""

    status: ClassVar[HTTPStatus]
    code: ClassVar[str]
    # Whether an API answer carries `code`: those documented with one do (clients tell a 409
    # "exists" from a 409 "pair_full"); the others are documented as `{detail}` and stay so.
    code_in_body: ClassVar[bool] = False

    @property
    def extra(self) -> dict[str, Any]:
        return {}
