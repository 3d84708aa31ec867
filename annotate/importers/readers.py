"""Streaming readers: a file -> (line number, row) one at a time, never the whole file.

The container is told from the first character: `[` a JSON array (Label Studio exports;
parsed one element at a time), `{` JSON Lines, anything else CSV with a header row. A gzip
file (told from its first bytes, not its name: an upload's temporary file has none) is read
as the text it holds, decompressed as it streams: datasets are published so (HH-RLHF's
`test.jsonl.gz`).
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from annotate import json_limits

CHUNK = 1 << 16
# The longest line (JSON Lines), CSV record or JSON array element read, in characters: a
# file that is one huge line would otherwise be held in memory whole. Replies longer than
# csv's default 128 KiB cell limit are ordinary in LLM data; 64 MiB is far past any real row.
MAX_LINE_CHARS = 64 << 20
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class RawRow:
    line: int
    data: dict[str, Any] | None
    error: str = ""


def open_text(path: str | Path, newline: str | None = None) -> IO[str]:
    """The file as UTF-8 text (a leading BOM dropped), decompressed when it is gzip."""
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline=newline)
    return open(path, encoding="utf-8-sig", newline=newline)


def container_of(path: str | Path) -> str:
    with open_text(path) as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return "empty"
            stripped = chunk.lstrip()
            if stripped:
                return {"[": "json", "{": "jsonl"}.get(stripped[0], "csv")


def read_rows(path: str | Path, max_line: int | None = None) -> Iterator[RawRow]:
    max_line = max_line or MAX_LINE_CHARS
    try:
        container = container_of(path)
    except BROKEN_GZIP as exc:
        return iter([RawRow(1, None, _broken(exc))])
    if container == "empty":
        return iter(())
    reader = {"json": _json_array, "jsonl": _json_lines, "csv": _csv}[container]
    return _until_broken(reader(path, max_line))


# A gzip file cut short or damaged: found only when the reading reaches the damage.
BROKEN_GZIP = (gzip.BadGzipFile, EOFError, zlib.error)


def _broken(exc: Exception) -> str:
    return f"cannot be read: the gzip file is damaged or cut short ({exc}); reading stopped"


def _until_broken(rows: Iterator[RawRow]) -> Iterator[RawRow]:
    line = 0
    try:
        for row in rows:
            line = row.line
            yield row
    except BROKEN_GZIP as exc:
        yield RawRow(line + 1, None, _broken(exc))


def _too_long(max_line: int) -> str:
    return f"is longer than {max_line:,} characters"


def _object(line: int, value: Any) -> RawRow:
    if not isinstance(value, dict):
        return RawRow(line, None, "is not a JSON object")
    return RawRow(line, value)


def _json_lines(path: str | Path, max_line: int) -> Iterator[RawRow]:
    with open_text(path) as f:
        number = 0
        while line := f.readline(max_line + 1):
            number += 1
            if len(line) > max_line:
                # The rest of the line is read in pieces and dropped, never held whole.
                while (rest := f.readline(CHUNK)) and not rest.endswith("\n"):
                    pass
                yield RawRow(number, None, _too_long(max_line))
                continue
            if not line.strip():
                continue
            try:
                value = json_limits.loads(line)
            except json.JSONDecodeError as exc:
                yield RawRow(number, None, f"is not valid JSON ({exc.msg}, column {exc.colno})")
                continue
            except json_limits.TooDeep as exc:
                yield RawRow(number, None, f"is refused: {exc}")
                continue
            yield _object(number, value)


def _csv(path: str | Path, max_line: int) -> Iterator[RawRow]:
    csv.field_size_limit(max_line)
    with open_text(path, newline="") as f:
        reader = csv.DictReader(f)
        try:
            if reader.fieldnames is None:
                return
        except csv.Error as exc:
            yield RawRow(1, None, f"is not a CSV header ({exc})")
            return
        try:
            yield from _csv_records(reader)
        except csv.Error as exc:
            # A cell over the limit (or a broken quote) leaves the reader lost in the file.
            yield RawRow(reader.line_num, None, f"is refused ({exc}); reading stopped")


def _csv_records(reader: csv.DictReader) -> Iterator[RawRow]:
    header = reader.fieldnames
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        yield RawRow(1, None, f"the header repeats columns: {', '.join(duplicates)}")
        return
    end = reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num
        if None in row:
            yield RawRow(start, None, f"has {len(row[None])} more cells than the header")
        elif any(value is None for value in row.values()):
            yield RawRow(start, None, "has fewer cells than the header")
        else:
            yield RawRow(start, row)


def _json_array(path: str | Path, max_line: int) -> Iterator[RawRow]:
    with open_text(path) as f:
        yield from _ArrayReader(f, max_line).rows()


class _ArrayReader:
    """Elements of a top-level JSON array, decoded one by one (json's C decoder) from a
    growing buffer, each with the line it starts on.

    Not ijson (3.6, yajl2_c), though it read a 153 MB array of 200,000 pairs faster (2.7 s
    against 3.3 s, best runs on the shared 2-core machine): it reports no positions, so the
    line of each element would be lost; its errors are yajl's multi-line texts; and the path
    it builds for every event costs memory quadratic in nesting depth before any depth check
    can run (10,000 nested `[`, a 20 KB file, took 253 MB; 100,000 had the process killed).
    """

    def __init__(self, f: TextIO, max_line: int) -> None:
        self.f, self.max_line = f, max_line
        self.decoder = json.JSONDecoder()
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def rows(self) -> Iterator[RawRow]:
        if self._skip_space() != "[":
            yield RawRow(self.line, None, "is not a JSON array")
            return
        self.pos += 1
        first = True
        while (char := self._skip_space()) != "]":
            if not first:
                if char != ",":
                    yield RawRow(self.line, None, "is not valid JSON (expected ',' or ']')")
                    return
                self.pos += 1
                self._skip_space()
            first = False
            row, stop = self._element()
            yield row
            if stop:
                return

    def _element(self) -> tuple[RawRow, bool]:
        """The element at `pos` as a row, and whether reading stops there."""
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                json_limits.check_depth(value)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > self.max_line:
                    return self._stop(_too_long(self.max_line))
                if self._more():
                    continue
                return self._stop(f"is not valid JSON ({exc.msg})")
            except (RecursionError, json_limits.TooDeep):
                return self._stop(f"is refused: {json_limits.TooDeep()}")
            # A number or literal at the end of the buffer may go on in the next chunk.
            if end == len(self.buf) and self._more():
                continue
            start = self.line
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return _object(start, value), False

    def _stop(self, error: str) -> tuple[RawRow, bool]:
        return RawRow(self.line, None, f"{error}; reading stopped"), True

    def _more(self) -> bool:
        if self.eof:
            return False
        # Reading as much again as is buffered keeps a huge element linear to decode.
        chunk = self.f.read(max(CHUNK, len(self.buf) - self.pos))
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        self.eof = not chunk
        return bool(chunk)

    def _skip_space(self) -> str:
        """The next character that is not white space ("" at the end), counting lines."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.line += self.buf[self.pos] == "\n"
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""
