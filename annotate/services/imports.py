"""Import of preference data files into a Project: the one service behind the import_pairs
command, the API endpoint and the upload page.

Two streaming passes: the first reads every row and collects what is wrong; the second, in
one transaction, writes the good rows in batches with bulk queries (a few queries per batch,
none per row), so 100,000 rows never sit in memory at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from annotate.hashing import content_hash
from annotate.importers.base import ParsedRow, RowInvalid
from annotate.importers.detect import Importer, detect, known_shapes
from annotate.importers.readers import read_rows
from annotate.models import Choice, Comparison, ImportBatch, Pair, Project, Prompt, Response, Side
from annotate.services.catalog import prompt_hash, response_hash

BATCH_ROWS = 500


class ImportRejected(Exception):
    """Nothing was imported. `errors` lists (line, message) for every bad line."""

    def __init__(self, message: str, errors: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


@dataclass
class ImportResult:
    format: str
    rows: int = 0
    pairs_created: int = 0
    comparisons_created: int = 0
    duplicates_skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    batch_id: int | None = None


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
    importer, good, errors = _validate(path)
    if errors and not skip_invalid:
        raise ImportRejected(
            f"{len(errors)} bad line{'s' if len(errors) != 1 else ''}; nothing was imported.",
            errors,
        )
    if not good:
        raise ImportRejected("No good rows; nothing was imported.", errors)
    return _write(
        project=project,
        path=path,
        importer=importer,
        file_name=file_name,
        errors=errors,
        created_by=created_by,
    )


def _rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    try:
        for raw in read_rows(path):
            yield raw.line, raw.data, raw.error
    except UnicodeDecodeError:
        raise ImportRejected("The file is not UTF-8 text; nothing was imported.") from None


def _validate(path: str | Path) -> tuple[Importer, int, list[tuple[int, str]]]:
    """First pass: the file's importer, how many rows are good, and every bad line."""
    importer: Importer | None = None
    good = 0
    errors: list[tuple[int, str]] = []
    for line, data, error in _rows(path):
        if data is None:
            errors.append((line, error))
            continue
        if importer is None:
            importer = detect(data)
            if importer is None:
                keys = ", ".join(sorted(map(str, data))) or "none"
                raise ImportRejected(
                    f"Unrecognised shape: line {line} has the fields {keys}. "
                    f"Known shapes:\n{known_shapes()}",
                    [(line, "unrecognised shape")],
                )
        try:
            importer.parse(data)
        except RowInvalid as exc:
            errors.append((line, str(exc)))
        else:
            good += 1
    if importer is None:
        raise ImportRejected(
            "The file holds no rows that could be read; nothing was imported. "
            f"Known shapes:\n{known_shapes()}",
            errors,
        )
    return importer, good, errors


def _import_key(base: str, judgment_key: str) -> str:
    key = f"{base}:{judgment_key}" if judgment_key else base
    # import_key holds 64 characters: longer external ids are stored as their hash.
    return key if len(key) <= 64 else content_hash(key)


@transaction.atomic
def _write(
    *,
    project: Project,
    path: str | Path,
    importer: Importer,
    file_name: str,
    errors: list[tuple[int, str]],
    created_by: AbstractBaseUser | None,
) -> ImportResult:
    """Second pass: the good rows, written in batches inside one transaction."""
    batch = ImportBatch.objects.create(
        project=project,
        file_name=file_name[:500],
        format=importer.NAME,
        created_by=created_by,
        errors=[list(e) for e in errors],
    )
    result = ImportResult(format=importer.NAME, errors=errors, batch_id=batch.pk)
    # Identical rows without an id are told apart by their count so far, so that a file holding
    # the same judgment twice imports it twice, and re-importing the file adds nothing.
    seen: Counter[str] = Counter()
    pending: list[_Keyed] = []
    for _line, data, _error in _rows(path):
        if data is None:
            continue
        try:
            row = importer.parse(data)
        except RowInvalid:
            continue
        if row.external_id:
            base = f"id:{row.external_id}"
        else:
            row_hash = content_hash(data)
            base = content_hash({"row": row_hash, "n": seen[row_hash]})
            seen[row_hash] += 1
        keys = [[_import_key(base, j.key) for j in spec.judgments] for spec in row.pairs]
        pending.append(_Keyed(row, keys))
        if len(pending) >= BATCH_ROWS:
            _write_batch(project, batch, pending, result)
            pending = []
    if pending:
        _write_batch(project, batch, pending, result)

    Project.objects.filter(pk=project.pk).update(
        pair_count=F("pair_count") + result.pairs_created,
        comparison_count=F("comparison_count") + result.comparisons_created,
    )
    ImportBatch.objects.filter(pk=batch.pk).update(
        rows=result.rows,
        pairs_created=result.pairs_created,
        comparisons_created=result.comparisons_created,
    )
    return result


