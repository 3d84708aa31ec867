"""The quality figures aggregated in the database are the figures recomputed from their
definitions over every comparison (tests/annotate/selectors/reference_quality.py), to 1e-9,
on the fixtures of the quality tests: every figure, bootstrap intervals included, and the
whole review queue."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Comparison, ImportBatch, Membership, Pair, Project
from annotate.selectors.quality import quality_figures
from annotate.services.demo import loop_demo_seed
from tests.annotate.api.test_quality import small, vote  # noqa: F401 - fixture
from tests.annotate.quality.test_labelers import simulate
from tests.annotate.selectors.reference_quality import reference_quality
from tests.annotate.selectors.test_aggregation import planted  # noqa: F401 - fixture
from tests.factories import UserFactory, make_pair

pytestmark = pytest.mark.django_db
N_BOOT = 200
# Figures rounded from labeling time: the reference sums float gaps in seconds, the database
# sums exact microseconds, so a value on a rounding boundary may round either way (one step).
ROUNDED = {"labels_per_hour": 0.1, "active_hours": 0.001}


def same(new, old, where: str = "") -> list[str]:
    """Where two JSON-like values differ (floats to 1e-9, ROUNDED figures to one step)."""
    step = ROUNDED.get(where.rsplit(".", 1)[-1])
    if step is not None and isinstance(old, float) and isinstance(new, float):
        return [] if abs(new - old) <= step + 1e-9 else [f"{where}: {new!r} != {old!r}"]
    if isinstance(old, dict):
        if not isinstance(new, dict) or set(new) != set(old):
            return [
                f"{where}: keys {sorted(new) if isinstance(new, dict) else new} != {sorted(old)}"
            ]
        return [d for k in old for d in same(new[k], old[k], f"{where}.{k}")]
    if isinstance(old, list | tuple):
        if not isinstance(new, list | tuple) or len(new) != len(old):
            return [f"{where}: {new!r} != {old!r}"]
        return [
            d
            for i, (a, b) in enumerate(zip(new, old, strict=True))
            for d in same(a, b, f"{where}[{i}]")
        ]
    if isinstance(old, float) and isinstance(new, int | float) and not isinstance(new, bool):
        if (
            math.isnan(old)
            and math.isnan(new)
            or math.isclose(new, old, rel_tol=1e-9, abs_tol=1e-9)
        ):
            return []
        return [f"{where}: {new!r} != {old!r}"]
    return [] if new == old and type(new) is type(old) else [f"{where}: {new!r} != {old!r}"]


def assert_same_figures(project: Project) -> None:
    now = timezone.now()
    project.refresh_from_db()
    new, review = quality_figures(project=project, n_boot=N_BOOT, now=now)
    old = reference_quality(project=project, n_boot=N_BOOT, now=now)
    old_review = old.pop("review_all")
    # The reference recomputes the pair figures; rankings and ratings are held to their own
    # worked cases (tests/annotate/quality/test_rankings.py, test_ratings.py).
    new.pop("rankings"), new.pop("ratings")
    for figures in (new, old):
        figures["aggregation"].pop("seconds")
    differences = same(new, old) + same(review, old_review, "review")
    assert not differences, "\n".join(differences[:20])


def test_small_fixture(project, small):  # noqa: F811
    assert_same_figures(project)


def test_exclusions_adjudications_ambiguity_repeats_imports_gold_and_strengths(
    project,
    staff,
    small,  # noqa: F811
):
    from annotate.services.review import membership_exclude, pair_adjudicate, pair_mark_ambiguous

    dave = UserFactory(username="dave")
    Membership.objects.create(project=project, user=dave)
    gold = make_pair(project, gold="b", model_p_a=0.5)
    batch = ImportBatch.objects.create(project=project, file_name="old.jsonl")
    for pair in (small["p1"], small["p2"], gold):
        for i, (user, choice, strength) in enumerate(
            [(dave, "a", 3), (small["bob"], "b", 2), (None, "tie", None)]
        ):
            if user is None:
                Comparison.objects.create(
                    pair=pair,
                    project=project,
                    source="import",
                    import_batch=batch,
                    import_key=f"k{pair.pk}-{i}",
                    choice=choice,
                )
            elif not Comparison.objects.filter(pair=pair, labeler=user).exists():
                vote(pair, user, choice, left="b")
                Comparison.objects.filter(pair=pair, labeler=user).update(strength=strength)
    vote(small["p1"], small["bob"], "b", left="b", repeat=True)
    vote(small["p3"], small["carol"], "b", left="a", repeat=True)
    pair_adjudicate(pair=small["p4"], staff=staff, choice="a")
    pair_mark_ambiguous(pair=small["p3"], staff=staff)
    assert_same_figures(project)
    membership_exclude(project=project, user=small["carol"], reason="careless")
    assert_same_figures(project)


def test_simulated_labelers(project):
    kinds, _truth, facts, named = simulate(pairs_n=60, gold_n=20, repeats_n=12)
    users = {name: UserFactory(username=name) for name in kinds}
    pairs = {}
    for p, fact in facts.items():
        short, long = f"Short {p}.", f"A longer answer to question {p}, with detail."
        a, b = (long, short) if fact.longer == "a" else (short, long)
        pairs[p] = make_pair(project, a=a, b=b, gold=fact.gold, model_p_a=0.2 + (p % 7) / 10)
    start = timezone.now() - timedelta(days=4)
    comparisons = Comparison.objects.bulk_create(
        Comparison(
            pair=pairs[j.pair_id],
            project=project,
            labeler=users[name],
            choice=j.choice,
            left=j.left,
            time_spent_ms=int(j.seconds * 1000) if j.seconds else None,
            is_repeat=j.is_repeat,
        )
        for name, j in named
    )
    # Spread over four days with breaks, so that throughput buckets days and pace has gaps.
    for i, c in enumerate(comparisons):
        at = start + timedelta(seconds=37 * i + (900 if i % 17 == 0 else 0) * (i // 17))
        Comparison.objects.filter(pk=c.pk).update(created_at=at)
    assert_same_figures(project)


@pytest.mark.parametrize("method", ["majority", "dawid_skene", "glad", "mace"])
def test_planted_crowd_under_each_aggregation(project, planted, method):  # noqa: F811
    Project.objects.filter(pk=project.pk).update(aggregation=method)
    assert_same_figures(project)


def test_a_judgment_a_microsecond_before_the_second_counts_its_gap_exactly(project, small):  # noqa: F811
    """SQLite's date functions round to milliseconds: read whole, "...:11.999999" would be
    the next second, and the gap to "...:12.000000" would vanish."""
    dave = UserFactory(username="dave")
    Membership.objects.create(project=project, user=dave)
    first = timezone.now().replace(microsecond=999_999) - timedelta(hours=1)
    for pair, at in ((small["p1"], first), (small["p2"], first + timedelta(microseconds=1))):
        vote(pair, dave, "a", ms=8000, at=at)
    figures, _ = quality_figures(project=project, n_boot=N_BOOT, now=timezone.now())
    (row,) = [r for r in figures["labelers"] if r["username"] == "dave"]
    # 8 s on the page for the first judgment, then a gap of one microsecond.
    assert row["active_hours"] == round(8.000001 / 3600, 3)
    assert row["labels_per_hour"] == round(2 / (8.000001 / 3600), 1)
    assert_same_figures(project)


def test_the_loop_demo(staff):
    project, _ = loop_demo_seed(staff=staff, members=[staff])
    Pair.objects.filter(project=project, id__in=project.pairs.values("id")[:40]).update(
        model_p_a=0.93
    )
    assert_same_figures(project)
