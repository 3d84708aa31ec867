"""Import of preference data files into a Project: the one service behind the import_pairs
command, the API endpoint and the upload page.

One streaming pass in one transaction: rows are parsed one at a time and written in batches
of a few hundred with a handful of queries per batch (none per row), so 100,000 rows never sit
in memory at once; a rejected file rolls back whole.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from itertools import chain
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate.errors import ApplicationError
from annotate.hashing import content_hash
from annotate.importers.base import Candidate, PairSpec, ParsedRow, RowInvalid
from annotate.importers.detect import Importer, detect, is_set_importer, known_shapes
from annotate.importers.readers import read_rows
from annotate.models import (
    Choice,
    Comparison,
    ImportBatch,
    Pair,
    Project,
    Prompt,
    Response,
    Side,
    TaskKind,
    new_random_key,
)
from annotate.services.bulk import analyze, rows_insert
from annotate.services.catalog import prompt_hash, response_hash
from annotate.services.rankings import response_sets_create
from annotate.signals import pairs_imported

BATCH_ROWS = 500
# Bad lines listed in an answer and kept on the batch; the count covers them all.
MAX_ERRORS_LISTED = 1000


class ImportRejected(ApplicationError):
    """Nothing was imported. `errors` lists (line, message) for the first MAX_ERRORS_LISTED
    bad lines; `error_count` counts them all."""

    status = HTTPStatus.BAD_REQUEST
    code = "import_rejected"

    def __init__(
        self, message: str, errors: list[tuple[int, str]] | None = None, error_count: int = 0
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        self.error_count = max(error_count, len(self.errors))

    @property
    def extra(self) -> dict[str, Any]:
        lines = [{"line": line, "message": message} for line, message in self.errors]
        return {"errors": lines, "error_count": self.error_count}


@dataclass
class ImportResult:
    format: str
    rows: int = 0
    pairs_created: int = 0
    comparisons_created: int = 0
    duplicates_skipped: int = 0
    # Imports of rankings and ratings (annotate/services/imports_sets.py).
    sets_created: int = 0
    rankings_created: int = 0
    ratings_created: int = 0
    # Raters' judgments of sets among them (a rater's ranking and/or ratings of one set, one
    # judgment), counted in project.comparison_count with the comparisons.
    set_judgments_created: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0
    batch_id: int | None = None

    def add_error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append((line, message))


@dataclass
class _Keyed:
    """A parsed row with the import key of each of its judgments, per pair."""

    row: ParsedRow
    keys: list[list[str]]


def import_file(
    *,
    project: Project,
    path: str | Path,
    file_name: str | None = None,
    skip_invalid: bool = False,
    created_by: AbstractBaseUser | None = None,
) -> ImportResult:
    """Import one file. Raises ImportRejected, importing nothing, when the shape is unknown,
    when no row is good, or (without skip_invalid) when any row is bad."""
    file_name = file_name or Path(path).name
    # One pass in one transaction: good rows are written as they come; the first bad line
    # (without skip_invalid) stops the writing, the rest of the file is still read to name
    # every bad line, and the rejection rolls back what was written.
    with transaction.atomic():
        result = _import(
            project=project,
            path=path,
            file_name=file_name,
            skip_invalid=skip_invalid,
            created_by=created_by,
        )
        if project.task_kind != TaskKind.PAIRWISE:
            # A project that ranks or rates serves sets of K responses, made from what came.
            response_sets_create(project=project)
        if result.pairs_created:
            # Once the new pairs exist for other processes to read, whoever ranks pairs (the
            # reward model app) is told, without this app knowing who that is.
            transaction.on_commit(lambda: pairs_imported.send(sender=Project, project=project))
    return result


def _rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    try:
        for raw in read_rows(path):
            yield raw.line, raw.data, raw.error
    except UnicodeDecodeError:
        raise ImportRejected("The file is not UTF-8 text; nothing was imported.") from None


def _detect(line: int, data: dict[str, Any]) -> Importer:
    importer = detect(data)
    if importer is None:
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise ImportRejected(
            f"Unrecognised shape: line {line} has the fields {keys}. "
            f"Known shapes:\n{known_shapes()}",
            [(line, "unrecognised shape")],
        )
    return importer


def _import_key(base: str, judgment_key: str) -> str:
    key = f"{base}:{judgment_key}" if judgment_key else base
    # import_key holds 64 characters: longer external ids are stored as their hash.
    return key if len(key) <= 64 else content_hash(key)


_Row = tuple[int, dict[str, Any] | None, str]


def _import(
    *,
    project: Project,
    path: str | Path,
    file_name: str,
    skip_invalid: bool,
    created_by: AbstractBaseUser | None,
) -> ImportResult:
    result = ImportResult(format="")
    rows = _rows(path)
    first = _first_readable(rows, result)
    if first is None:
        _reject_if_bad(None, result, skip_invalid)
        raise AssertionError("a file without a readable row is always rejected")
    line, data, _error = first
    importer = _detect(line, data)
    batch = _batch_start(project, importer, file_name, created_by, result)
    # The shape is only known once the first row is read, so that row goes on with the rest.
    rows = chain([first], rows)
    if is_set_importer(importer):
        # Imported here: imports_sets reuses this module's writes.
        from annotate.services.imports_sets import sets_import

        return sets_import(
            project=project,
            batch=batch,
            importer=importer,
            rows=rows,
            skip_invalid=skip_invalid,
            result=result,
        )
    return _pairs_import(project, batch, importer, rows, skip_invalid, result)


def _first_readable(rows: Iterator[_Row], result: ImportResult) -> _Row | None:
    """The first line that could be read (its shape decides the importer), each unreadable
    line before it noted as an error; None when there is no such line."""
    for line, data, error in rows:
        if data is not None:
            return line, data, error
        result.add_error(line, error)
    return None


def _pairs_import(
    project: Project,
    batch: ImportBatch,
    importer: Importer,
    rows: Iterator[_Row],
    skip_invalid: bool,
    result: ImportResult,
) -> ImportResult:
    """Read the rest of the file (`rows`, its first data row included) and write its pairs."""
    # Identical rows without an id are told apart by their count so far, so that a file holding
    # the same judgment twice imports it twice, and re-importing the file adds nothing.
    seen: Counter[str] = Counter()
    pending: list[_Keyed] = []
    # Statistics are refreshed each time the import doubles its rows: a handful of times.
    analyze_at = 4 * BATCH_ROWS
    for line, data, error in rows:
        if data is None:
            result.add_error(line, error)
            continue
        row = _row_parsed(importer, line, data, result)
        # Without skip_invalid the first bad line stops the writing (the rejection rolls back
        # what was written); the rest of the file is still read to name every bad line.
        if row is None or not (skip_invalid or result.error_count == 0):
            continue
        pending.append(_Keyed(row, _row_keys(row, data, seen)))
        if len(pending) >= BATCH_ROWS:
            _write_batch(project, batch, pending, result)
            pending = []
            analyze_at = _analyze_if_doubled(result, analyze_at)
    _reject_if_bad(importer, result, skip_invalid)
    if pending:
        _write_batch(project, batch, pending, result)
    if not result.rows:
        raise ImportRejected(
            "No good rows; nothing was imported.", result.errors, result.error_count
        )
    _counts_write(project, batch, result)
    return result


def _row_parsed(
    importer: Importer, line: int, data: dict[str, Any], result: ImportResult
) -> ParsedRow | None:
    """The row parsed, or None with the line noted as an error when it is bad."""
    try:
        return importer.parse(data)
    except RowInvalid as exc:
        result.add_error(line, str(exc))
        return None


def _analyze_if_doubled(result: ImportResult, analyze_at: int) -> int:
    """Refresh the planner's statistics once the rows reach `analyze_at`; the next threshold."""
    if result.rows < analyze_at:
        return analyze_at
    analyze([Prompt, Response, Pair, Comparison])
    return analyze_at * 2


