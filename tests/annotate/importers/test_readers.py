"""annotate/importers/readers.py: containers told from the first character, line numbers, and
a JSON array read element by element."""

import gzip
import json
import tracemalloc

import pytest

from annotate.importers.readers import read_rows
from annotate.services.imports import ImportRejected, import_file


def rows(path):
    return [(r.line, r.data, r.error) for r in read_rows(path)]


def test_json_array_items_carry_the_line_they_start_on(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('\ufeff[\n  {"a": 1},\n  {\n    "b": "x\\ny"\n  },\n  7,\n  {"c": 3}\n]\n')
    assert rows(path) == [
        (2, {"a": 1}, ""),
        (3, {"b": "x\ny"}, ""),
        (6, None, "is not a JSON object"),
        (7, {"c": 3}, ""),
    ]


def test_a_broken_json_array_reports_where_reading_stopped(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('[{"a": 1},\n{"b": ')
    assert rows(path) == [
        (1, {"a": 1}, ""),
        (2, None, "is not valid JSON (Expecting value); reading stopped"),
    ]


def test_an_element_larger_than_the_read_chunk(tmp_path):
    big = "word " * 100_000  # 500 KB, several read chunks
    path = tmp_path / "export.json"
    path.write_text(json.dumps([{"text": big}, {"text": "small"}]))
    assert [r[1]["text"] for r in rows(path)] == [big, "small"]


def test_a_json_array_streams_in_little_memory(tmp_path):
    path = tmp_path / "export.json"
    with open(path, "w") as f:
        f.write("[")
        for i in range(20_000):
            f.write(("," if i else "") + json.dumps({"id": i, "data": {"text": "x" * 1500}}))
        f.write("]")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_rows(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert size > 30_000_000 and peak < 2_000_000


def test_csv_lines_count_multi_line_cells_and_header_problems(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('prompt,response_a,response_b\nQ,"two\nlines",b\nR,c,d\n')
    assert [r[0] for r in rows(path)] == [2, 4]
    path.write_text("prompt,prompt,x\n1,2,3\n")
    assert rows(path) == [(1, None, "the header repeats columns: prompt")]


@pytest.mark.django_db
def test_files_that_are_not_utf8_or_empty_are_refused(project, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("prompt,response_a,response_b\nCaf\xe9,a,b\n".encode("latin-1"))
    with pytest.raises(ImportRejected, match="not UTF-8"):
        import_file(project=project, path=latin)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ImportRejected, match="no rows"):
        import_file(project=project, path=empty)


def test_a_gzip_file_is_read_as_the_text_it_holds(tmp_path):
    for name, text in [("rows.jsonl", '{"a": 1}\n\n{"b": 2}\n'), ("rows.csv", "x,y\n1,2\n")]:
        path = tmp_path / f"{name}.upload"  # told from its bytes: an upload has no .gz name
        path.write_bytes(gzip.compress(("\ufeff" + text).encode()))
        assert rows(path) == (
            [(1, {"a": 1}, ""), (3, {"b": 2}, "")]
            if "jsonl" in name
            else [(2, {"x": "1", "y": "2"}, "")]
        )


def test_a_gzip_file_cut_short_names_where_reading_stopped(tmp_path):
    data = gzip.compress("".join(json.dumps({"n": i}) + "\n" for i in range(5000)).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    read = rows(path)
    line, data_, error = read[-1]
    assert data_ is None and line == len(read)
    assert error.startswith("cannot be read: the gzip file is damaged or cut short")
    assert error.endswith("; reading stopped")
    assert all(r[1] == {"n": i} for i, r in enumerate(read[:-1]))
