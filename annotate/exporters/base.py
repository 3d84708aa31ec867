"""Pieces every export format shares: how a conversation becomes text, the extra columns of a
preference row, and the JSON Lines container."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

# Role names in whole-transcript text (Anthropic HH-RLHF's convention).
TRANSCRIPT_ROLES = {"user": "Human", "assistant": "Assistant", "system": "System"}


@dataclass(frozen=True)
class ExportContext:
    """What a record builder needs to know about the project and the request."""

    with_margin: bool = False
    real_usernames: bool = False
    strength_labels: list[str] = field(default_factory=list)
    # The trainer's split shares, so that a raw row's split matches the preference rows'.
    validation_share: float = 0.1
    test_share: float = 0.1
    # What a record builder works out once per labeler or per pair and reuses on the next rows
    # (one export's context, one export's memo).
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def transcript(messages: list[dict[str, Any]], reply: str | None = None) -> str:
    """HH-RLHF text: "\\n\\nHuman: ...\\n\\nAssistant: ...", ending with the reply when given.

    A leading system message goes before the first "Human:" turn, unlabelled: the convention of
    Anthropic's text-completion prompts, the source of this format.
    """
    head = ""
    if messages and messages[0].get("role") == "system":
        head, messages = messages[0].get("content", ""), messages[1:]
    turns = [
        f"\n\n{TRANSCRIPT_ROLES.get(m.get('role', 'user'), str(m.get('role')).title())}: "
        f"{m.get('content', '')}"
        for m in messages
    ]
    if reply is not None:
        turns.append(f"\n\nAssistant: {reply}")
    return head + "".join(turns)


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The prompt as one string: a single user message as it is; a conversation as a transcript
    (so that no turn is lost in TRL's plain-text format)."""
    if len(messages) == 1 and messages[0].get("role", "user") == "user":
        return messages[0].get("content", "")
    return transcript(messages) + "\n\nAssistant:"


def margin(row: dict[str, Any]) -> float:
    """TRL's `margin` column: the mean stated strength of the winning votes (levels counted from
    1), 0.0 for ties and for pairs judged without a strength."""
    if row["tie"] or row["strength"] is None:
        return 0.0
    return float(row["strength"])


def preference_extras(row: dict[str, Any]) -> dict[str, Any]:
    """Vote counts and agreement, named from the chosen response's side. They follow the core
    keys; TRL and `datasets` ignore columns they do not use."""
    votes = row["votes"]
    a_chosen = row["chosen_id"] < row["rejected_id"]  # response_a has the smaller id
    return {
        "pair_id": row["pair_id"],
        "split": row["split"],
        "votes_chosen": votes["a"] if a_chosen else votes["b"],
        "votes_rejected": votes["b"] if a_chosen else votes["a"],
        "votes_tie": votes["tie"],
        "votes_both_bad": votes["both_bad"],
        "agreement": round(row["agreement"], 6),
        "p_chosen": round(row["p_chosen"], 6),
        "tie": row["tie"],
        "adjudicated": row["adjudicated"],
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class JsonlWriter:
    """One JSON object per line, UTF-8, written straight to a binary stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._encode = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode

    def write(self, record: dict[str, Any]) -> None:
        self._stream.write(self._encode(record).encode("utf-8") + b"\n")

    def close(self) -> None:
        self._stream.flush()
