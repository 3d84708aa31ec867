"""AI judges on the quality page: each judge measured against the people on a small hand-made
case whose figures are worked out below; the people's figures untouched by the judges; the
same figures recomputed from their definitions (reference_quality) on a planted crowd under
every aggregation; the API and the dashboard showing them."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import Comparison, JudgeVerdict, Pair, Project
from annotate.quality.judges import rate_interval
from annotate.selectors.quality import quality_figures
from annotate.services.quality import quality_compute
from annotate.services.review import membership_exclude
from tests.annotate.api.test_quality import XSS, vote
from tests.annotate.selectors.test_aggregation import (
    aggregate,
    planted,  # noqa: F401 - fixture
)
from tests.annotate.selectors.test_quality_reference import N_BOOT, assert_same_figures
from tests.factories import JudgeFactory, MembershipFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db

LONG, SHORT = "A long answer, the longer one.", "Short."


def judge_says(judge, pair, choice: str, p_chosen: float = 0.9) -> Comparison:
    return Comparison.objects.create(
        pair=pair,
        project=pair.project,
        labeler=judge.user,
        source=Comparison.Source.AI_JUDGE,
        choice=choice,
        p_chosen=p_chosen,
    )


def readings(judge, pair, ab: str, ba: str) -> None:
    JudgeVerdict.objects.create(judge=judge, pair=pair, order="ab", choice=ab)
    JudgeVerdict.objects.create(judge=judge, pair=pair, order="ba", choice=ba)


@pytest.fixture
def case(project):
    """Six pairs, three people, two judges.

    pair  longer  gold  people      sharp (ab, ba)  lefty (ab, ba)
    p1    a             a a b       a (a, a)        b (a, b)
    p2    b             b b         b (b, b)        b (a, b)
    p3    =             a b         a (a, a)        a (a, b)
    p4    a       a     a           a (a, a)        b (a, b)
    p5    a       b                 b (b, b)        a (a, b)
    p6    b             tie tie     a (a, b)        tie (tie, unparsable)
    """
    project.redundancy = 3
    project.save()
    bob, carol, dave = (UserFactory(username=n) for n in ("bob", "carol", "dave"))
    for user in (bob, carol, dave):
        MembershipFactory(project=project, user=user)
    p = {
        1: make_pair(project, a=LONG, b=SHORT),
        2: make_pair(project, a=SHORT, b=LONG),
        3: make_pair(project, a="Same len A.", b="Same len B."),
        4: make_pair(project, a=LONG, b=SHORT, gold="a"),
        5: make_pair(project, a=LONG, b=SHORT, gold="b"),
        6: make_pair(project, a=SHORT, b=LONG),
    }
    people = {1: "aab", 2: "bb", 3: "ab", 4: "a", 5: "", 6: ["tie", "tie"]}
    for i, choices in people.items():
        for user, choice in zip((bob, carol, dave), choices, strict=False):
            vote(p[i], user, choice)
    sharp = JudgeFactory(project=project, name="sharp", model=XSS)
    lefty = JudgeFactory(project=project, name="lefty", model="lefty-1b")
    for i, (s, ab, ba) in {
        1: ("a", "a", "a"),
        2: ("b", "b", "b"),
        3: ("a", "a", "a"),
        4: ("a", "a", "a"),
        5: ("b", "b", "b"),
        6: ("a", "a", "b"),
    }.items():
        judge_says(sharp, p[i], s)
        readings(sharp, p[i], ab, ba)
    for i, choice in {1: "b", 2: "b", 3: "a", 4: "b", 5: "a", 6: "tie"}.items():
        judge_says(lefty, p[i], choice)
        if i < 6:
            readings(lefty, p[i], "a", "b")
    readings(lefty, p[6], "tie", "")
    return {"pairs": p, "sharp": sharp, "lefty": lefty, "people": (bob, carol, dave)}


def rows(figures) -> dict[str, dict]:
    return {row["name"]: row for row in figures["judges"]["rows"]}


def test_each_judge_measured_against_the_people_by_hand(project, case):
    figures, _ = quality_figures(project=project, n_boot=N_BOOT)
    judges = figures["judges"]
    assert judges["in_training"] is True and judges["count_toward_redundancy"] is False
    # The people pooled: agreement with the others' majority 4 of 7 (p1: dave against a-a;
    # p2 and p6 agree twice each; p3 disagrees twice; p1's a-votes and p4 have no majority),
    # gold 1 of 1, the left side (every vote shown A left) 4 of 8 A/B votes, the longer
    # response 5 of 6 A/B votes on pairs of unequal length.
    assert judges["humans"] == {
        "agreement_with_majority": 0.5714,
        "agreement_n": 7,
        "gold_accuracy": 1.0,
        "gold_n": 1,
        "left_rate": 0.5,
        "left_n": 8,
        "longer_rate": 0.8333,
        "longer_n": 6,
    }
    sharp, lefty = rows(figures)["sharp"], rows(figures)["lefty"]
    assert list(rows(figures)) == ["lefty", "sharp"]
    # sharp: with the people's majority on p1, p2, p4, not p6 (a against tie); p3 has no
    # majority, p5 no people. Gold 2 of 2; the longer one 3 of 5 (p3 has none).
    assert (sharp["agreement_with_humans"], sharp["agreement_n"]) == (0.75, 4)
    assert sharp["agreement_with_humans_ci"] == rate_interval(3, 4, n_boot=N_BOOT, seed=0)
    low, high = sharp["agreement_with_humans_ci"]
    assert 0 <= low <= 0.75 <= high <= 1
    assert (sharp["gold_accuracy"], sharp["gold_n"]) == (1.0, 2)
    assert (sharp["longer_rate"], sharp["longer_n"]) == (0.6, 5)
    assert sharp["humans_longer_rate"] == 0.8333
    # Its readings: 12 A/B, 7 of the response shown first; 5 of 6 pairs the same both ways.
    assert (sharp["readings"], sharp["first_rate"], sharp["position_bias"]) == (12, 0.5833, 0.0833)
    assert (sharp["order_consistency"], sharp["order_consistency_n"]) == (0.8333, 6)
    assert sharp["unparsable"] == 0 and sharp["flags"] == []
    # lefty: p2 and p6 with the people, p1 and p4 against; gold 0 of 2; the longer one 2 of 4.
    assert (lefty["agreement_with_humans"], lefty["agreement_n"]) == (0.5, 4)
    assert (lefty["gold_accuracy"], lefty["gold_n"]) == (0.0, 2)
    assert (lefty["longer_rate"], lefty["longer_n"]) == (0.5, 4)
    # Always the response shown first: 10 of 10 A/B readings, so never the same answer in
    # both orders (0 of 5; p6's second reading is unparsable).
    assert (lefty["readings"], lefty["first_rate"], lefty["position_bias"]) == (10, 1.0, 0.5)
    assert lefty["first_p"] == pytest.approx(2 / 1024)
    assert (lefty["order_consistency"], lefty["order_consistency_n"], lefty["unparsable"]) == (
        0.0,
        5,
        1,
    )
    assert [f["code"] for f in lefty["flags"]] == ["position_bias", "inconsistent"]
    # Reliability under majority, each judge one vote among everyone's A/B votes: sharp
    # agrees with the others' majority on p2 and p3, not p5 (p1, p4, p6 undecided): 2 of 3;
    # lefty on p2 and p3, not p1, p4, p5: 2 of 5.
    assert (sharp["reliability"], lefty["reliability"]) == (0.6667, 0.4)
    assert sharp["user_id"] == case["sharp"].user_id and not sharp["excluded"]


def test_the_peoples_figures_are_the_same_with_judges_or_without(project, case):
    without = Comparison.objects.filter(source=Comparison.Source.AI_JUDGE)
    stored = list(without.values())
    without.delete()
    before, review_before = quality_figures(project=project, n_boot=N_BOOT)
    Comparison.objects.bulk_create(Comparison(**row) for row in stored)
    after, review_after = quality_figures(project=project, n_boot=N_BOOT)
    assert review_after == review_before
    for key in ("agreement", "leaderboard", "throughput", "progress", "queue_depth", "bands"):
        assert after[key] == before[key], key
    # Reliability is the crowd model's: with judges in training, they are among its votes.
    strip = [{k: v for k, v in r.items() if k != "reliability"} for r in before["labelers"]]
    assert [{k: v for k, v in r.items() if k != "reliability"} for r in after["labelers"]] == strip
    assert {r["username"] for r in after["labelers"]} == {"bob", "carol", "dave"}

    # Out of training, the people's figures are all as before, reliability included, and
    # the judges' reliability comes from a fit with them added (for measure only).
    Project.objects.filter(pk=project.pk).update(judges_in_training=False)
    project.refresh_from_db()
    out, _ = quality_figures(project=project, n_boot=N_BOOT)
    assert out["labelers"] == before["labelers"]
    assert out["aggregation"]["votes"] == before["aggregation"]["votes"]
    assert (rows(out)["sharp"]["reliability"], rows(out)["lefty"]["reliability"]) == (0.6667, 0.4)
    assert out["judges"]["in_training"] is False


def _spaced_in_time(project: Project) -> None:
    """One judgment a second, in id order. The planted crowd is written in bulk, microseconds
    apart: a labeler's labeling time is then a few microseconds, which SQLite's epoch
    arithmetic in the database's aggregate rounds to 0 (no pace) where the reference's Python
    datetimes keep them (millions of labels an hour). Neither figure means anything; seconds
    apart, both sides compute the same pace."""
    start = timezone.now() - timedelta(days=1)
    comparisons = list(Comparison.objects.filter(project=project).order_by("id"))
    for i, comparison in enumerate(comparisons):
        comparison.created_at = start + timedelta(seconds=i)
    Comparison.objects.bulk_update(comparisons, ["created_at"], batch_size=1000)


@pytest.mark.parametrize("method", ["majority", "dawid_skene", "glad", "mace"])
@pytest.mark.parametrize("in_training", [True, False])
def test_judges_figures_match_their_definitions_on_a_planted_crowd(
    project,
    planted,  # noqa: F811
    method,
    in_training,
):
    """A good judge (right on 80%, a lean to the first-shown response) and a noise judge
    read every planted pair in both orders; the figures aggregated in the database are the
    ones recomputed comparison by comparison."""
    crowd, users, pairs = planted
    rng = np.random.default_rng(11)
    for name, accuracy, lean in (("good", 0.8, 0.1), ("noise", 0.5, 0.0)):
        judge = JudgeFactory(project=project, name=name)
        verdicts, comparisons = [], []
        for pair, a_better in zip(pairs, crowd.truth, strict=True):
            said = {}
            for order in ("ab", "ba"):
                first = "a" if order == "ab" else "b"
                if rng.random() < 2 * lean:
                    said[order] = first
                else:
                    right = rng.random() < accuracy
                    said[order] = "a" if a_better == right else "b"
                verdicts.append(
                    JudgeVerdict(judge=judge, pair=pair, order=order, choice=said[order])
                )
            choice = said["ab"] if said["ab"] == said["ba"] else "tie"
            comparisons.append(
                Comparison(
                    pair=pair,
                    project=project,
                    labeler=judge.user,
                    source=Comparison.Source.AI_JUDGE,
                    choice=choice,
                    p_chosen=1.0 if choice != "tie" else 0.5,
                )
            )
        JudgeVerdict.objects.bulk_create(verdicts)
        Comparison.objects.bulk_create(comparisons)
    Pair.objects.filter(pk__in=[p.pk for p in pairs[:30]]).update(gold="a")
    Project.objects.filter(pk=project.pk).update(judges_in_training=in_training)
    aggregate(project, method)
    membership_exclude(project=project, user=users[0])
    _spaced_in_time(project)
    assert_same_figures(project)
    figures, _ = quality_figures(project=project, n_boot=N_BOOT)
    good, noise = rows(figures)["good"], rows(figures)["noise"]
    assert good["agreement_with_humans"] > noise["agreement_with_humans"]
    assert good["reliability"] > noise["reliability"]
    assert good["first_rate"] > noise["first_rate"]


def test_the_api_and_the_dashboard_show_the_judges(project, staff, case):
    quality_compute(project_id=project.pk)
    client = APIClient()
    client.force_login(staff)
    answer = client.get(reverse("api-project-quality", args=[project.slug])).json()
    assert [row["name"] for row in answer["judges"]["rows"]] == ["lefty", "sharp"]
    assert answer["judges"]["rows"][1]["agreement_with_humans"] == 0.75
    page = client.get(reverse("project-quality", args=[project.slug])).content.decode()
    assert 'id="judges"' in page and "AI judge" in page and 'id="judge-' in page
    # The judge's model name is the endpoint's text: shown, never run.
    assert XSS not in page and "&lt;script&gt;" in page
    # The people's table lists people only.
    labelers_table = page.split('id="labelers"')[1].split('id="judges"')[0]
    assert "sharp" not in labelers_table and "bob" in labelers_table
