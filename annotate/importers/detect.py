"""Which importer reads a file: told from its first row, then held for every row."""

from __future__ import annotations

from typing import Any, Protocol

from . import (
    argilla,
    candidates,
    helpsteer2,
    hh_rlhf,
    label_studio,
    oasst,
    openai,
    pair,
    trl,
    ultrafeedback,
)
from .arena import Battle, Kaggle
from .base import ParsedRow
from .sets import SETS, ParsedSet


class Importer(Protocol):
    NAME: str
    SHAPE: str

    def matches(self, row: dict[str, Any]) -> bool: ...

    def parse(self, row: dict[str, Any]) -> ParsedRow | ParsedSet: ...


def is_set_importer(importer: Importer) -> bool:
    """Whether the importer's rows are sets of responses with rankings and ratings."""
    return getattr(importer, "KIND", "") == SETS


# Most specific first: an Arena CSV row also has prompt/response_a/response_b.
# The shapes of rankings and ratings have their own keys and go first.
IMPORTERS: list[Importer] = [
    oasst,
    ultrafeedback,
    argilla,
    helpsteer2,
    label_studio,
    Battle,
    Kaggle,
    openai,
    trl,
    hh_rlhf,
    candidates,
    pair,
]


def detect(row: dict[str, Any]) -> Importer | None:
    return next((importer for importer in IMPORTERS if importer.matches(row)), None)


def known_shapes() -> str:
    """The shapes the import knows, one per line, for the message refusing an unknown one."""
    order = [pair, candidates, trl, hh_rlhf, openai, Kaggle, Battle, label_studio]
    order += [ultrafeedback, helpsteer2, argilla, oasst]
    return "\n".join(f"- {importer.NAME}: {importer.SHAPE}" for importer in order)
