"""The import of rankings and ratings (UltraFeedback, HelpSteer2, Argilla, Open-Assistant):
Prompts, Responses, a ResponseSet per row (or per group of rows) and its imported Ranking and
Rating rows, called by annotate/services/imports.py once the shape is known.

As the pairs' import: one streaming pass inside its caller's transaction, a few queries per
few hundred rows, every bad line named, nothing kept unless every line is good (or
skip_invalid). Each judgment's import_key comes from the row's id (or hash) and the judgment's
own key, so a re-import adds nothing. Ratings are checked against the project's aspects here:
names are matched loosely (case, spaces and hyphens aside), a name the project lacks or a value
off its scale refuses the line. Each rater's judgment of a set that an import stores (their
ranking and/or ratings of it, told apart by the import keys) counts once in the project's
comparison_count, as a labeler's does, so retraining and the quality figures notice it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from django.utils import timezone

from annotate.hashing import content_hash
from annotate.importers.base import Candidate, RowInvalid
from annotate.importers.detect import Importer
from annotate.importers.sets import ROW_JUDGMENT_KEYS, ParsedSet, RankSpec
from annotate.models import ImportBatch, Project, Ranking, Rating, Response, ResponseSet
from annotate.models import JudgmentSource as Source
from annotate.selectors.rankings import Aspect, project_aspects
from annotate.services.bulk import rows_insert
from annotate.services.catalog import response_hash
from annotate.services.imports import (
    BATCH_ROWS,
    RESPONSE_COLUMNS,
    ImportRejected,
    ImportResult,
    _counts_write,
    _import_key,
    _prompts_write,
    _reject_if_bad,
)

Rows = Iterator[tuple[int, dict[str, Any] | None, str]]


@dataclass
class _Item:
    """One set to write: `row` as the write of prompts reads it; its judgments' keys final,
    and `raters`, each final key's rater (whose judgment of the set the row holds)."""

    row: ParsedSet
    raters: dict[str, str] = field(default_factory=dict)


def aspect_name(name: str) -> str:
    """The form aspect names are matched in: "Instruction-following" = "instruction_following"."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def sets_import(
    *,
    project: Project,
    batch: ImportBatch,
    importer: Importer,
    rows: Rows,
    skip_invalid: bool,
    result: ImportResult,
) -> ImportResult:
    """Read the rest of the file (`rows`, its first data row included) and write its sets."""
    aspects = {aspect_name(a.name): a for a in project_aspects(project)}
    many, adjacent = getattr(importer, "MANY", False), getattr(importer, "ADJACENT", False)
    seen: Counter[str] = Counter()
    pending: list[_Item] = []
    group: _Item | None = None
    writing = True
    for line, data, error in rows:
        if data is None:
            result.add_error(line, error)
            writing = writing and skip_invalid
            continue
        try:
            parsed = importer.parse_many(data) if many else [importer.parse(data)]
            items = [_Item(_checked(p, aspects)) for p in parsed]
        except RowInvalid as exc:
            result.add_error(line, str(exc))
            writing = writing and skip_invalid
            continue
        if not writing:
            continue
        items = _keyed(items, data, seen)
        result.rows += 1
        if adjacent:
            item = items[0]
            if group is not None and group.row.prompt == item.row.prompt:
                _merge(group, item)
                continue
            items, group = ([group] if group else []), item
        pending += items
        if len(pending) >= BATCH_ROWS:
            _write(project, batch, pending, result)
            pending = []
    if group is not None:
        pending.append(group)
    _reject_if_bad(importer, result, skip_invalid)
    if pending:
        _write(project, batch, pending, result)
    if not result.rows:
        raise ImportRejected(
            "No good rows; nothing was imported.", result.errors, result.error_count
        )
    _counts_write(project, batch, result)
    return result


def _checked(parsed: ParsedSet, aspects: dict[str, Aspect]) -> ParsedSet:
    """The row with each rating's aspect renamed to the project's; RowInvalid naming the
    aspects the project does not have, or the first value off its aspect's scale."""
    unknown = sorted({r.aspect for r in parsed.ratings if aspect_name(r.aspect) not in aspects})
    if unknown:
        have = ", ".join(a.name for a in aspects.values()) or "none"
        plural = "s" if len(unknown) > 1 else ""
        raise RowInvalid(
            f"aspect{plural} {', '.join(unknown)} not among this project's aspects ({have})"
        )
    ratings = []
    for rating in parsed.ratings:
        aspect = aspects[aspect_name(rating.aspect)]
        if not aspect.min <= rating.value <= aspect.max:
            raise RowInvalid(
                f"{aspect.name} is rated from {aspect.min} to {aspect.max}; "
                f"response {rating.index + 1} got {rating.value}"
            )
        ratings.append(replace(rating, aspect=aspect.name))
    # One value per response and aspect and rater: a second would be the same judgment twice.
    keys = Counter((r.index, r.aspect, r.key) for r in ratings)
    twice = next((k for k, n in keys.items() if n > 1), None)
    if twice is not None:
        raise RowInvalid(f"response {twice[0] + 1} is rated on {twice[1]} twice")
    return replace(parsed, ratings=ratings)


