"""The demo data of `make run`: the loop demo is seeded through the real services, tells the
whole story (named models, five labelers, one careless, gold and repeats, splits to review,
open pairs left) and adds nothing on a second run. Its first training run:
tests/rewardtrain/management/test_commands.py (retrain_due)."""

from __future__ import annotations

from collections import Counter

import pytest

from annotate.models import Comparison, Pair, Project
from annotate.selectors.quality import project_quality
from annotate.services.demo import demo_seed, loop_demo_seed
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def seed():
    return demo_seed(admin_password="admin-pass", labeler_password="labeler-pass")


def test_loop_demo_tells_the_whole_story():
    seeded = seed()
    project = Project.objects.get(slug="loop-demo")
    assert seeded.loop == project
    pairs = Pair.objects.filter(project=project)
    assert project.pair_count == pairs.count() >= 300
    models = set(pairs.values_list("response_a__model_name", flat=True)) | set(
        pairs.values_list("response_b__model_name", flat=True)
    )
    assert len(models) == 6 and "" not in models

    human = Comparison.objects.filter(project=project, source=Comparison.Source.HUMAN)
    by_labeler = Counter(human.values_list("labeler__username", flat=True))
    assert set(by_labeler) == {"ana", "ben", "chloe", "dev", "quinn"}
    assert project.comparison_count == human.filter(is_repeat=False).count() >= 500
    assert human.filter(is_gold_check=True).count() >= 10
    assert human.filter(is_repeat=True).count() >= 10
    # The assignment rules held: two counted judgments at most, from distinct labelers.
    counted = Counter(human.filter(is_repeat=False, is_gold_check=False).values_list("pair_id"))
    assert max(counted.values()) == project.redundancy == 2
    for pair in pairs.filter(gold=""):
        assert pair.human_count == counted.get((pair.pk,), 0)
    assert pairs.filter(is_open=True).count() >= 30  # left for active learning to order
    # The judgments read as a few sittings over the last days, not one burst.
    times = sorted(human.values_list("created_at", flat=True))
    assert (times[-1] - times[0]).total_seconds() > 36 * 3600

    q = project_quality(project=project, n_boot=50)
    flags = {row["username"]: {f["code"] for f in row["flags"]} for row in q["labelers"]}
    assert {"left_bias", "too_fast"} <= flags["quinn"]
    # The careless behaviours are quinn's alone.
    assert not any(
        {"left_bias", "too_fast"} & flags[name] for name in ("ana", "ben", "chloe", "dev")
    )
    assert q["review_queue"]["size"] > 0
    board = [m["model"] for m in q["leaderboard"]["models"]]
    assert board[0] == "atlas-70b" and board[-1] == "fjord-1b"

    # The other demo projects, and the demo accounts, are on it.
    assert Project.objects.get(slug="demo").pair_count == 42
    ranked = Project.objects.get(slug="rank-demo")
    assert ranked.task_kind == "ranking_rating" and ranked.response_sets.count() >= 12
    assert all(len(s.response_ids) == 4 for s in ranked.response_sets.all())
    members = set(project.memberships.values_list("user__username", flat=True))
    assert {"admin", "labeler"} <= members
    assert seeded.accounts == [("admin", "admin-pass"), ("labeler", "labeler-pass")]


def test_seeding_again_adds_nothing():
    seed()
    project = Project.objects.get(slug="loop-demo")
    before = (project.pair_count, project.comparison_count, Comparison.objects.count())
    again = seed()
    project.refresh_from_db()
    assert (project.pair_count, project.comparison_count, Comparison.objects.count()) == before
    assert [(p.pairs_added, p.comparisons_added) for p in again.projects] == [(0, 0)] * 3
    assert project.imports.count() == 2


def _judgments(project: Project) -> list[tuple]:
    rows = Comparison.objects.filter(project=project).values_list(
        "labeler__username", "pair__prompt__messages", "pair__response_a__text", "choice",
        "is_repeat", "is_gold_check",
    )  # fmt: skip
    return sorted(map(repr, rows))


def test_the_same_seed_gives_the_same_demo():
    """Every draw is seeded, the random keys that order the mixed queue's random share and the
    repeat checks included: the demo is the same on every machine and in every test run."""
    staff = StaffFactory()
    first, _ = loop_demo_seed(staff=staff, members=[staff])
    judged = _judgments(first)
    first.delete()
    again, _ = loop_demo_seed(staff=staff, members=[staff])
    assert len(judged) >= 500
    assert _judgments(again) == judged