def _batch_start(
    project: Project,
    importer: Importer,
    file_name: str,
    created_by: AbstractBaseUser | None,
    result: ImportResult,
) -> ImportBatch:
    """The ImportBatch of this file, once its shape is known."""
    result.format = importer.NAME
    batch = ImportBatch.objects.create(
        project=project, file_name=file_name[:500], format=importer.NAME, created_by=created_by
    )
    result.batch_id = batch.pk
    return batch


def _row_keys(row: ParsedRow, data: dict[str, Any], seen: Counter[str]) -> list[list[str]]:
    """The import key of each judgment of each pair of the row."""
    if row.row_id:
        base = f"id:{row.row_id}"
    else:
        row_hash = content_hash(data)
        base = content_hash({"row": row_hash, "n": seen[row_hash]})
        seen[row_hash] += 1
    return [[_import_key(base, j.key) for j in spec.judgments] for spec in row.pairs]


def _reject_if_bad(importer: Importer | None, result: ImportResult, skip_invalid: bool) -> None:
    """ImportRejected when no row could be read, or (without skip_invalid) any row was bad."""
    errors = result.errors
    if importer is None:
        raise ImportRejected(
            "The file holds no rows that could be read; nothing was imported. "
            f"Known shapes:\n{known_shapes()}",
            errors,
            result.error_count,
        )
    if errors and not skip_invalid:
        count = result.error_count
        plural = "s" if count != 1 else ""
        listed = f" (the first {len(errors):,} are listed)" if count > len(errors) else ""
        raise ImportRejected(
            f"{count:,} bad line{plural}{listed}; nothing was imported.", errors, count
        )


