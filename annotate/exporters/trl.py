"""TRL's preference formats: `trl` ({prompt, chosen, rejected} strings) and
`trl-conversational` (the same keys holding lists of {role, content} messages)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from .base import ExportContext, margin, preference_extras, prompt_text


def record(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt": prompt_text(row["prompt"]),
        "chosen": row["chosen"],
        "rejected": row["rejected"],
    }
    if ctx.with_margin:
        out["margin"] = margin(row)
    out.update(preference_extras(row))
    return out


def conversational_record(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt": [
            {"role": m.get("role", "user"), "content": m.get("content", "")} for m in row["prompt"]
        ],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }
    if ctx.with_margin:
        out["margin"] = margin(row)
    out.update(preference_extras(row))
    return out


def schema(ctx: ExportContext) -> pa.Schema:
    """Column types of `record`, for Parquet."""
    fields = [
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
    ]
    if ctx.with_margin:
        fields.append(("margin", pa.float64()))
    fields += [
        ("pair_id", pa.int64()),
        ("split", pa.string()),
        ("votes_chosen", pa.int32()),
        ("votes_rejected", pa.int32()),
        ("votes_tie", pa.int32()),
        ("votes_both_bad", pa.int32()),
        ("agreement", pa.float64()),
        ("p_chosen", pa.float64()),
        ("tie", pa.bool_()),
        ("adjudicated", pa.bool_()),
    ]
    return pa.schema(fields)
