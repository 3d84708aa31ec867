"""Shape 6: Chatbot Arena. The Kaggle CSV (`prompt, response_a, response_b, winner_model_a,
winner_model_b, winner_tie`, cells may hold JSON lists of turns) and FastChat battle rows
(`conversation_a, conversation_b, winner`, with `model_a`/`model_b` names). Model A is the
one the Arena showed on the left."""

from __future__ import annotations

import json
from typing import Any

from annotate import json_limits

from .base import (
    Candidate,
    Judgment,
    PairSpec,
    ParsedRow,
    RowInvalid,
    extra_fields,
    json_type,
    message_list,
    metadata_field,
    optional_text,
    split_conversations,
    two_candidates,
)

WINNERS = {"model_a": "first", "model_b": "second", "tie": "tie", "tie (bothbad)": "both_bad"}
TRUE = {"1", "1.0", "true"}
FALSE = {"0", "0.0", "false", ""}


def _json_cell(value: Any) -> Any:
    """A CSV cell that holds JSON is decoded; anything else is returned as it is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json_limits.loads(value)
        except json_limits.TooDeep as exc:
            raise RowInvalid(f"a cell is refused: {exc}") from None
        except json.JSONDecodeError:
            return value
    return value


def _turns(row: dict[str, Any], name: str) -> list[str]:
    value = _json_cell(row.get(name))
    if value is None:
        raise RowInvalid(f"{name} is missing")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise RowInvalid(f"{name} is an empty list")
    for i, item in enumerate(items, 1):
        where = f"{name} turn {i}" if len(items) > 1 else name
        if not isinstance(item, str):
            raise RowInvalid(f"{where} must be text, not {json_type(item)}")
        if not item.strip():
            raise RowInvalid(f"{where} is empty")
    return items


def _flag(row: dict[str, Any], name: str) -> bool:
    value = str(row.get(name, "")).strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise RowInvalid(f"{name} must be 0 or 1, not {row.get(name)!r}")


class Kaggle:
    NAME = "arena"
    SHAPE = (
        '{"prompt", "response_a", "response_b", "winner_model_a", "winner_model_b", '
        '"winner_tie"} (Chatbot Arena CSV): a pair with its judgment'
    )
    KNOWN = {
        "prompt",
        "response_a",
        "response_b",
        "winner_model_a",
        "winner_model_b",
        "winner_tie",
        "model_a",
        "model_b",
        "id",
        "metadata",
    }

    @staticmethod
    def matches(row: dict[str, Any]) -> bool:
        return "winner_model_a" in row and "winner_model_b" in row

    @classmethod
    def parse(cls, row: dict[str, Any]) -> ParsedRow:
        prompts = _turns(row, "prompt")
        a, b = _turns(row, "response_a"), _turns(row, "response_b")
        if not len(prompts) == len(a) == len(b):
            raise RowInvalid(
                f"prompt has {len(prompts)} turns, response_a {len(a)}, response_b {len(b)}"
            )
        flags = [_flag(row, n) for n in ("winner_model_a", "winner_model_b", "winner_tie")]
        if sum(flags) != 1:
            raise RowInvalid("exactly one of winner_model_a, winner_model_b, winner_tie must be 1")
        choice = ("first", "second", "tie")[flags.index(True)]

        def conversation(replies: list[str]) -> list[dict[str, str]]:
            messages = []
            for prompt, reply in zip(prompts, replies, strict=True):
                messages += [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": reply},
                ]
            return messages

        prompt, text_a, text_b = split_conversations(
            conversation(a), conversation(b), ("response_a", "response_b")
        )
        return _row(row, cls.KNOWN, prompt, text_a, text_b, choice)


class Battle:
    NAME = "arena-battle"
    SHAPE = (
        '{"conversation_a", "conversation_b", "winner"} (Chatbot Arena battles; winner is '
        'model_a, model_b, tie or "tie (bothbad)"): a pair with its judgment'
    )
    KNOWN = {"conversation_a", "conversation_b", "winner", "model_a", "model_b", "id"}
    KNOWN |= {"question_id", "metadata"}

    @staticmethod
    def matches(row: dict[str, Any]) -> bool:
        return "conversation_a" in row and "conversation_b" in row

    @classmethod
    def parse(cls, row: dict[str, Any]) -> ParsedRow:
        winner = row.get("winner")
        if winner not in WINNERS:
            raise RowInvalid(f"winner must be one of {', '.join(WINNERS)}, not {winner!r}")
        a = message_list(_json_cell(row.get("conversation_a")), "conversation_a")
        b = message_list(_json_cell(row.get("conversation_b")), "conversation_b")
        prompt, text_a, text_b = split_conversations(a, b, ("conversation_a", "conversation_b"))
        return _row(row, cls.KNOWN, prompt, text_a, text_b, WINNERS[winner])


def _row(
    row: dict[str, Any],
    known: set[str],
    prompt: list[dict[str, str]],
    text_a: str,
    text_b: str,
    choice: str,
) -> ParsedRow:
    first = Candidate(text_a, optional_text(row, "model_a"))
    second = Candidate(text_b, optional_text(row, "model_b"))
    two_candidates(first, second, ("the reply of model_a", "the reply of model_b"))
    return ParsedRow(
        prompt=prompt,
        pairs=[PairSpec(first, second, [Judgment(choice, left="first")])],
        external_id=optional_text(row, "id", "question_id"),
        row_id=optional_text(row, "id", "question_id"),
        metadata=metadata_field(row, extra_fields(row, known)),
    )