def _keyed(items: list[_Item], data: dict[str, Any], seen: Counter[str]) -> list[_Item]:
    """Each judgment's final import key: the set's id (or the row's hash and how many times
    that row came before) joined to the judgment's own key; and its rater, the same less a
    key that names which judgment of the row it is (ROW_JUDGMENT_KEYS). The rater is known
    only here: a key longer than import_key holds is stored as its hash."""
    row_hash = content_hash(data)
    count = seen[row_hash]
    seen[row_hash] += 1
    out = []
    for item in items:
        row = item.row
        base = f"id:{row.row_id}" if row.row_id else content_hash({"row": row_hash, "n": count})
        rankings = [replace(r, key=_import_key(base, r.key)) for r in row.rankings]
        ratings = [replace(r, key=_import_key(base, r.key)) for r in row.ratings]
        raters = {
            _import_key(base, spec.key): _import_key(
                base, "" if spec.key in ROW_JUDGMENT_KEYS else spec.key
            )
            for spec in [*row.rankings, *row.ratings]
        }
        out.append(_Item(replace(row, rankings=rankings, ratings=ratings), raters))
    return out


def _merge(group: _Item, item: _Item) -> None:
    """Add an adjacent row of the same prompt to the group's set: its response (once) and its
    ratings."""
    row, texts = group.row, [c.text for c in group.row.candidates]
    where: dict[int, int] = {}
    for i, candidate in enumerate(item.row.candidates):
        if candidate.text not in texts:
            texts.append(candidate.text)
            row.candidates.append(candidate)
            row.response_metadata.append(_extra(item.row, i))
        where[i] = texts.index(candidate.text)
    row.ratings += [replace(r, index=where[r.index]) for r in item.row.ratings]
    group.raters.update(item.raters)


def _extra(row: ParsedSet, index: int) -> dict[str, Any]:
    return row.response_metadata[index] if index < len(row.response_metadata) else {}


def _write(
    project: Project, batch: ImportBatch, pending: list[_Item], result: ImportResult
) -> None:
    """Prompts, Responses, ResponseSets, Rankings and Ratings of a few hundred sets."""
    prompt_ids = _prompts_write(project, pending)
    response_ids = _responses_write(pending, prompt_ids)
    members = [
        [response_ids[(p, response_hash(c.text))] for c in item.row.candidates]
        for item, p in zip(pending, prompt_ids, strict=True)
    ]
    set_ids, created = _sets_write(project, pending, prompt_ids, members)
    changed = set(created)
    held = _import_keys({s for i, s in enumerate(set_ids) if i not in changed})
    rankings = _rankings_write(project, batch, pending, set_ids, members, changed)
    ratings = _ratings_write(project, batch, pending, set_ids, members, changed)
    result.sets_created += len(created)
    result.rankings_created += len(rankings)
    result.ratings_created += len(ratings)
    result.duplicates_skipped += len(pending) - len(changed)
    # A rater's judgment of a set is one judgment however many rows it holds, and it is new
    # when the set held none of the rater's rows before.
    rater = {key: who for item in pending for key, who in item.raters.items()}
    judged = {(row.response_set_id, rater[row.import_key]) for row in [*rankings, *ratings]}
    judged_before = {(set_id, rater.get(key, key)) for set_id, key in held}
    result.set_judgments_created += len(judged - judged_before)


def _import_keys(set_ids: set[int]) -> set[tuple[int, str]]:
    """(set id, import key) of the imported rankings and ratings these sets already hold."""
    if not set_ids:
        return set()
    keys = set(
        Ranking.objects.filter(response_set_id__in=set_ids, source=Source.IMPORT).values_list(
            "response_set_id", "import_key"
        )
    )
    keys |= set(
        Rating.objects.filter(response_set_id__in=set_ids, source=Source.IMPORT)
        .values_list("response_set_id", "import_key")
        .distinct()
    )
    return keys


