"""The AI judges' verdict kept on each Pair (annotate.services.judges_verdict) and judge-first's
rule that reads it (annotate.selectors.judge_first): on a randomized project, the rule settles
exactly the pairs that the rule it replaced (an EXISTS over the pair's comparisons, kept here
as the oracle) settles, at every margin, after each kind of change to what it summarizes."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.forms.models import model_to_dict
from django.test import Client

from annotate.models import (
    Comparison,
    Judge,
    JudgeVerdict,
    Membership,
    Pair,
    Project,
)
from annotate.selectors.judge_first import settled_sql
from annotate.selectors.quality_counts import judge_settled
from annotate.services.judges_verdict import judges_verdict_refresh
from annotate.services.judging_run import judge_comparison_make
from annotate.services.review import membership_exclude, membership_include
from tests.factories import (
    JudgeFactory,
    MembershipFactory,
    ProjectFactory,
    StaffFactory,
    make_pair,
)

pytestmark = pytest.mark.django_db

# Sure from 0.5 (margin 0) to 1.0 (margin 0.5); the judges' P values fall on them too.
SURE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
P_CHOSEN = (None, 0.0, 0.5, 0.6, 0.65, 0.7, 0.8, 0.9, 0.95, 1.0)
MODEL_P_A = (None, 0.5, 0.0, 0.2, 0.4999, 0.5001, 0.8, 1.0)
CHOICES = ("a", "a", "a", "b", "b", "b", "tie", "both_bad")


def old_settled_sql(pair: str = "p") -> str:
    """The rule before the verdict was kept on the Pair, as it stood: the oracle."""
    return f"""EXISTS (SELECT 1 FROM annotate_comparison j
                   WHERE j.pair_id = {pair}.id AND j.source = 'ai_judge' AND NOT j.is_repeat
                     AND NOT EXISTS (SELECT 1 FROM annotate_membership m
                                     WHERE m.project_id = {pair}.project_id
                                       AND m.user_id = j.labeler_id AND m.excluded)
                   GROUP BY j.pair_id
                   HAVING MIN(j.choice) = MAX(j.choice) AND MIN(j.choice) IN ('a', 'b')
                      AND MIN(COALESCE(j.p_chosen, 0)) >= %s
                      AND ({pair}.model_p_a IS NULL OR {pair}.model_p_a = 0.5
                           OR (MIN(j.choice) = 'a' AND {pair}.model_p_a > 0.5)
                           OR (MIN(j.choice) = 'b' AND {pair}.model_p_a < 0.5)))"""


def settled(project: Project, rule: str, sure: float) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.id FROM annotate_pair p WHERE p.project_id = %s AND {rule}",
            [project.pk, sure],
        )
        return {row[0] for row in cursor.fetchall()}


def expected_verdict(pair: Pair) -> tuple[str, float | None]:
    """The verdict read off the comparisons one by one, in Python."""
    excluded = set(
        Membership.objects.filter(project_id=pair.project_id, excluded=True).values_list(
            "user_id", flat=True
        )
    )
    counted = [
        c
        for c in pair.comparisons.filter(source=Comparison.Source.AI_JUDGE, is_repeat=False)
        if c.labeler_id not in excluded
    ]
    if not counted:
        return "", None
    choices = {c.choice for c in counted}
    choice = choices.pop() if len(choices) == 1 else "split"
    return choice, min(c.p_chosen or 0.0 for c in counted)


def assert_rule_agrees(project: Project) -> int:
    """The column rule settles what the EXISTS rule settles, at every threshold; the columns
    hold what their definition says; the quality page's count follows. Returns how many pairs
    the middle threshold settles (so a test can show a change moved something)."""
    new = settled_sql(connection.ops.quote_name, "p")
    for sure in SURE:
        assert settled(project, new, sure) == settled(project, old_settled_sql(), sure), sure
    for pair in Pair.objects.filter(project=project):
        assert (pair.judges_choice, pair.judges_min_p) == expected_verdict(pair), pair.pk
    open_short = settled(project, f"p.is_open AND p.human_count < 3 AND {old_settled_sql()}", 0.7)
    assert judge_settled(project.pk, 3, 0.7)[0] == len(open_short)
    return len(settled(project, new, 0.7))


def judge_reads(judge: Judge, pair: Pair, choice: str, p_a: float | None) -> Comparison | None:
    """The judging run's own path once both readings are in: its verdicts, then its one
    comparison (judge_comparison_make), the verdict recounted within it."""
    for order in ("ab", "ba"):
        JudgeVerdict.objects.create(judge=judge, pair=pair, order=order, choice=choice, p_a=p_a)
    return judge_comparison_make(judge=judge, pair_id=pair.pk)


@pytest.fixture
def world(project, labeler):
    """A project of 90 pairs: three judges (one excluded) reading most of them with mixed
    choices and P values, repeats and people's votes that the rule ignores, the reward model's
    view of every kind, and a judge's account excluded in another project (nothing to this one)."""
    rng = random.Random(27)
    judges = [JudgeFactory(project=project, name=f"j{i}") for i in range(3)]
    pairs = [make_pair(project, model_p_a=rng.choice(MODEL_P_A)) for _ in range(90)]
    rows = []
    for pair in pairs:
        lean = rng.choice("ab")
        for judge in judges:
            if rng.random() < 0.25:
                continue  # this judge has not read the pair
            choice = lean if rng.random() < 0.75 else rng.choice(CHOICES)
            rows.append(
                Comparison(
                    pair=pair,
                    project=project,
                    labeler=judge.user,
                    source=Comparison.Source.AI_JUDGE,
                    choice=choice,
                    p_chosen=rng.choice(P_CHOSEN),
                )
            )
            if rng.random() < 0.1:  # a swapped repeat saying otherwise: never counted
                rows.append(
                    Comparison(
                        pair=pair,
                        project=project,
                        labeler=judge.user,
                        source=Comparison.Source.AI_JUDGE,
                        choice="b" if choice == "a" else "a",
                        p_chosen=1.0,
                        is_repeat=True,
                    )
                )
        if rng.random() < 0.3:
            rows.append(
                Comparison(pair=pair, project=project, labeler=labeler, choice=rng.choice("ab"))
            )
    Comparison.objects.bulk_create(rows)
    judges_verdict_refresh(pair_ids=[p.pk for p in pairs])  # bulk-written: recounted at once
    membership_exclude(project=project, user=judges[2].user, reason="noise")
    elsewhere = ProjectFactory(slug="elsewhere")
    MembershipFactory(project=elsewhere, user=judges[0].user, excluded=True)
    return {"judges": judges, "pairs": pairs, "rng": rng}