def _write_batch(
    project: Project, batch: ImportBatch, pending: list[_Keyed], result: ImportResult
) -> None:
    """Prompts, Responses, Pairs and Comparisons of a few hundred rows: each kind is looked up
    with one query and the missing ones are made with one bulk insert."""
    # Prompts, by content hash; the first row that brings a new prompt sets its id and metadata.
    prompt_rows: dict[str, ParsedRow] = {}
    for item in pending:
        prompt_rows.setdefault(prompt_hash(item.row.prompt), item.row)
    prompt_ids = dict(
        Prompt.objects.filter(project=project, content_hash__in=list(prompt_rows)).values_list(
            "content_hash", "id"
        )
    )
    new_prompts = [
        Prompt(
            project=project,
            messages=row.prompt,
            content_hash=h,
            external_id=row.external_id[:200],
            metadata=row.metadata,
        )
        for h, row in prompt_rows.items()
        if h not in prompt_ids
    ]
    Prompt.objects.bulk_create(new_prompts)
    prompt_ids.update({p.content_hash: p.pk for p in new_prompts})
    row_prompt = [prompt_ids[prompt_hash(item.row.prompt)] for item in pending]

    # Responses, by (prompt, content hash).
    wanted: dict[tuple[int, str], Any] = {}
    for item, prompt_id in zip(pending, row_prompt, strict=True):
        for spec in item.row.pairs:
            for candidate in (spec.first, spec.second):
                wanted.setdefault((prompt_id, response_hash(candidate.text)), candidate)
    found = Response.objects.filter(
        prompt_id__in={k[0] for k in wanted}, content_hash__in={k[1] for k in wanted}
    ).values_list("prompt_id", "content_hash", "id")
    response_ids = {(p, h): i for p, h, i in found if (p, h) in wanted}
    new_responses = [
        Response(prompt_id=k[0], content_hash=k[1], text=c.text, model_name=c.model_name[:200])
        for k, c in wanted.items()
        if k not in response_ids
    ]
    Response.objects.bulk_create(new_responses)
    response_ids.update({(r.prompt_id, r.content_hash): r.pk for r in new_responses})

    # Pairs, by (prompt, smaller response id, larger one). A pair that arrives with a judgment
    # is training data, not labeling work: it is created closed.
    specs = []  # (row index, pair key, swapped, spec, keys)
    labelled: set[tuple[int, int, int]] = set()
    for index, (item, prompt_id) in enumerate(zip(pending, row_prompt, strict=True)):
        for spec, keys in zip(item.row.pairs, item.keys, strict=True):
            first = response_ids[(prompt_id, response_hash(spec.first.text))]
            second = response_ids[(prompt_id, response_hash(spec.second.text))]
            swapped = first > second
            key = (prompt_id, min(first, second), max(first, second))
            specs.append((index, key, swapped, spec, keys))
            if spec.judgments:
                labelled.add(key)
    pair_keys = {s[1] for s in specs}
    found = Pair.objects.filter(
        prompt_id__in={k[0] for k in pair_keys}, response_a_id__in={k[1] for k in pair_keys}
    ).values_list("prompt_id", "response_a_id", "response_b_id", "id")
    pair_ids = {(p, a, b): i for p, a, b, i in found if (p, a, b) in pair_keys}
    new_pairs = [
        Pair(
            project=project,
            prompt_id=k[0],
            response_a_id=k[1],
            response_b_id=k[2],
            is_open=k not in labelled,
        )
        for k in dict.fromkeys(s[1] for s in specs)
        if k not in pair_ids
    ]
    Pair.objects.bulk_create(new_pairs)
    pair_ids.update({(p.prompt_id, p.response_a_id, p.response_b_id): p.pk for p in new_pairs})
    new_pair_keys = {(p.prompt_id, p.response_a_id, p.response_b_id) for p in new_pairs}

    # Comparisons, by (pair, import key).
    judged = [(pair_ids[s[1]], key) for s in specs for key in s[4]]
    existing = set(
        Comparison.objects.filter(
            pair_id__in={p for p, _ in judged},
            source=Comparison.Source.IMPORT,
            import_key__in={k for _, k in judged},
        ).values_list("pair_id", "import_key")
    )
    new_comparisons = []
    changed_rows: set[int] = set()
    for index, key, swapped, spec, keys in specs:
        pair_id = pair_ids[key]
        if key in new_pair_keys:
            # Only the first row that brings a new pair made it; a repeat of it adds nothing.
            new_pair_keys.discard(key)
            changed_rows.add(index)
        for judgment, import_key in zip(spec.judgments, keys, strict=True):
            if (pair_id, import_key) in existing:
                continue
            existing.add((pair_id, import_key))
            changed_rows.add(index)
            new_comparisons.append(
                Comparison(
                    pair_id=pair_id,
                    project=project,
                    labeler=None,
                    source=Comparison.Source.IMPORT,
                    choice=_choice(judgment.choice, swapped),
                    left=_left(judgment.left, swapped),
                    import_batch=batch,
                    import_file=batch.file_name,
                    import_key=import_key,
                )
            )
    Comparison.objects.bulk_create(new_comparisons)

    result.rows += len(pending)
    result.pairs_created += len(new_pairs)
    result.comparisons_created += len(new_comparisons)
    result.duplicates_skipped += len(pending) - len(changed_rows)


def _choice(choice: str, swapped: bool) -> str:
    """A judgment by candidate -> the stored choice, canonical by response."""
    if choice == "first":
        return Choice.B if swapped else Choice.A
    if choice == "second":
        return Choice.A if swapped else Choice.B
    return choice


def _left(left: str, swapped: bool) -> str:
    if not left:
        return ""
    first_side = Side.B if swapped else Side.A
    return first_side if left == "first" else (Side.A if first_side == Side.B else Side.B)