def _responses_write(pending: list[_Item], prompt_ids: list[int]) -> dict[tuple[int, str], int]:
    """Response ids by (prompt id, content hash), creating the missing ones with what the
    source said about them in their metadata."""
    wanted: dict[tuple[int, str], tuple[Candidate, dict[str, Any]]] = {}
    for item, prompt_id in zip(pending, prompt_ids, strict=True):
        for i, candidate in enumerate(item.row.candidates):
            key = (prompt_id, response_hash(candidate.text))
            wanted.setdefault(key, (candidate, _extra(item.row, i)))

    def ids() -> dict[tuple[int, str], int]:
        found = Response.objects.filter(prompt_id__in={k[0] for k in wanted})
        rows = found.values_list("prompt_id", "content_hash", "id")
        return {(p, h): i for p, h, i in rows if (p, h) in wanted}

    found = ids()
    now = timezone.now()
    missing = [
        (
            k[0],
            c.text,
            c.model_name[:200],
            json.dumps(meta),
            "{}",
            k[1],
            now,
            None,
            None,
            None,
            None,
        )
        for k, (c, meta) in wanted.items()
        if k not in found
    ]
    if missing:
        rows_insert(Response, RESPONSE_COLUMNS, missing)
        found = ids()
    return found


def _set_key(ids: Iterable[int]) -> str:
    return ",".join(map(str, sorted(ids)))


def _sets_write(
    project: Project, pending: list[_Item], prompt_ids: list[int], members: list[list[int]]
) -> tuple[list[int], list[int]]:
    """Each item's ResponseSet id, by (prompt, its responses), and the indexes of the items
    that created theirs. A set that arrives judged is training data, not labeling work: it is
    created closed (as imported pairs are)."""
    keys = [(p, _set_key(m)) for p, m in zip(prompt_ids, members, strict=True)]

    def ids() -> dict[tuple[int, str], int]:
        found = ResponseSet.objects.filter(prompt_id__in={k[0] for k in keys})
        return {(p, k): i for p, k, i in found.values_list("prompt_id", "response_key", "id")}

    found = ids()
    judged = {
        k for k, item in zip(keys, pending, strict=True) if item.row.rankings or item.row.ratings
    }
    new: dict[tuple[int, str], int] = {}
    for index, key in enumerate(keys):
        if key not in found and key not in new:
            new[key] = index
    ResponseSet.objects.bulk_create(
        [
            ResponseSet(
                project=project,
                prompt_id=key[0],
                response_ids=sorted(members[index]),
                response_key=key[1],
                is_open=key not in judged,
            )
            for key, index in new.items()
        ],
        ignore_conflicts=True,
    )
    if new:
        found = ids()
    return [found[k] for k in keys], list(new.values())


def _groups(spec: RankSpec, members: list[int]) -> list[list[int]]:
    return [[members[i] for i in group] for group in spec.groups]


def _rankings_write(
    project: Project,
    batch: ImportBatch,
    pending: list[_Item],
    set_ids: list[int],
    members: list[list[int]],
    changed: set[int],
) -> list[Ranking]:
    existing = set(
        Ranking.objects.filter(response_set_id__in=set(set_ids), source=Source.IMPORT).values_list(
            "response_set_id", "import_key"
        )
    )
    new = []
    for index, (item, set_id) in enumerate(zip(pending, set_ids, strict=True)):
        for spec in item.row.rankings:
            if (set_id, spec.key) in existing:
                continue
            existing.add((set_id, spec.key))
            changed.add(index)
            new.append(
                Ranking(
                    response_set_id=set_id,
                    project=project,
                    source=Source.IMPORT,
                    groups=_groups(spec, members[index]),
                    all_bad=spec.all_bad,
                    import_batch=batch,
                    import_key=spec.key,
                )
            )
    Ranking.objects.bulk_create(new)
    return new


def _ratings_write(
    project: Project,
    batch: ImportBatch,
    pending: list[_Item],
    set_ids: list[int],
    members: list[list[int]],
    changed: set[int],
) -> list[Rating]:
    responses = {r for m in members for r in m}
    existing = set(
        Rating.objects.filter(response_id__in=responses, source=Source.IMPORT).values_list(
            "response_id", "aspect", "import_key"
        )
    )
    new = []
    for index, (item, set_id) in enumerate(zip(pending, set_ids, strict=True)):
        for spec in item.row.ratings:
            response_id = members[index][spec.index]
            if (response_id, spec.aspect, spec.key) in existing:
                continue
            existing.add((response_id, spec.aspect, spec.key))
            changed.add(index)
            new.append(
                Rating(
                    response_set_id=set_id,
                    response_id=response_id,
                    project=project,
                    source=Source.IMPORT,
                    aspect=spec.aspect,
                    value=spec.value,
                    import_batch=batch,
                    import_key=spec.key,
                )
            )
    Rating.objects.bulk_create(new)
    return new
