"""What every importer returns for one row, and the checks they share (text fields, message
lists, splitting two conversations into their shared prompt and their two replies)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from annotate import json_limits
from annotate.hashing import user_message

ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}
HH_TURN = re.compile(r"\n\n(Human|Assistant):")
HH_ROLES = {"Human": "user", "Assistant": "assistant"}


class RowInvalid(ValueError):
    """A row that cannot be imported; the message says what is wrong with it."""


@dataclass(frozen=True)
class Candidate:
    text: str
    model_name: str = ""


@dataclass(frozen=True)
class Judgment:
    """An imported label about one pair, by candidate: "first", "second", "tie", "both_bad".

    `left` says which candidate the source showed on the left ("" when unknown); `key` tells
    apart several judgments that one row holds (Label Studio annotations).
    """

    choice: str
    left: str = ""
    key: str = ""


@dataclass
class PairSpec:
    first: Candidate
    second: Candidate
    judgments: list[Judgment] = field(default_factory=list)
    # A known answer for quality checks: "a" = first better, "b", "tie", "both_bad".
    gold: str = ""


@dataclass
class ParsedRow:
    """One row: its prompt (with the prompt's external id and metadata), its pairs, and the
    row's own id, which identifies its judgments so that a re-import adds nothing."""

    prompt: list[dict[str, str]]
    pairs: list[PairSpec]
    external_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    row_id: str = ""


def present(row: dict[str, Any], name: str) -> bool:
    """A field counts as present when it holds something (CSV gives "" for an empty cell)."""
    return row.get(name) not in (None, "")


def text_field(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        raise RowInvalid(f"{name} is missing")
    if not isinstance(value, str):
        raise RowInvalid(f"{name} must be text, not {json_type(value)}")
    if not value.strip():
        raise RowInvalid(f"{name} is empty")
    return value


def reply_field(row: dict[str, Any], name: str) -> str:
    """A judged reply given as text. Unlike a prompt or a reply still to be labelled, it may be
    empty: preferring an empty reply (a refusal to say anything) to a harmful one is a real
    judgment, and HH-RLHF holds such rows."""
    value = row.get(name)
    if value is None:
        raise RowInvalid(f"{name} is missing")
    if not isinstance(value, str):
        raise RowInvalid(f"{name} must be text, not {json_type(value)}")
    return value


def optional_text(row: dict[str, Any], *names: str) -> str:
    """The first of the named fields that holds a value, as text ("" when none does)."""
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            if isinstance(value, dict | list):
                raise RowInvalid(f"{name} must be text or a number")
            return str(value)
    return ""


def metadata_field(row: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The row's `metadata` object (a JSON object, or its text in a CSV cell) plus `extra`."""
    value = row.get("metadata")
    if value in (None, ""):
        value = {}
    if isinstance(value, str):
        try:
            value = json_limits.loads(value)
        except json_limits.TooDeep as exc:
            raise RowInvalid(f"metadata is refused: {exc}") from None
        except json.JSONDecodeError:
            raise RowInvalid("metadata must be a JSON object") from None
    if not isinstance(value, dict):
        raise RowInvalid(f"metadata must be a JSON object, not {json_type(value)}")
    return {**value, **(extra or {})}


def extra_fields(row: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """Fields the format does not use: kept in the prompt's metadata rather than dropped."""
    return {k: v for k, v in row.items() if k not in known and v not in (None, "")}


def json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), "null")


def message_content(value: Any, where: str) -> str:
    """A message's content: text, or a list of parts of which the text parts are joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text", None):
                if not isinstance(part.get("text"), str):
                    raise RowInvalid(f"{where} has a content part without text")
                texts.append(part["text"])
            else:
                raise RowInvalid(f"{where} has a content part that is not text")
        return "\n\n".join(texts)
    raise RowInvalid(f"{where} content must be text, not {json_type(value)}")


def message_list(value: Any, name: str, empty_replies: bool = False) -> list[dict[str, str]]:
    """A list of {role, content} messages, checked and normalised to exactly those two keys.

    `empty_replies`: an assistant message may be empty (the list holds judged replies; see
    reply_field)."""
    if not isinstance(value, list):
        raise RowInvalid(f"{name} must be a list of {{role, content}} messages")
    if not value:
        raise RowInvalid(f"{name} is an empty list")
    messages = []
    for i, message in enumerate(value, 1):
        where = f"{name} message {i}"
        if not isinstance(message, dict):
            raise RowInvalid(f"{where} must be an object with role and content")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise RowInvalid(f"{where} has no role")
        if "content" not in message:
            raise RowInvalid(f"{where} has no content")
        content = message_content(message["content"], where)
        if not content.strip() and not (empty_replies and role == "assistant"):
            raise RowInvalid(f"{where} is empty")
        messages.append({"role": role, "content": content})
    return messages


def prompt_messages(value: Any, name: str = "prompt") -> list[dict[str, str]]:
    """A prompt given as text (an HH-style transcript is split into turns) or as messages."""
    if isinstance(value, str):
        if not value.strip():
            raise RowInvalid(f"{name} is empty")
        if HH_TURN.search(value):
            messages = hh_messages(value, name)
            # An explicit prompt in HH style ends with the empty "Assistant:" cue.
            if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
                messages.pop()
            if messages:
                return messages
        return user_message(value)
    if value is None:
        raise RowInvalid(f"{name} is missing")
    return message_list(value, name)


def hh_messages(transcript: str, name: str) -> list[dict[str, str]]:
    """An Anthropic HH-RLHF transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...") as messages.

    Text before the first turn is the system prompt (Anthropic's convention, and what the trl
    text export writes for a conversation that has one)."""
    if transcript.startswith(("Human:", "Assistant:")):
        transcript = "\n\n" + transcript
    parts = HH_TURN.split(transcript)
    messages = [{"role": "system", "content": parts[0].strip()}] if parts[0].strip() else []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": HH_ROLES[speaker], "content": content.strip()})
    if not messages:
        raise RowInvalid(f'{name} has no "Human:" or "Assistant:" turns')
    return messages


def reply_text(messages: list[dict[str, str]], name: str) -> str:
    """The text of a judged reply: one assistant message as is, empty included (see
    reply_field); a longer continuation (the later turns of a multi-turn conversation, or the
    two assistant turns in a row that some HH-RLHF transcripts hold) as a transcript whose
    later turns are labelled by role.

    A Response is one text everywhere (the labeling page, the exports, its content hash, the
    trainer's {prompt, chosen, rejected}), so several turns are kept as this transcript rather
    than as messages: the labels are the ones the reward model's plain input format writes
    ("User:", "Assistant:"), so a backbone without a chat template reads the side's own
    conversation exactly as it went, one with a template reads it inside the last assistant
    turn, and the hh-rlhf export writes each side's own transcript back."""
    if messages[0]["role"] != "assistant":
        raise RowInvalid(f"{name} must start with an assistant message")
    parts = [messages[0]["content"]]
    for message in messages[1:]:
        label = ROLE_LABELS.get(message["role"], message["role"].capitalize())
        parts.append(f"{label}: {message['content']}")
    return "\n\n".join(parts)


def split_conversations(
    a: list[dict[str, str]], b: list[dict[str, str]], names: tuple[str, str]
) -> tuple[list[dict[str, str]], str, str]:
    """Two conversations -> (shared prompt, reply a, reply b).

    The prompt is the longest shared beginning that ends before an assistant message; each
    reply is the rest of its own conversation. When the conversations part before their last
    reply (multi-turn Arena battles; HH-RLHF rows where one side holds two assistant turns in
    a row), each side's later turns stay in its reply as a transcript (reply_text): a reply is
    never joined to a history it did not follow.
    """
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    if n == len(a) and n == len(b):
        raise RowInvalid(f"{names[0]} and {names[1]} are identical")
    while n > 0 and (n >= len(a) or a[n]["role"] != "assistant"):
        n -= 1
    prompt = a[:n]
    if not any(m["role"] == "user" for m in prompt):
        raise RowInvalid(f"{names[0]} and {names[1]} do not start with the same user message")
    if n >= len(b) or b[n]["role"] != "assistant":
        raise RowInvalid(f"{names[1]} does not continue with an assistant reply")
    return prompt, reply_text(a[n:], names[0]), reply_text(b[n:], names[1])


def two_candidates(first: Candidate, second: Candidate, names: tuple[str, str]) -> None:
    if first.text == second.text:
        raise RowInvalid(f"{names[0]} and {names[1]} are the same text: nothing to compare")
