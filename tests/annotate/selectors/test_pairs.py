"""Where a project's pairs came from and why the closed ones are closed (the staff pages'
count lines), and the head of the queue that the training page lists."""

from __future__ import annotations

import json

import pytest

from annotate.models import Choice
from annotate.selectors.pairs import pair_counts, pairs_queue_head
from annotate.services.imports import import_file
from annotate.services.labeling import comparison_create
from annotate.services.review import pair_adjudicate, pair_mark_ambiguous
from annotate.services.selection import pairs_add_by_reward
from tests.annotate.services.test_selection import TextScorer, candidates
from tests.factories import make_pair

pytestmark = pytest.mark.django_db


def test_pair_counts_say_where_pairs_came_from_and_why_they_closed(
    project, labeler, staff, tmp_path
):
    project.redundancy = 1
    project.save(update_fields=["redundancy"])
    judged, resolved, vague, left_open = (make_pair(project) for _ in range(4))
    comparison_create(pair=judged, labeler=labeler, choice=Choice.A)
    pair_adjudicate(pair=resolved, staff=staff, choice=Choice.B)
    pair_mark_ambiguous(pair=vague, staff=staff)
    trl = tmp_path / "judged.jsonl"
    trl.write_text(json.dumps({"prompt": "Best pet?", "chosen": "A dog.", "rejected": "A rock."}))
    import_file(project=project, path=trl)
    candidates(project, [5, 1, 7, 3, 8, 2])  # a ring of 6: the model adds its neighbours
    added = pairs_add_by_reward(project=project, scorer=TextScorer())
    project.refresh_from_db()

    counts = pair_counts(project=project)

    assert counts.total == project.pair_count == 4 + 1 + 6 + added
    assert counts.added_by_model == added > 0
    assert counts.imported == counts.total - added
    assert (counts.full, counts.resolved, counts.ambiguous, counts.imported_judged) == (1, 1, 1, 1)
    assert counts.open == 1 + 6 + added
    assert counts.closed == 4
    assert counts.closed_reasons == [
        "1 with all their judgments",
        "1 imported with a judgment",
        "1 resolved in review",
        "1 marked ambiguous",
    ]
    left_open.refresh_from_db()
    assert left_open.is_open


def test_queue_head_is_the_leasing_order(project):
    low = make_pair(project, priority=0.1)
    high = make_pair(project, priority=0.9)
    tie_old, tie_new = make_pair(project, priority=0.5), make_pair(project, priority=0.5)
    make_pair(project, priority=5.0, is_open=False)  # closed: never served

    assert pairs_queue_head(project=project, limit=3) == [high, tie_old, tie_new]
    assert pairs_queue_head(project=project)[-1] == low