def test_the_rule_agrees_with_the_comparisons_rule_on_a_random_project(project, world):
    assert 0 < assert_rule_agrees(project) < len(world["pairs"])
    # Every kind of verdict is there to agree on.
    kinds = set(Pair.objects.filter(project=project).values_list("judges_choice", flat=True))
    assert {"", "a", "b", "split"} <= kinds


def test_a_judges_new_comparisons_recount_their_pairs(project, world):
    j0, j1, _ = world["judges"]
    unread = {
        judge: [
            p
            for p in world["pairs"]
            if not Comparison.objects.filter(pair=p, labeler=judge.user).exists()
        ]
        for judge in (j0, j1)
    }
    before = assert_rule_agrees(project)
    rng = world["rng"]
    for judge, pairs in unread.items():
        for pair in pairs:
            p_a = rng.choice((None, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98))
            assert judge_reads(judge, pair, rng.choice(CHOICES), p_a) is not None
    assert sum(map(len, unread.values())) > 10
    assert assert_rule_agrees(project) != before


def test_excluding_and_including_a_judge_recounts_its_pairs(project, world):
    j0, _, j2 = world["judges"]
    excluded_j2 = assert_rule_agrees(project)
    membership_include(project=project, user=j2.user)
    with_all = assert_rule_agrees(project)
    membership_exclude(project=project, user=j0.user, reason="drifted")
    without_j0 = assert_rule_agrees(project)
    assert len({excluded_j2, with_all, without_j0}) > 1


