"""Reads behind a dataset export: the comparisons of the raw shape, streamed with the texts
they judge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast

from annotate.models import Project
from annotate.selectors.dataset import DatasetFilter, comparisons_for_dataset

CHUNK = 2000

RAW_FIELDS = (
    "id",
    "pair_id",
    "pair__prompt__content_hash",
    "pair__response_a__text",
    "pair__response_b__text",
    "pair__response_a__model_name",
    "pair__response_b__model_name",
    "choice",
    "strength",
    "left",
    "labeler_id",
    "labeler__username",
    "source",
    "reasons",
    "comment",
    "time_spent_ms",
    "created_at",
    "is_gold_check",
    "import_file",
)


def comparison_rows(project: Project, flt: DatasetFilter) -> Iterator[dict[str, Any]]:
    """Each comparison that counts under the filter, with its pair's texts, in pair-id order.
    The prompt's messages come as JSON text (`prompt_json`): the export decodes them once per
    pair, where a JSON field would be decoded on every row.

    Streamed: PostgreSQL serves it from a server-side cursor, so memory does not grow with the
    number of comparisons.
    """
    prompt_json = Cast("pair__prompt__messages", TextField())
    rows = comparisons_for_dataset(project, flt).values(*RAW_FIELDS, prompt_json=prompt_json)
    return rows.iterator(chunk_size=CHUNK)
