"""`oasst`: one Open-Assistant message tree per ranked set. The prompt's turns are a chain of
prompter and assistant messages; the set's responses are the last prompter message's replies,
`rank` their consensus (mean place over the rankings, 0 best), and each ranking is a raw
`events.ranking` event (`ranked_message_ids` best first, `tied_groups` when it has ties,
`not_rankable` when marked all bad)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .sets import SetBundle, consensus

ROLES = {"user": "prompter", "assistant": "assistant"}


def writable(bundle: SetBundle) -> bool:
    """A tree needs a prompt of user and assistant turns ending with the user, and a ranking."""
    roles = [m.get("role") for m in bundle.prompt]
    ranked = any(j.groups for j in bundle.judgments)
    return ranked and all(r in ROLES for r in roles) and roles[-1] == "user"


def records(bundle: SetBundle) -> Iterator[dict[str, Any]]:
    if not writable(bundle):
        return
    tree = f"set-{bundle.set_id}"
    ids = {r: f"{tree}-r{r}" for r in bundle.response_ids}
    order = consensus(bundle)
    events = []
    for judgment in bundle.judgments:
        if not judgment.groups:
            continue
        groups = [sorted(ids[r] for r in group) for group in judgment.groups]
        event: dict[str, Any] = {
            "type": "ranking",
            "user_id": judgment.rater,
            "ranking": [order.index(int(m.rsplit("-r", 1)[1])) for g in groups for m in g],
            "ranked_message_ids": [m for g in groups for m in g],
            "not_rankable": judgment.all_bad,
        }
        if any(len(g) > 1 for g in groups):
            event["tied_groups"] = groups
        events.append(event)
    replies = [
        {"message_id": ids[r], "role": "assistant", "text": bundle.text(r), "rank": n}
        | ({"model_name": bundle.model(r)} if bundle.model(r) else {})
        for n, r in enumerate(order)
    ]
    node: dict[str, Any] | None = None
    for i, message in reversed(list(enumerate(bundle.prompt))):
        current = {
            "message_id": f"{tree}-m{i}",
            "role": ROLES[message["role"]],
            "text": message.get("content", ""),
            "replies": [node] if node else replies,
        }
        if node is None:
            current["events"] = {"ranking": events}
        node = current
    yield {"message_tree_id": tree, "tree_state": "ready_for_export", "prompt": node}
