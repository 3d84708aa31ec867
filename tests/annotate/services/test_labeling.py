"""The assignment rules and the comparison rules, through the services."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from annotate.models import Choice, Comparison, Lease, Pair, Project, Prompt, Side
from annotate.services import _queue_sql
from annotate.services.labeling import (
    ComparisonExists,
    ComparisonInvalid,
    PairFull,
    ShownResponse,
    StoredComparison,
    choice_from_preferred,
    comparison_create,
    comparison_submit,
    lease_skip,
    pair_lease_next,
)
from tests.factories import MembershipFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db


def member(project, username):
    user = UserFactory(username=username)
    MembershipFactory(project=project, user=user)
    return user


def judge(project, labeler, choice=Choice.A, **fields):
    lease = pair_lease_next(project=project, labeler=labeler)
    assert lease is not None
    return comparison_create(pair=lease.pair, labeler=labeler, choice=choice, **fields)


def test_leases_highest_priority_first_then_oldest(project, labeler):
    low = make_pair(project, priority=0.1)
    high_old = make_pair(project, priority=0.9)
    high_new = make_pair(project, priority=0.9)
    order = []
    for _ in range(3):
        lease = pair_lease_next(project=project, labeler=labeler)
        order.append(lease.pair_id)
        comparison_create(pair=lease.pair, labeler=labeler, choice=Choice.TIE)
    assert order == [high_old.pk, high_new.pk, low.pk]
    assert pair_lease_next(project=project, labeler=labeler) is None


def test_reload_returns_the_held_pair(project, labeler):
    make_pair(project)
    make_pair(project)
    first = pair_lease_next(project=project, labeler=labeler)
    again = pair_lease_next(project=project, labeler=labeler)
    assert again.lease_id == first.lease_id and again.left == first.left
    assert Lease.objects.filter(labeler=labeler).count() == 1


def test_lease_blocks_other_labelers_until_it_expires(project, labeler):
    pair = make_pair(project)
    bob = member(project, "bob")
    held = pair_lease_next(project=project, labeler=labeler)
    assert held.pair_id == pair.pk
    assert held.expires_at > timezone.now() + timedelta(minutes=project.lease_minutes - 1)
    assert pair_lease_next(project=project, labeler=bob) is None

    Lease.objects.filter(pk=held.lease_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    freed = pair_lease_next(project=project, labeler=bob)
    assert freed is not None and freed.pair_id == pair.pk


def test_redundancy_counts_distinct_labelers_and_closes_the_pair(project, labeler):
    Project.objects.filter(pk=project.pk).update(redundancy=2)
    project.refresh_from_db()
    pair = make_pair(project)
    bob, carol = member(project, "bob"), member(project, "carol")

    # Two live leases fill both slots: a third labeler gets nothing.
    a = pair_lease_next(project=project, labeler=labeler)
    b = pair_lease_next(project=project, labeler=bob)
    assert a.pair_id == b.pair_id == pair.pk
    assert pair_lease_next(project=project, labeler=carol) is None

    comparison_create(pair=pair, labeler=labeler, choice=Choice.A)
    comparison_create(pair=pair, labeler=bob, choice=Choice.B)
    pair.refresh_from_db()
    project.refresh_from_db()
    assert (pair.human_count, pair.is_open) == (2, False)
    assert project.comparison_count == 2
    assert pair_lease_next(project=project, labeler=carol) is None
    assert not Lease.objects.filter(pair=pair).exists()


def test_a_labeler_never_gets_a_pair_twice(project, labeler):
    Project.objects.filter(pk=project.pk).update(redundancy=3)
    project.refresh_from_db()
    pair = make_pair(project)
    judge(project, labeler)
    pair.refresh_from_db()
    assert pair.is_open
    assert pair_lease_next(project=project, labeler=labeler) is None


def test_skip_passes_the_pair_to_others_and_not_back(project, labeler):
    skipped = make_pair(project, priority=1)
    other = make_pair(project)
    bob = member(project, "bob")
    lease = pair_lease_next(project=project, labeler=labeler)
    assert lease.pair_id == skipped.pk
    lease_skip(pair=skipped, labeler=labeler)
    assert pair_lease_next(project=project, labeler=labeler).pair_id == other.pk
    assert pair_lease_next(project=project, labeler=bob).pair_id == skipped.pk


def test_left_side_is_drawn_per_labeler_and_pair_and_recorded(project, labeler):
    for _ in range(40):
        make_pair(project)
    sides = set()
    for _ in range(40):
        lease = pair_lease_next(project=project, labeler=labeler)
        sides.add(lease.left)
        comparison = comparison_create(pair=lease.pair, labeler=labeler, choice=Choice.A)
        assert comparison.left == lease.left
    # 40 fair draws all on one side would happen with probability 2**-39.
    assert sides == {Side.A, Side.B}


def test_comparison_is_stored_with_its_details(project, labeler):
    Project.objects.filter(pk=project.pk).update(
        ask_strength=True, reason_tags=["accurate", "concise"]
    )
    project.refresh_from_db()
    make_pair(project)
    c = judge(
        project,
        labeler,
        choice=Choice.B,
        strength=3,
        reasons=["concise", "accurate", "concise"],
        comment="B is shorter",
        time_spent_ms=4200,
    )
    stored = Comparison.objects.get(pk=c.pk)
    assert (stored.choice, stored.strength, stored.reasons) == ("b", 3, ["concise", "accurate"])
    assert (stored.comment, stored.time_spent_ms, stored.source) == ("B is shorter", 4200, "human")
    assert stored.labeler == labeler and stored.project_id == project.pk


@pytest.mark.parametrize(
    "scale, fields, message",
    [
        ({"allow_tie": False}, {"choice": "tie"}, "ties"),
        ({"allow_both_bad": False}, {"choice": "both_bad"}, "both bad"),
        ({"ask_strength": True}, {"choice": "a"}, "strength"),
        ({"ask_strength": True}, {"choice": "a", "strength": 5}, "between 1 and 4"),
        ({"ask_strength": True}, {"choice": "tie", "strength": 2}, "only to a preference"),
        ({}, {"choice": "a", "strength": 1}, "only to a preference"),
        ({"reason_tags": ["accurate"]}, {"choice": "a", "reasons": ["vibes"]}, "vibes"),
        ({}, {"choice": "maybe"}, "Unknown choice"),
    ],
)
def test_judgments_outside_the_scale_are_refused(project, labeler, scale, fields, message):
    Project.objects.filter(pk=project.pk).update(**scale)
    project.refresh_from_db()
    make_pair(project)
    lease = pair_lease_next(project=project, labeler=labeler)
    with pytest.raises(ComparisonInvalid, match=message):
        comparison_create(pair=lease.pair, labeler=labeler, **fields)
    assert not Comparison.objects.exists()


def test_strength_labels_of_the_project_set_the_range(project, labeler):
    Project.objects.filter(pk=project.pk).update(
        ask_strength=True, strength_labels=["a bit", "a lot"]
    )
    project.refresh_from_db()
    make_pair(project)
    lease = pair_lease_next(project=project, labeler=labeler)
    with pytest.raises(ComparisonInvalid, match="between 1 and 2"):
        comparison_create(pair=lease.pair, labeler=labeler, choice="a", strength=3)
    assert comparison_create(pair=lease.pair, labeler=labeler, choice="a", strength=2).pk


def test_a_repeat_submission_is_refused_with_the_existing_id(project, labeler):
    Project.objects.filter(pk=project.pk).update(redundancy=2)
    project.refresh_from_db()
    make_pair(project)
    first = judge(project, labeler)
    with pytest.raises(ComparisonExists) as error:
        comparison_create(pair=first.pair, labeler=labeler, choice=Choice.B)
    assert error.value.comparison_id == first.pk
    assert Comparison.objects.count() == 1
    first.pair.refresh_from_db()
    assert first.pair.human_count == 1


def test_a_full_pair_refuses_a_labeler_without_a_live_lease(project, labeler):
    pair = make_pair(project)
    bob = member(project, "bob")
    pair_lease_next(project=project, labeler=bob)
    # Bob's live lease holds the only slot.
    with pytest.raises(PairFull):
        comparison_create(pair=pair, labeler=labeler, choice=Choice.A)
    comparison_create(pair=pair, labeler=bob, choice=Choice.A)
    with pytest.raises(PairFull):
        comparison_create(pair=pair, labeler=labeler, choice=Choice.A)
    assert Comparison.objects.count() == 1


def test_an_expired_lease_still_records_left_when_room_is_left(project, labeler):
    pair = make_pair(project)
    lease = pair_lease_next(project=project, labeler=labeler)
    Lease.objects.filter(pk=lease.lease_id).update(expires_at=timezone.now() - timedelta(minutes=1))
    comparison = comparison_create(pair=pair, labeler=labeler, choice=Choice.TIE)
    assert comparison.left == lease.left


def test_preferred_maps_response_ids_to_canonical_choices(project):
    pair = make_pair(project)
    assert choice_from_preferred(pair=pair, preferred=pair.response_a_id) == "a"
    assert choice_from_preferred(pair=pair, preferred=str(pair.response_b_id)) == "b"
    assert choice_from_preferred(pair=pair, preferred="tie") == "tie"
    assert choice_from_preferred(pair=pair, preferred="both_bad") == "both_bad"
    with pytest.raises(ComparisonInvalid):
        choice_from_preferred(pair=pair, preferred=pair.response_b_id + 1000)
    with pytest.raises(ComparisonInvalid):
        choice_from_preferred(pair=pair, preferred="left")


def test_pairs_of_other_projects_are_never_leased(project, labeler):
    other = Project.objects.create(name="Other", slug="other")
    make_pair(other)
    assert pair_lease_next(project=project, labeler=labeler) is None
    assert Pair.objects.filter(project=other, is_open=True).count() == 1


def test_a_lease_and_a_submission_carry_the_values_the_orm_reads(project, labeler):
    """The hot path answers with plain data built from its rows: the Python values the ORM
    gives for the same rows (parsed JSON, aware datetimes, booleans), on either database."""
    Project.objects.filter(pk=project.pk).update(ask_strength=True, reason_tags=["safe", "true"])
    pair = make_pair(project, "What is 2 + 2?", a="4", b="five")
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 2?"},
    ]
    Prompt.objects.filter(pk=pair.prompt_id).update(messages=conversation, metadata={"index": 7})
    lease = pair_lease_next(project=project, labeler=labeler)

    row = Lease.objects.select_related("pair__prompt", "pair__response_a", "pair__response_b")
    row = row.get(pk=lease.lease_id)
    assert (lease.pair_id, lease.left, lease.is_repeat) == (pair.pk, row.left, False)
    assert lease.expires_at == row.expires_at and lease.expires_at.tzinfo is not None
    assert lease.messages == row.pair.prompt.messages == conversation
    assert lease.prompt_text == row.pair.prompt.text == "What is 2 + 2?"
    assert lease.response_a == ShownResponse(pair.response_a_id, "4")
    assert lease.response_b == ShownResponse(pair.response_b_id, "five")
    assert [r.id for r in lease.shown][0] == (
        pair.response_a_id if row.left == Side.A else pair.response_b_id
    )
    # A reload reads the held lease through the ORM: the same values.
    assert pair_lease_next(project=project, labeler=labeler) == lease
    # Off the hot path the Pair itself comes from the ORM, every column loaded.
    assert lease.pair == pair and lease.pair.prompt.metadata == {"index": 7}

    stored = comparison_submit(
        labeler=labeler,
        pair_id=lease.pair_id,
        preferred=lease.shown[0].id,
        strength=2,
        reasons=["true", "safe"],
        comment="Right.",
        time_spent_ms=1200,
    )
    comparison = Comparison.objects.select_related("pair", "project").get()
    assert stored == StoredComparison.of(comparison)
    assert stored.reasons == ["true", "safe"] and stored.created_at.tzinfo is not None
    # The columns the insert writes without being told: as the ORM would have written them.
    assert (comparison.source, comparison.labeler_id, comparison.import_batch_id) == (
        Comparison.Source.HUMAN,
        labeler.pk,
        None,
    )
    assert (comparison.import_file, comparison.import_key) == ("", "")
    assert 0 <= comparison.random_key < 1 and not comparison.is_gold_check


def test_the_comparison_insert_names_every_column_of_the_model():
    """The judgment's INSERT is written out by hand: a column added to Comparison later must
    be added to it too, not left to a database default the model does not declare."""
    columns = {f.column for f in Comparison._meta.concrete_fields if not f.primary_key}
    assert set(_queue_sql.COMPARISON_COLUMNS) == columns
    assert len(_queue_sql.COMPARISON_COLUMNS) == len(columns)


@pytest.mark.django_db(transaction=True)  # real commits: SET LOCAL ends with each transaction
def test_only_lease_transactions_skip_waiting_for_the_disk(project, labeler):
    pair = make_pair(project)

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    if connection.vendor != "postgresql":
        # SQLite has no such setting; the lease and the judgment still store as usual.
        lease = pair_lease_next(project=project, labeler=labeler)
        comparison_submit(labeler=labeler, pair_id=lease.pair_id, preferred="tie")
        assert Comparison.objects.get().pair_id == pair.pk
        return
    with transaction.atomic():
        lease = pair_lease_next(project=project, labeler=labeler)
        assert synchronous_commit() == "off"
    # The setting ended with the lease's transaction: a judgment's commit waits.
    assert synchronous_commit() == "on"
    with transaction.atomic():
        comparison_submit(labeler=labeler, pair_id=lease.pair_id, preferred="tie")
        assert synchronous_commit() == "on"
    assert Comparison.objects.get().pair_id == pair.pk


@pytest.mark.django_db(transaction=True)  # three connections: holder, submitter, this test
def test_a_judgment_commits_while_another_transaction_holds_the_project_row(project, labeler):
    """Every labeler counts on the same project row; a judgment must not wait behind that
    row's lock (nor hold it through its own commit). The counter catches up once it is free."""
    make_pair(project)
    lease = pair_lease_next(project=project, labeler=labeler)
    if connection.vendor != "postgresql":
        # SQLite locks the whole file, not a row: there the two commits simply run in turn.
        comparison_submit(labeler=labeler, pair_id=lease.pair_id, preferred="tie")
        assert Project.objects.get(pk=project.pk).comparison_count == 1
        return
    locked, release, failures = threading.Event(), threading.Event(), []

    def hold_project_row() -> None:
        try:
            with transaction.atomic():
                # The lock the counter takes (an FK check takes KEY SHARE, which it allows).
                Project.objects.select_for_update(no_key=True).get(pk=project.pk)
                locked.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    def submit() -> None:
        try:
            comparison_submit(labeler=labeler, pair_id=lease.pair_id, preferred="tie")
        except Exception as error:  # reported by the test thread
            failures.append(repr(error))
        finally:
            connection.close()

    holder = threading.Thread(target=hold_project_row)
    holder.start()
    assert locked.wait(timeout=30)
    submitter = threading.Thread(target=submit)
    submitter.start()
    try:
        deadline = time.monotonic() + 20
        while not Comparison.objects.filter(pair=lease.pair).exists():
            assert time.monotonic() < deadline, "the judgment waited for the project row"
            time.sleep(0.02)  # polling for a commit, bounded by the deadline
        assert submitter.is_alive()  # its counter step still waits for the row
        assert Project.objects.get(pk=project.pk).comparison_count == 0
    finally:
        release.set()
        holder.join()
        submitter.join()
    assert failures == []
    assert Project.objects.get(pk=project.pk).comparison_count == 1
