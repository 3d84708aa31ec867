"""Judge-first labeling (Project.judge_first): people are served only the pairs the AI judges
disagree on (with each other or with the active reward model), are unsure of, or have not
read; the pairs the judges settled stay open but are never served to people."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from annotate.models import Choice, Comparison, Membership, Project
from annotate.selectors.quality import quality_figures
from annotate.services.judges_verdict import judges_verdict_refresh
from annotate.services.labeling import comparison_create, lease_candidate_plan, pair_lease_next
from annotate.services.review import membership_exclude
from tests.annotate.selectors.test_quality_reference import assert_same_figures
from tests.factories import JudgeFactory, make_pair

pytestmark = pytest.mark.django_db


def judge_says(judge, pair, choice: str, p_chosen: float | None) -> Comparison:
    """A judge's comparison, as the judging service writes it (both readings made one, the
    pair's judges' verdict recounted)."""
    comparison = Comparison.objects.create(
        pair=pair,
        project=pair.project,
        labeler=judge.user,
        source=Comparison.Source.AI_JUDGE,
        choice=choice,
        p_chosen=p_chosen,
    )
    judges_verdict_refresh(pair_ids=[pair.pk])
    return comparison


def served(project: Project, labeler) -> list[int]:
    """Every pair the queue serves this labeler, in order, each judged as it comes."""
    ids = []
    while (lease := pair_lease_next(project=project, labeler=labeler)) is not None:
        ids.append(lease.pair_id)
        comparison_create(pair=lease.pair, labeler=labeler, choice=Choice.A)
    return ids


@pytest.fixture
def cases(project):
    """One pair per case, two judges (A-one, B-two), margin 0.2: sure means P >= 0.7."""
    one, two = JudgeFactory(project=project, name="one"), JudgeFactory(project=project, name="two")
    pairs = {}

    def case(name: str, *says, **pair_fields):
        pair = make_pair(project, **pair_fields)
        for judge, choice, p in says:
            judge_says(judge, pair, choice, p)
        pairs[name] = pair

    case("unread")
    case("settled", (one, "a", 0.9), (two, "a", 0.8))
    case("settled_by_one", (one, "b", 0.95))
    case("judges_disagree", (one, "a", 0.9), (two, "b", 0.9))
    case("one_unsure", (one, "a", 0.9), (two, "a", 0.6))
    case("no_probability", (one, "a", None))
    case("tie", (one, "tie", 0.9), (two, "tie", 0.9))
    case("both_bad", (one, "both_bad", 0.9))
    case("model_disagrees", (one, "a", 0.9), (two, "a", 0.9), model_p_a=0.3)
    case("model_agrees", (one, "a", 0.9), (two, "a", 0.9), model_p_a=0.8)
    case("model_undecided", (one, "b", 0.9), model_p_a=0.5)
    case("at_the_margin", (one, "b", 0.7))
    return {"one": one, "two": two, **pairs}


SETTLED = {"settled", "settled_by_one", "model_agrees", "model_undecided", "at_the_margin"}


def names_of(ids, cases):
    by_id = {pair.pk: name for name, pair in cases.items() if name not in ("one", "two")}
    return [by_id[i] for i in ids]


def test_judge_first_serves_people_only_what_the_judges_did_not_settle(project, labeler, cases):
    Project.objects.filter(pk=project.pk).update(judge_first=True, judge_first_margin=0.2)
    project.refresh_from_db()
    got = names_of(served(project, labeler), cases)
    assert set(got) == set(cases) - {"one", "two"} - SETTLED
    assert len(got) == len(set(got))
    # Settled pairs stay open: they wait for people should the judges or the model turn.
    for name in SETTLED:
        cases[name].refresh_from_db()
        assert cases[name].is_open and cases[name].human_count == 0


def test_without_judge_first_every_pair_is_served(project, labeler, cases):
    got = names_of(served(project, labeler), cases)
    assert set(got) == set(cases) - {"one", "two"}


def test_a_wider_margin_leaves_more_to_people(project, labeler, cases):
    Project.objects.filter(pk=project.pk).update(judge_first=True, judge_first_margin=0.42)
    project.refresh_from_db()
    got = set(names_of(served(project, labeler), cases))
    # Sure now means P >= 0.92: only the 0.95 judgment still settles its pair.
    assert got == set(cases) - {"one", "two", "settled_by_one"}


def test_an_excluded_judge_settles_nothing_and_a_new_verdict_can_unsettle(project, labeler, cases):
    Project.objects.filter(pk=project.pk).update(judge_first=True)
    project.refresh_from_db()
    membership_exclude(project=project, user=cases["one"].user, reason="noise")
    # Judge one's verdicts no longer count: its lone ones settle nothing, and judge two alone
    # now settles "judges_disagree" (B at 0.9); a third judge unsettles "model_agrees".
    third = JudgeFactory(project=project, name="three")
    judge_says(third, cases["model_agrees"], "b", 0.99)
    got = set(names_of(served(project, labeler), cases))
    assert got == set(cases) - {"one", "two", "settled", "judges_disagree"}
    assert Membership.objects.get(project=project, user=cases["one"].user).excluded


def test_judge_first_still_walks_the_queue_index(project, labeler, cases):
    """The judges' test reads the walked pair's own row (its judges' verdict): the walk of
    the `pair_queue` index stays the plan."""
    Project.objects.filter(pk=project.pk).update(judge_first=True)
    project.refresh_from_db()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for plan_kind in ("seqscan", "bitmapscan", "sort"):
                    cursor.execute(f"SET LOCAL enable_{plan_kind} = off")
        plan = lease_candidate_plan(project=project, labeler=labeler, random_order=False)
    assert "pair_queue" in plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan


def test_the_quality_page_counts_the_settled_pairs_out_of_the_queue(project, labeler, cases):
    before, _ = quality_figures(project=project, n_boot=10)
    assert (before["queue_depth"], before["judge_settled"]) == (12, None)
    Project.objects.filter(pk=project.pk).update(judge_first=True)
    project.refresh_from_db()
    after, _ = quality_figures(project=project, n_boot=10)
    assert (after["queue_depth"], after["judge_settled"]) == (12 - len(SETTLED), len(SETTLED))
    assert after["judgments_needed"] == 12 - len(SETTLED)
    # The same rule read off the comparisons one by one.
    assert_same_figures(project)
    served(project, labeler)
    assert_same_figures(project)
