"""A 100,000-row file imports in streaming batches (slow: still run in CI). Re-importing adds
nothing across batches: tests/annotate/services/test_imports.py shows it with two-row batches."""

import json

import pytest

from annotate.models import Comparison, ImportBatch, Pair
from annotate.services.imports import import_file


@pytest.mark.slow
@pytest.mark.django_db
def test_a_100k_row_file_imports_in_batches(project, tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(100_000):
            # Every tenth prompt repeats with new replies: shared prompts across batches.
            row = {
                "prompt": f"Question {i % 90_000}?",
                "chosen": f"good {i}",
                "rejected": f"bad {i}",
            }
            f.write(json.dumps(row) + "\n")

    result = import_file(project=project, path=path)

    assert (result.rows, result.pairs_created, result.comparisons_created) == (
        100_000,
        100_000,
        100_000,
    )
    assert project.prompts.count() == 90_000
    assert Pair.objects.filter(project=project).count() == 100_000
    assert Comparison.objects.filter(project=project, choice="a").count() == 100_000
    project.refresh_from_db()
    assert (project.pair_count, project.comparison_count) == (100_000, 100_000)
    assert ImportBatch.objects.get().rows == 100_000
