"""Open-Assistant message trees (oasst1/oasst2 `*.trees.jsonl`): `{message_tree_id, prompt:
{message_id, role: "prompter", text, replies: [{role: "assistant", text, rank, replies}]}}`.

Every prompter message whose assistant replies were ranked is one set: the conversation down
to it is the prompt, the ranked replies (those with a `rank`) are the responses. The raw
ranking events on that message (`events.ranking`: `ranked_message_ids`, best first, one per
annotator; `not_rankable` marks them all bad) are its rankings; without events, the merged
`rank` (0 best) is one ranking, so that a tree never counts the same judgment twice. Ranks of
one message's replies must not repeat. Events may carry `tied_groups` (prefloop's exports
write them for tied ranks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import Candidate, RowInvalid, json_type, optional_text, text_field
from .sets import SETS, ParsedSet, RankSpec, distinct_candidates, groups_from_ranks

NAME = "oasst"
KIND = SETS
# One tree may hold several ranked messages: several sets per row.
MANY = True
SHAPE = (
    '{"message_tree_id", "prompt": {"text", "role", "replies": [{"text", "rank", '
    '"replies"}]}}: Open-Assistant message trees'
)
ROLES = {"prompter": "user", "assistant": "assistant"}


def matches(row: dict[str, Any]) -> bool:
    return "message_tree_id" in row and isinstance(row.get("prompt"), dict)


def _walk(
    node: dict[str, Any], path: list[dict[str, str]], where: str
) -> Iterator[tuple[dict[str, Any], list[dict[str, str]], str]]:
    """(prompter message, the conversation down to it, where) of every prompter message."""
    role = ROLES.get(node.get("role"))
    if role is None:
        raise RowInvalid(f"{where} has role {node.get('role')!r}, not prompter or assistant")
    conversation = [*path, {"role": role, "content": text_field(node, "text")}]
    if role == "user":
        yield node, conversation, where
    replies = node.get("replies") or []
    if not isinstance(replies, list):
        raise RowInvalid(f"{where} replies must be a list, not {json_type(replies)}")
    for i, reply in enumerate(replies, 1):
        if not isinstance(reply, dict):
            raise RowInvalid(f"{where} reply {i} must be an object")
        yield from _walk(reply, conversation, f"{where} reply {i}")


def _rankings(node: dict[str, Any], ids: list[str], where: str) -> list[RankSpec]:
    events = (node.get("events") or {}).get("ranking") or []
    index = {message_id: i for i, message_id in enumerate(ids)}
    rankings = []
    for n, event in enumerate(events, 1):
        at = f"{where} ranking event {n}"
        if not isinstance(event, dict):
            raise RowInvalid(f"{at} must be an object")
        listed = event.get("ranked_message_ids") or []
        repeated = sorted({m for m in listed if listed.count(m) > 1})
        if repeated:
            raise RowInvalid(f"{at} ranks {', '.join(repeated)} twice")
        if sorted(listed) != sorted(ids):
            raise RowInvalid(f"{at} does not rank exactly the ranked replies")
        tied = event.get("tied_groups") or [[m] for m in listed]
        if not isinstance(tied, list) or sorted(m for g in tied for m in g) != sorted(ids):
            raise RowInvalid(f"{at} tied_groups do not hold exactly the ranked replies")
        groups = [[index[m] for m in group] for group in tied]
        key = f"event:{event.get('user_id') or ''}:{n}"
        rankings.append(RankSpec(groups, all_bad=bool(event.get("not_rankable")), key=key))
    return rankings


def _set(node: dict[str, Any], prompt: list[dict[str, str]], where: str) -> ParsedSet | None:
    replies = [
        r
        for r in node.get("replies") or []
        if r.get("role") == "assistant" and r.get("rank") is not None and not r.get("deleted")
    ]
    if len(replies) < 2:
        return None
    candidates = [Candidate(text_field(r, "text"), optional_text(r, "model_name")) for r in replies]
    distinct_candidates(candidates, f"{where}: replies")
    ids = [str(r.get("message_id", i)) for i, r in enumerate(replies)]
    rankings = _rankings(node, ids, where)
    if not rankings:
        ranks = [(i, r["rank"]) for i, r in enumerate(replies)]
        rankings = [RankSpec(groups_from_ranks(ranks, f"{where}: replies", ties=False), key="rank")]
    return ParsedSet(
        prompt=prompt,
        candidates=candidates,
        rankings=rankings,
        external_id=str(node.get("message_id") or ""),
        metadata={k: node[k] for k in ("lang", "message_tree_id") if node.get(k)},
        row_id=str(node.get("message_id") or ""),
    )


def parse_many(row: dict[str, Any]) -> list[ParsedSet]:
    tree = optional_text(row, "message_tree_id")
    sets = []
    for node, conversation, where in _walk(row["prompt"], [], "prompt"):
        found = _set(node, conversation, where)
        if found is not None:
            found.metadata.setdefault("message_tree_id", tree)
            if not found.row_id:
                found.row_id = f"{tree}:{where}"
            sets.append(found)
    if not sets:
        raise RowInvalid("the tree holds no prompter message with two or more ranked replies")
    return sets


def parse(row: dict[str, Any]) -> ParsedSet:
    """The first set of the tree (the import reads them all through parse_many)."""
    return parse_many(row)[0]
