"""OpenAI preference fine-tuning (DPO): {input: {messages}, preferred_output,
non_preferred_output}. No extra keys: OpenAI's file validation accepts only its own."""

from __future__ import annotations

from typing import Any

from .base import ExportContext


def record(row: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    return {
        "input": {
            "messages": [
                {"role": m.get("role", "user"), "content": m.get("content", "")}
                for m in row["prompt"]
            ]
        },
        "preferred_output": [{"role": "assistant", "content": row["chosen"]}],
        "non_preferred_output": [{"role": "assistant", "content": row["rejected"]}],
    }