def test_a_deleted_judge_leaves_its_comparisons_and_the_verdicts_as_they_were(project, world):
    before = list(Pair.objects.order_by("pk").values_list("judges_choice", "judges_min_p"))
    for judge in world["judges"]:
        judge.delete()  # its account (PROTECT) and comparisons stay; its readings go
    assert not JudgeVerdict.objects.exists()
    assert Comparison.objects.filter(source=Comparison.Source.AI_JUDGE).count() > 100
    assert list(Pair.objects.order_by("pk").values_list("judges_choice", "judges_min_p")) == before
    assert_rule_agrees(project)


def test_the_reward_model_is_read_as_it_stands(project, world):
    rng = world["rng"]
    pairs = list(Pair.objects.filter(project=project))
    for pair in pairs:
        pair.model_p_a = rng.choice(MODEL_P_A)
    Pair.objects.bulk_update(pairs, ["model_p_a"])  # as a promotion writes it
    assert_rule_agrees(project)


def _admin() -> Client:
    client = Client()
    client.force_login(StaffFactory())
    return client


def _form_data(obj) -> dict:
    """An admin change form's fields as posted unchanged (unchecked boxes are left out)."""
    data = {}
    for name, value in model_to_dict(obj).items():
        if value is True:
            data[name] = "on"
        elif (
            value is None
            or value is False
            or (isinstance(value, list) and value and hasattr(value[0], "pk"))
        ):
            continue  # unchecked, empty, or a many-to-many through memberships (not a field)
        elif isinstance(value, list | dict):
            data[name] = json.dumps(value)
        else:
            data[name] = value
    return data


