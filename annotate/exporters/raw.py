"""`raw`: every comparison that counts under the filter, one row each, labelers pseudonymous
unless real usernames are asked for."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pyarrow as pa
from django.conf import settings

from annotate.splits import split_of

from .base import ExportContext


def labeler_pseudonym(user_id: int) -> str:
    """A stable id that cannot be turned back into the user without the SECRET_KEY."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"prefloop-labeler:{user_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"labeler-{digest[:16]}"


def _labeler(row: dict[str, Any], ctx: ExportContext) -> str | None:
    """The labeler column, one HMAC per labeler per export."""
    user_id = row["labeler_id"]
    if user_id is None:
        return None
    if ctx.real_usernames:
        return row["labeler__username"]
    names = ctx.memo.setdefault("labelers", {})
    name = names.get(user_id)
    if name is None:
        name = names[user_id] = labeler_pseudonym(user_id)
    return name


def _pair_columns(row: dict[str, Any], ctx: ExportContext) -> tuple[str, list[dict[str, str]]]:
    """(split, prompt) of the row's pair: the split's sha256 and the prompt's JSON decoding
    done once per pair, since rows come in pair order (a pair's judgments one after another)."""
    last = ctx.memo.get("pair")
    if last is not None and last[0] == row["pair_id"]:
        return last[1], last[2]
    split = split_of(row["pair__prompt__content_hash"], ctx.validation_share, ctx.test_share)
    prompt = [
        {"role": m.get("role", "user"), "content": m.get("content", "")}
        for m in json.loads(row["prompt_json"])
    ]
    ctx.memo["pair"] = (row["pair_id"], split, prompt)
    return split, prompt


def record(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    """One comparison. `row["prompt_json"]` is the prompt's messages as JSON text."""
    split, prompt = _pair_columns(row, ctx)
    strength = row["strength"]
    scale = ctx.strength_labels
    return {
        "comparison_id": row["id"],
        "pair_id": row["pair_id"],
        "split": split,
        "prompt": prompt,
        "response_a": row["pair__response_a__text"],
        "response_b": row["pair__response_b__text"],
        "model_a": row["pair__response_a__model_name"],
        "model_b": row["pair__response_b__model_name"],
        # Canonical by response: "a" means response_a is better, whichever side it was shown.
        "choice": row["choice"],
        "strength": strength,
        "strength_label": scale[strength - 1] if strength and strength <= len(scale) else None,
        # Which response was on the left of the labeler's screen ("" when not recorded).
        "left": row["left"],
        "labeler": _labeler(row, ctx),
        "source": row["source"],
        "reasons": list(row["reasons"] or []),
        "comment": row["comment"],
        "time_spent_ms": row["time_spent_ms"],
        "created_at": row["created_at"],
        "is_gold_check": row["is_gold_check"],
        "import_file": row["import_file"],
    }


def schema(ctx: ExportContext) -> pa.Schema:
    """Column types of `record`, for Parquet."""
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("comparison_id", pa.int64()),
            ("pair_id", pa.int64()),
            ("split", pa.string()),
            ("prompt", pa.list_(message)),
            ("response_a", pa.string()),
            ("response_b", pa.string()),
            ("model_a", pa.string()),
            ("model_b", pa.string()),
            ("choice", pa.string()),
            ("strength", pa.int32()),
            ("strength_label", pa.string()),
            ("left", pa.string()),
            ("labeler", pa.string()),
            ("source", pa.string()),
            ("reasons", pa.list_(pa.string())),
            ("comment", pa.string()),
            ("time_spent_ms", pa.int64()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("is_gold_check", pa.bool_()),
            ("import_file", pa.string()),
        ]
    )
