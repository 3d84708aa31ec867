"""CSV, in either shape (`trl` or `raw`): nested values as JSON text, booleans as true/false,
missing values as empty cells. Text that a spreadsheet would run as a formula gets a leading
apostrophe (JSONL and Parquet keep every text exactly)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any, BinaryIO

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets: a
# labeler's comment `=HYPERLINK(...)` or a model's reply would run when the file is opened
# (OWASP's "CSV injection"). The apostrophe makes it text and is not shown.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return neutralise(json.dumps(value, ensure_ascii=False))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return neutralise(value)
    return value


class CsvWriter:
    def __init__(self, stream: BinaryIO, columns: list[str]) -> None:
        # newline="" lets the csv module write its own \r\n row ends and quote embedded newlines.
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
        self._writer = csv.writer(self._text)
        self._columns = columns
        self._writer.writerow(columns)

    def write(self, record: dict[str, Any]) -> None:
        self._writer.writerow([_cell(record[c]) for c in self._columns])

    def close(self) -> None:
        self._text.flush()
        # The binary stream belongs to the caller: detach so that it stays open.
        self._text.detach()