def _counts_write(project: Project, batch: ImportBatch, result: ImportResult) -> None:
    Project.objects.filter(pk=project.pk).update(
        pair_count=F("pair_count") + result.pairs_created,
        comparison_count=F("comparison_count")
        + result.comparisons_created
        + result.set_judgments_created,
    )
    ImportBatch.objects.filter(pk=batch.pk).update(
        rows=result.rows,
        pairs_created=result.pairs_created,
        comparisons_created=result.comparisons_created,
        errors=[list(e) for e in result.errors],
    )


# The columns each import insert writes, every one of its table's but the id.
PROMPT_COLUMNS = ("project_id", "messages", "external_id", "metadata", "content_hash", "created_at")
RESPONSE_COLUMNS = (
    "prompt_id",
    "text",
    "model_name",
    "metadata",
    "sampling",
    "content_hash",
    "created_at",
    # What a generation job records (annotate/services/generation_run.py); none for an import.
    "generator_id",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
)
PAIR_COLUMNS = (
    "project_id",
    "prompt_id",
    "response_a_id",
    "response_b_id",
    "is_open",
    "gold",
    "priority",
    "random_key",
    "human_count",
    "ambiguous",
    "added_by_model",
    "model_p_a",
    "model_uncertainty",
    "judges_choice",
    "judges_min_p",
    "created_at",
)
COMPARISON_COLUMNS = (
    "pair_id",
    "project_id",
    "import_batch_id",
    "import_file",
    "choice",
    "left",
    "import_key",
    "random_key",
    "created_at",
    "labeler_id",
    "source",
    "strength",
    "reasons",
    "comment",
    "time_spent_ms",
    "is_repeat",
    "is_gold_check",
    "p_chosen",
)


def _pair_row(project: Project, key: PairKey, is_open: bool, gold: str, now: datetime) -> list[Any]:
    # A new Pair: no priority until a model rescores it, no judgments (nor judges' verdict:
    # an import stores no AI judges' comparisons), not set aside.
    row = {
        "project_id": project.pk,
        "prompt_id": key[0],
        "response_a_id": key[1],
        "response_b_id": key[2],
        "is_open": is_open,
        "gold": gold,
        "priority": 0.0,
        "random_key": new_random_key(),
        "human_count": 0,
        "ambiguous": False,
        "added_by_model": False,
        "model_p_a": None,
        "model_uncertainty": None,
        "judges_choice": "",
        "judges_min_p": None,
        "created_at": now,
    }
    return [row[c] for c in PAIR_COLUMNS]


def _comparison_row(
    pair_id: int,
    project: Project,
    batch: ImportBatch,
    *,
    choice: str,
    left: str,
    import_key: str,
    now: datetime,
) -> list[Any]:
    # An imported judgment: no labeler, strength, reasons, comment or timing.
    row = {
        "pair_id": pair_id,
        "project_id": project.pk,
        "import_batch_id": batch.pk,
        "import_file": batch.file_name,
        "choice": choice,
        "left": left,
        "import_key": import_key,
        "random_key": new_random_key(),
        "created_at": now,
        "labeler_id": None,
        "source": Comparison.Source.IMPORT.value,
        "strength": None,
        "reasons": "[]",
        "comment": "",
        "time_spent_ms": None,
        "is_repeat": False,
        "is_gold_check": False,
        "p_chosen": None,
    }
    return [row[c] for c in COMPARISON_COLUMNS]