def test_staff_edits_and_deletions_in_the_admin_recount_the_pairs(project, world):
    client = _admin()
    j0, j1, j2 = world["judges"]
    said = Comparison.objects.filter(labeler=j0.user, is_repeat=False).order_by("pk")
    # A judge's comparison edited, one deleted, several deleted at once.
    edited = said[0]
    data = {**_form_data(edited), "choice": "b" if edited.choice == "a" else "a", "p_chosen": 1}
    response = client.post(f"/admin/annotate/comparison/{edited.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert_rule_agrees(project)
    response = client.post(f"/admin/annotate/comparison/{said[1].pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert_rule_agrees(project)
    several = list(
        Comparison.objects.filter(labeler=j1.user, is_repeat=False).values_list("pk", flat=True)
    )[:12]
    response = client.post(
        "/admin/annotate/comparison/",
        {"action": "delete_selected", "_selected_action": several, "post": "yes"},
    )
    assert response.status_code == 302 and not Comparison.objects.filter(pk__in=several).exists()
    assert_rule_agrees(project)
    # A judge's membership edited (included again), then deleted: its comparisons count.
    membership = Membership.objects.get(project=project, user=j2.user)
    data = {**_form_data(membership), "excluded_reason": ""}
    data.pop("excluded", None)
    response = client.post(f"/admin/annotate/membership/{membership.pk}/change/", data)
    assert response.status_code == 302
    assert not Membership.objects.get(pk=membership.pk).excluded
    assert_rule_agrees(project)
    membership = Membership.objects.get(project=project, user=j0.user)
    response = client.post(
        f"/admin/annotate/membership/{membership.pk}/change/",
        {**_form_data(membership), "excluded": "on", "excluded_reason": "admin"},
    )
    assert response.status_code == 302
    assert_rule_agrees(project)
    response = client.post(f"/admin/annotate/membership/{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert_rule_agrees(project)


def test_excluding_a_judge_in_the_projects_admin_page_recounts_its_pairs(project, world):
    client = _admin()
    j1 = world["judges"][1]
    page = client.get(f"/admin/annotate/project/{project.pk}/change/")
    data = _form_data(Project.objects.get(pk=project.pk))
    formset = page.context["inline_admin_formsets"][0].formset
    for key, value in formset.management_form.initial.items():
        data[f"{formset.prefix}-{key}"] = value
    for i, form in enumerate(formset.forms):
        member = form.instance
        if member.pk is None:
            continue
        data[f"{formset.prefix}-{i}-id"] = member.pk
        data[f"{formset.prefix}-{i}-project"] = project.pk
        data[f"{formset.prefix}-{i}-user"] = member.user_id
        data[f"{formset.prefix}-{i}-excluded_reason"] = member.excluded_reason
        if member.excluded or member.user_id == j1.user_id:
            data[f"{formset.prefix}-{i}-excluded"] = "on"
    response = client.post(f"/admin/annotate/project/{project.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Membership.objects.get(project=project, user=j1.user).excluded
    assert_rule_agrees(project)


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_verdicts_of_existing_pairs(project, world):
    """Back to before the columns, then forward: the pairs judged meanwhile get their verdicts
    from the migration itself."""
    expected = list(Pair.objects.order_by("pk").values_list("judges_choice", "judges_min_p"))
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("annotate", "0012_rankings_ratings")])
        executor = MigrationExecutor(connection)
        executor.migrate([("annotate", "0013_pair_judges_verdict")])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)
    got = list(Pair.objects.order_by("pk").values_list("judges_choice", "judges_min_p"))
    assert got == expected
    assert_rule_agrees(project)


def test_a_recount_of_many_pairs_or_of_a_query_changes_only_what_moved(project, world):
    ids = [p.pk for p in world["pairs"]]
    # More ids than one statement binds (ids of no pair among them): chunked, nothing moved.
    many = [*ids, *range(10**9, 10**9 + 2500)]
    assert judges_verdict_refresh(pair_ids=many) == 0
    blanked = Pair.objects.filter(pk__in=ids[:30])
    held = blanked.exclude(judges_choice="", judges_min_p=None).count()
    assert held > 10
    for pair_ids in (many, Pair.objects.filter(project=project).values("pk")):
        blanked.update(judges_choice="", judges_min_p=None)
        assert judges_verdict_refresh(pair_ids=pair_ids) == held
        assert_rule_agrees(project)


@pytest.mark.django_db(transaction=True)
def test_a_judge_excluded_while_its_comparison_is_being_stored_is_not_counted():
    """PostgreSQL runs the two at once (SQLite one writer at a time): the exclusion's recount
    waits for the comparison's transaction, so the pair's verdict leaves the judge out."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL")
    project = ProjectFactory(slug="race")
    judge = JudgeFactory(project=project, name="racer")
    pair = make_pair(project)
    judged, release, errors = threading.Event(), threading.Event(), []

    def store() -> None:
        try:
            with transaction.atomic():
                assert judge_reads(judge, pair, "a", 0.95) is not None
                judged.set()
                release.wait(timeout=30)
        except Exception as error:
            errors.append(repr(error))
        finally:
            judged.set()
            connection.close()

    def exclude() -> None:
        try:
            membership_exclude(project=project, user=judge.user, reason="mid-run")
        except Exception as error:
            errors.append(repr(error))
        finally:
            connection.close()

    storer = threading.Thread(target=store)
    storer.start()
    assert judged.wait(timeout=30)
    excluder = threading.Thread(target=exclude)
    excluder.start()
    # Until the exclusion ends or is seen waiting on a lock held by the open comparison.
    deadline = time.monotonic() + 30
    while excluder.is_alive() and not _a_backend_waits_on_a_lock():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    release.set()
    storer.join(timeout=30)
    excluder.join(timeout=30)
    assert not errors, errors
    pair.refresh_from_db()
    assert (pair.judges_choice, pair.judges_min_p) == ("", None) == expected_verdict(pair)
    assert Membership.objects.get(project=project, user=judge.user).excluded


def _a_backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
