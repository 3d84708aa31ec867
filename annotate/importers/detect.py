"""Which importer reads a file: told from its first row, then held for every row."""

from __future__ import annotations

from typing import Any, Protocol

from . import candidates, hh_rlhf, label_studio, openai, pair, trl
from .arena import Battle, Kaggle
from .base import ParsedRow


class Importer(Protocol):
    NAME: str
    SHAPE: str

    def matches(self, row: dict[str, Any]) -> bool: ...

    def parse(self, row: dict[str, Any]) -> ParsedRow: ...


# Most specific first: an Arena CSV row also has prompt/response_a/response_b.
IMPORTERS: list[Importer] = [
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
    return "\n".join(f"- {importer.NAME}: {importer.SHAPE}" for importer in order)