def _write_batch(
    project: Project, batch: ImportBatch, pending: list[_Keyed], result: ImportResult
) -> None:
    """Prompts, Responses, Pairs and Comparisons of a few hundred rows: each kind is looked up
    with one query, the missing ones are inserted with one COPY (or executemany) and read back.

    Each insert names every column of its table (a test holds them to the models): the
    values the ORM would give are written out here, the defaults included."""
    row_prompt = _prompts_write(project, pending)
    responses = _responses_write(pending, row_prompt)
    pairs = _pairs_write(project, pending, row_prompt, responses)
    comparisons_created, changed_rows = _comparisons_write(project, batch, pairs)
    result.rows += len(pending)
    result.pairs_created += len(pairs.created)
    result.comparisons_created += comparisons_created
    result.duplicates_skipped += len(pending) - len(changed_rows)


def _prompts_write(project: Project, pending: list[_Keyed]) -> list[int]:
    """The Prompt id of each row, by content hash, creating the missing ones; the first row
    that brings a new prompt sets its external id and metadata."""
    prompt_rows: dict[str, ParsedRow] = {}
    row_hashes = [prompt_hash(item.row.prompt) for item in pending]
    for item, h in zip(pending, row_hashes, strict=True):
        prompt_rows.setdefault(h, item.row)

    def prompt_ids() -> dict[str, int]:
        found = Prompt.objects.filter(project=project, content_hash__in=list(prompt_rows))
        return dict(found.values_list("content_hash", "id"))

    ids = prompt_ids()
    now = timezone.now()
    missing = [
        (
            project.pk,
            json.dumps(row.prompt),
            row.external_id[:200],
            json.dumps(row.metadata),
            h,
            now,
        )
        for h, row in prompt_rows.items()
        if h not in ids
    ]
    if missing:
        rows_insert(Prompt, PROMPT_COLUMNS, missing)
        ids = prompt_ids()
    return [ids[h] for h in row_hashes]


@dataclass
class _Responses:
    """Response ids by (prompt id, content hash), and the content hash of each text."""

    ids: dict[tuple[int, str], int]
    text_hashes: dict[str, str]

    def id_of(self, prompt_id: int, candidate: Candidate) -> int:
        return self.ids[(prompt_id, self.text_hashes[candidate.text])]


def _responses_write(pending: list[_Keyed], row_prompt: list[int]) -> _Responses:
    """The rows' Responses, by (prompt, content hash), creating the missing ones."""
    text_hashes: dict[str, str] = {}
    wanted: dict[tuple[int, str], Candidate] = {}
    for item, prompt_id in zip(pending, row_prompt, strict=True):
        for spec in item.row.pairs:
            for candidate in (spec.first, spec.second):
                h = text_hashes.get(candidate.text) or response_hash(candidate.text)
                text_hashes[candidate.text] = h
                wanted.setdefault((prompt_id, h), candidate)

    def response_ids() -> dict[tuple[int, str], int]:
        # Filtering on the prompt alone reads one index range per prompt; adding
        # `content_hash IN` would make the database probe every (prompt, hash) combination.
        found = Response.objects.filter(prompt_id__in={k[0] for k in wanted})
        rows = found.values_list("prompt_id", "content_hash", "id")
        return {(p, h): i for p, h, i in rows if (p, h) in wanted}

    ids = response_ids()
    now = timezone.now()
    missing = [
        (k[0], c.text, c.model_name[:200], "{}", "{}", k[1], now, None, None, None, None)
        for k, c in wanted.items()
        if k not in ids
    ]
    if missing:
        rows_insert(Response, RESPONSE_COLUMNS, missing)
        ids = response_ids()
    return _Responses(ids, text_hashes)


PairKey = tuple[int, int, int]  # (prompt id, smaller response id, larger response id)


@dataclass
class _Placed:
    """One pair of one row, placed: its key, whether its candidates came in the opposite order
    of the stored pair's, and the import keys of its judgments."""

    row_index: int
    key: PairKey
    swapped: bool
    spec: PairSpec
    keys: list[str]


@dataclass
class _Pairs:
    placed: list[_Placed]
    ids: dict[PairKey, int]
    created: list[PairKey]


