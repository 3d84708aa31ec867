"""A 12,000-row file imports in streaming batches: 24 batches of BATCH_ROWS, with the mid-import
ANALYZE on the way and prompts shared across batches. Re-importing adds nothing across batches:
tests/annotate/services/test_imports.py shows it with two-row batches. Import speed at a
million rows is bench/export_1m.py's job, not a test's."""

import json

import pytest

from annotate.models import Comparison, ImportBatch, Pair
from annotate.services.imports import BATCH_ROWS, import_file

ROWS = 12_000
PROMPTS = 10_800  # every tenth prompt repeats with new replies, in a later batch


@pytest.mark.django_db
def test_a_file_of_many_batches_imports_whole(project, tmp_path):
    assert ROWS >= 20 * BATCH_ROWS
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(ROWS):
            row = {
                "prompt": f"Question {i % PROMPTS}?",
                "chosen": f"good {i}",
                "rejected": f"bad {i}",
            }
            f.write(json.dumps(row) + "\n")

    result = import_file(project=project, path=path)

    assert (result.rows, result.pairs_created, result.comparisons_created) == (ROWS, ROWS, ROWS)
    assert project.prompts.count() == PROMPTS
    assert Pair.objects.filter(project=project).count() == ROWS
    assert Comparison.objects.filter(project=project, choice="a").count() == ROWS
    project.refresh_from_db()
    assert (project.pair_count, project.comparison_count) == (ROWS, ROWS)
    assert ImportBatch.objects.get().rows == ROWS
