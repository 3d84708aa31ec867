"""Anthropic HH-RLHF: whole transcripts {chosen, rejected} that differ in the last reply."""

from __future__ import annotations

from typing import Any

from .base import ExportContext, margin, preference_extras, transcript


def record(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "chosen": transcript(row["prompt"], row["chosen"]),
        "rejected": transcript(row["prompt"], row["rejected"]),
    }
    if ctx.with_margin:
        out["margin"] = margin(row)
    out.update(preference_extras(row))
    return out
