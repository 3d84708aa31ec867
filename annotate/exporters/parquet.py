"""Parquet via pyarrow, in either shape (`trl` or `raw`), written one row group at a time so
that memory stays flat however many rows there are."""

from __future__ import annotations

from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 20_000


class ParquetWriter:
    def __init__(self, stream: BinaryIO, schema: pa.Schema) -> None:
        self._schema = schema
        self._writer = pq.ParquetWriter(stream, schema, compression="zstd")
        self._columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        self._pending = 0

    def write(self, record: dict[str, Any]) -> None:
        for name, values in self._columns.items():
            values.append(record[name])
        self._pending += 1
        if self._pending >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_pydict(self._columns, schema=self._schema)
            self._writer.write_table(table)
            for values in self._columns.values():
                values.clear()
            self._pending = 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