def _pairs_write(
    project: Project, pending: list[_Keyed], row_prompt: list[int], responses: _Responses
) -> _Pairs:
    """The rows' Pairs, by (prompt, smaller response id, larger one), creating the missing
    ones. A pair that arrives with a judgment is training data, not labeling work: it is
    created closed."""
    placed: list[_Placed] = []
    labelled: set[PairKey] = set()
    golds: dict[PairKey, str] = {}
    for index, (item, prompt_id) in enumerate(zip(pending, row_prompt, strict=True)):
        for spec, keys in zip(item.row.pairs, item.keys, strict=True):
            first = responses.id_of(prompt_id, spec.first)
            second = responses.id_of(prompt_id, spec.second)
            key = (prompt_id, min(first, second), max(first, second))
            placed.append(_Placed(index, key, first > second, spec, keys))
            if spec.judgments:
                labelled.add(key)
            if spec.gold:
                swap = {"a": "b", "b": "a"} if first > second else {}
                golds[key] = swap.get(spec.gold, spec.gold)
    pair_keys = dict.fromkeys(p.key for p in placed)

    def pair_ids() -> dict[PairKey, int]:
        found = Pair.objects.filter(prompt_id__in={k[0] for k in pair_keys})
        rows = found.values_list("prompt_id", "response_a_id", "response_b_id", "id")
        return {(p, a, b): i for p, a, b, i in rows if (p, a, b) in pair_keys}

    ids = pair_ids()
    created = [k for k in pair_keys if k not in ids]
    if created:
        now = timezone.now()
        rows_insert(
            Pair,
            PAIR_COLUMNS,
            [_pair_row(project, k, k not in labelled, golds.get(k, ""), now) for k in created],
        )
        ids = pair_ids()
    return _Pairs(placed, ids, created)


def _comparisons_write(project: Project, batch: ImportBatch, pairs: _Pairs) -> tuple[int, set[int]]:
    """The rows' judgments as Comparisons, by (pair, import key), skipping those already
    imported; (how many were created, the indexes of the rows that added anything)."""
    existing = set(
        Comparison.objects.filter(
            pair_id__in={pairs.ids[p.key] for p in pairs.placed if p.keys},
            source=Comparison.Source.IMPORT,
        ).values_list("pair_id", "import_key")
    )
    unclaimed = set(pairs.created)
    now = timezone.now()
    new_comparisons = []
    changed_rows: set[int] = set()
    for placed in pairs.placed:
        pair_id = pairs.ids[placed.key]
        if placed.key in unclaimed:
            # Only the first row that brings a new pair made it; a repeat of it adds nothing.
            unclaimed.discard(placed.key)
            changed_rows.add(placed.row_index)
        for judgment, import_key in zip(placed.spec.judgments, placed.keys, strict=True):
            if (pair_id, import_key) in existing:
                continue
            existing.add((pair_id, import_key))
            changed_rows.add(placed.row_index)
            new_comparisons.append(
                _comparison_row(
                    pair_id,
                    project,
                    batch,
                    choice=_choice(judgment.choice, placed.swapped),
                    left=_left(judgment.left, placed.swapped),
                    import_key=import_key,
                    now=now,
                )
            )
    rows_insert(Comparison, COMPARISON_COLUMNS, new_comparisons)
    return len(new_comparisons), changed_rows


def _choice(choice: str, swapped: bool) -> str:
    """A judgment by candidate -> the stored choice, canonical by response."""
    if choice == "first":
        return Choice.B.value if swapped else Choice.A.value
    if choice == "second":
        return Choice.A.value if swapped else Choice.B.value
    return choice


def _left(left: str, swapped: bool) -> str:
    """Which candidate the source showed on the left -> which response (a/b) it was."""
    if not left:
        return ""
    first_is_b = swapped
    on_left_is_b = first_is_b if left == "first" else not first_is_b
    return Side.B.value if on_left_is_b else Side.A.value


def import_upload(
    *, project: Project, upload: Any, skip_invalid: bool = False, created_by: Any = None
) -> ImportResult:
    """`import_file` for an uploaded file. Uploads are written to a temporary file on disk
    (FILE_UPLOAD_MAX_MEMORY_SIZE is small), so a large file is never held in memory."""
    try:
        return import_file(
            project=project,
            path=upload.temporary_file_path(),
            file_name=upload.name,
            skip_invalid=skip_invalid,
            created_by=created_by,
        )
    finally:
        upload.close()
