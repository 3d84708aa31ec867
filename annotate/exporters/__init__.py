"""Output formats of a dataset export: one module per format, each turning rows into records;
this registry pairs each format with its container (JSON Lines, CSV or Parquet)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import hh, openai, raw, trl
from .base import ExportContext, JsonlWriter
from .csvfile import CsvWriter
from .parquet import ParquetWriter

PREFERENCE = "preference"  # one row per pair, from annotate.selectors.dataset.preference_rows
COMPARISON = "comparison"  # one row per comparison

# csv and parquet take either shape: the trl table (one row per pair) or the raw one.
SHAPES = ("trl", "raw")
FORMAT_NAMES = ("trl", "trl-conversational", "hh", "openai", "raw", "csv", "parquet")


@dataclass(frozen=True)
class ExportFormat:
    name: str
    shape: str  # trl | raw: the columns
    rows: str  # PREFERENCE | COMPARISON: what the rows are
    container: str  # jsonl | csv | parquet
    record: Callable[[dict[str, Any], ExportContext], dict[str, Any]]
    description: str

    @property
    def extension(self) -> str:
        return self.container

    def writer(self, stream: BinaryIO, ctx: ExportContext):
        """A writer with `write(record)` and `close()` onto a binary stream."""
        if self.container == "jsonl":
            return JsonlWriter(stream)
        schema = (raw if self.shape == "raw" else trl).schema(ctx)
        if self.container == "csv":
            return CsvWriter(stream, schema.names)
        return ParquetWriter(stream, schema)


_JSONL = {
    "trl": ExportFormat(
        "trl",
        "trl",
        PREFERENCE,
        "jsonl",
        trl.record,
        "TRL preference JSONL: {prompt, chosen, rejected} strings (plus margin).",
    ),
    "trl-conversational": ExportFormat(
        "trl-conversational",
        "trl-conversational",
        PREFERENCE,
        "jsonl",
        trl.conversational_record,
        "TRL conversational JSONL: prompt, chosen and rejected as {role, content} lists.",
    ),
    "hh": ExportFormat(
        "hh",
        "hh",
        PREFERENCE,
        "jsonl",
        hh.record,
        "Anthropic HH-RLHF JSONL: whole transcripts {chosen, rejected}.",
    ),
    "openai": ExportFormat(
        "openai",
        "openai",
        PREFERENCE,
        "jsonl",
        openai.record,
        "OpenAI preference fine-tuning JSONL: {input, preferred_output, non_preferred_output}.",
    ),
    "raw": ExportFormat(
        "raw",
        "raw",
        COMPARISON,
        "jsonl",
        raw.record,
        "Every comparison, one JSON line each (labelers pseudonymous).",
    ),
}


def get_format(name: str, shape: str = "trl") -> ExportFormat:
    """The format called `name`; csv and parquet take `shape` (trl or raw). KeyError if unknown."""
    if name in _JSONL:
        return _JSONL[name]
    if name in ("csv", "parquet") and shape in SHAPES:
        rows = COMPARISON if shape == "raw" else PREFERENCE
        builder = raw.record if shape == "raw" else trl.record
        what = "every comparison" if shape == "raw" else "one preference row per pair"
        return ExportFormat(
            name, shape, rows, name, builder, f"{name.upper()} of {what} ({shape} columns)."
        )
    raise KeyError(name)


__all__ = ["FORMAT_NAMES", "SHAPES", "ExportContext", "ExportFormat", "get_format"]
