"""The shared dataset rule (annotate/selectors/dataset.py): comparisons -> one row per pair."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Comparison, Membership
from annotate.selectors.dataset import DatasetFilter, DatasetStats, preference_rows
from annotate.splits import snapshot, split_of
from tests.factories import StaffFactory, UserFactory, make_pair

pytestmark = pytest.mark.django_db


def vote(pair, choice, labeler=None, *, source="human", strength=None, **fields):
    """One stored comparison; imported ones get a distinct import key."""
    if source == Comparison.Source.IMPORT and "import_key" not in fields:
        fields["import_key"] = f"k{Comparison.objects.count()}"
    return Comparison.objects.create(
        pair=pair,
        project=pair.project,
        labeler=labeler,
        source=source,
        choice=choice,
        strength=strength,
        **fields,
    )


def users(n):
    return [UserFactory() for _ in range(n)]


def rows_of(project, flt=None, stats=None):
    return {r["pair_id"]: r for r in preference_rows(project, flt or DatasetFilter(), stats)}


def test_majority_picks_chosen_and_keeps_vote_share(project):
    pair = make_pair(project, "Capital of France?", a="Paris.", b="Lyon.")
    u1, u2, u3 = users(3)
    vote(pair, "a", u1, strength=3)
    vote(pair, "a", u2, strength=1)
    vote(pair, "b", u3, strength=4)

    row = rows_of(project)[pair.id]

    assert (row["chosen"], row["rejected"]) == ("Paris.", "Lyon.")
    assert (row["chosen_id"], row["rejected_id"]) == (pair.response_a_id, pair.response_b_id)
    assert row["p_chosen"] == pytest.approx(2 / 3)
    assert row["agreement"] == pytest.approx(2 / 3)
    # Only the strengths of votes for the winning outcome make the margin.
    assert row["strength"] == pytest.approx(2.0)
    assert row["votes"] == {"a": 2, "b": 1, "tie": 0, "both_bad": 0}
    assert row["n"] == 3 and row["tie"] is False
    assert row["prompt"] == [{"role": "user", "content": "Capital of France?"}]


def test_b_majority_swaps_chosen_and_soft_label_counts_ties_as_half(project):
    pair = make_pair(project, "2+2?", a="5", b="4")
    u1, u2 = users(2)
    vote(pair, "b", u1)
    vote(pair, "tie", u2)

    row = rows_of(project)[pair.id]

    assert (row["chosen"], row["rejected"]) == ("4", "5")
    # p(a) = (0 + 0.5) / 2 = 0.25, so the chosen b holds 0.75 of the vote.
    assert row["p_chosen"] == pytest.approx(0.75)
    assert row["tie"] is False


def test_split_votes_and_tie_votes_make_a_tie(project):
    split = make_pair(project, "Q1", a="x", b="y")
    tied = make_pair(project, "Q2", a="x", b="y")
    u1, u2 = users(2)
    vote(split, "a", u1)
    vote(split, "b", u2)
    vote(tied, "tie", u1)
    stats = DatasetStats()

    rows = rows_of(project, stats=stats)

    for pair in (split, tied):
        assert rows[pair.id]["tie"] is True
        assert rows[pair.id]["p_chosen"] == pytest.approx(0.5)
    assert stats.ties == 2 and stats.pairs == 2


def test_both_bad_is_counted_and_left_out(project):
    bad = make_pair(project, "Q1")
    mixed = make_pair(project, "Q2")
    u1, u2, u3 = users(3)
    vote(bad, "both_bad", u1)
    vote(bad, "both_bad", u2)
    vote(bad, "a", u3)
    # A draw between both_bad and a is not "both bad": the judged votes decide.
    vote(mixed, "both_bad", u1)
    vote(mixed, "a", u2)
    stats = DatasetStats()

    rows = rows_of(project, stats=stats)

    assert bad.id not in rows
    assert rows[mixed.id]["chosen_id"] == mixed.response_a_id
    assert rows[mixed.id]["p_chosen"] == 1.0
    assert rows[mixed.id]["agreement"] == 0.5
    assert stats.both_bad == 1
    assert stats.pairs == 1
    assert stats.comparisons == 5


def test_excluded_labelers_are_left_out_unless_asked(project):
    pair = make_pair(project, "Q")
    good, bad1, bad2 = users(3)
    for user in (bad1, bad2):
        Membership.objects.create(project=project, user=user, excluded=True)
    vote(pair, "a", good)
    vote(pair, "b", bad1)
    vote(pair, "b", bad2)
    only_excluded = make_pair(project, "Q2")
    vote(only_excluded, "b", bad1)

    default = rows_of(project)
    everyone = rows_of(project, DatasetFilter(include_excluded=True))

    assert default[pair.id]["chosen_id"] == pair.response_a_id
    assert default[pair.id]["n"] == 1
    assert only_excluded.id not in default
    assert everyone[pair.id]["chosen_id"] == pair.response_b_id
    assert everyone[pair.id]["n"] == 3
    assert only_excluded.id in everyone


def test_exclusion_in_another_project_does_not_count(project):
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    user = UserFactory()
    Membership.objects.create(project=other, user=user, excluded=True)
    pair = make_pair(project, "Q")
    vote(pair, "a", user)

    assert pair.id in rows_of(project)


def test_human_and_imported_switches(project):
    pair = make_pair(project, "Q")
    human_only = make_pair(project, "Q2")
    (user,) = users(1)
    vote(pair, "a", user)
    vote(pair, "b", source="import")
    vote(pair, "b", source="import")
    vote(human_only, "a", user)

    both = rows_of(project)
    humans = rows_of(project, DatasetFilter(include_imported=False))
    imported = rows_of(project, DatasetFilter(include_human=False))

    assert both[pair.id]["chosen_id"] == pair.response_b_id
    assert both[pair.id]["n"] == 3
    assert humans[pair.id]["chosen_id"] == pair.response_a_id
    assert humans[pair.id]["n"] == 1
    assert imported[pair.id]["chosen_id"] == pair.response_b_id
    assert imported[pair.id]["n"] == 2
    assert human_only.id not in imported


def test_adjudication_replaces_the_votes_and_survives_the_switches(project):
    pair = make_pair(project, "Q")
    u1, u2 = users(2)
    staff = StaffFactory()
    vote(pair, "a", u1)
    vote(pair, "a", u2)
    vote(pair, "tie", staff, source="adjudication")
    vote(pair, "b", None, source="adjudication", strength=2)

    row = rows_of(project)[pair.id]
    no_humans = rows_of(project, DatasetFilter(include_human=False, include_imported=False))

    # The latest adjudication wins over both the votes and the earlier adjudication.
    assert row["chosen_id"] == pair.response_b_id
    assert row["adjudicated"] is True
    assert row["n"] == 1
    assert row["p_chosen"] == 1.0
    assert row["strength"] == 2
    assert no_humans[pair.id]["chosen_id"] == pair.response_b_id


def test_repeats_never_count(project):
    pair = make_pair(project, "Q")
    only_repeat = make_pair(project, "Q2")
    u1, u2 = users(2)
    vote(pair, "a", u1)
    vote(pair, "b", u1, is_repeat=True)
    vote(pair, "b", u2, is_repeat=True)
    vote(only_repeat, "a", u1, is_repeat=True)
    stats = DatasetStats()

    rows = rows_of(project, stats=stats)

    assert rows[pair.id]["chosen_id"] == pair.response_a_id
    assert rows[pair.id]["n"] == 1
    assert only_repeat.id not in rows
    assert stats.comparisons == 1


def test_ambiguous_pairs_are_left_out(project):
    pair = make_pair(project, "Q", ambiguous=True)
    vote(pair, "a", users(1)[0])

    assert rows_of(project) == {}


def test_labeler_and_time_filters(project):
    pair = make_pair(project, "Q")
    u1, u2 = users(2)
    early = vote(pair, "a", u1)
    vote(pair, "b", u2)
    Comparison.objects.filter(pk=early.pk).update(created_at=timezone.now() - timedelta(days=2))
    yesterday = timezone.now() - timedelta(days=1)

    by_u1 = rows_of(project, DatasetFilter(labeler_ids=[u1.id]))
    recent = rows_of(project, DatasetFilter(since=yesterday))
    old = rows_of(project, DatasetFilter(until=yesterday))

    assert by_u1[pair.id]["chosen_id"] == pair.response_a_id
    assert recent[pair.id]["chosen_id"] == pair.response_b_id
    assert old[pair.id]["chosen_id"] == pair.response_a_id


def test_other_projects_comparisons_stay_out(project):
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    mine = make_pair(project, "Q")
    theirs = make_pair(other, "Q")
    (user,) = users(1)
    vote(mine, "a", user)
    vote(theirs, "b", user)

    assert set(rows_of(project)) == {mine.id}
    assert set(rows_of(other)) == {theirs.id}


def _add_prompts(project, start, stop, labeler):
    """Prompts with two pairs each (three responses), every pair judged once."""
    from annotate.models import Pair
    from tests.factories import ResponseFactory

    for i in range(start, stop):
        first = make_pair(project, f"Prompt {i}: explain thing {i}.")
        extra = ResponseFactory(prompt=first.prompt)
        second = Pair.objects.create(
            project=project, prompt=first.prompt, response_a=first.response_a, response_b=extra
        )
        vote(first, "a", labeler)
        vote(second, "b", labeler)


def test_splits_follow_the_prompt_and_stay_put_as_rows_are_added(project):
    (user,) = users(1)
    _add_prompts(project, 0, 40, user)
    before = {r["pair_id"]: r for r in preference_rows(project)}
    _add_prompts(project, 40, 80, user)
    stats = DatasetStats()
    after = {r["pair_id"]: r for r in preference_rows(project, None, stats)}

    assert len(before) == 80 and len(after) == 160
    for pair_id, row in before.items():
        assert after[pair_id]["split"] == row["split"]
    split_by_prompt = {}
    for row in after.values():
        assert split_by_prompt.setdefault(row["prompt_id"], row["split"]) == row["split"]
        assert row["split"] == split_of(row["prompt_key"])
    # 80 prompts are enough for every split to be used.
    assert set(split_by_prompt.values()) == {"train", "validation", "test"}
    assert stats.by_split == {
        s: sum(1 for r in after.values() if r["split"] == s) for s in stats.by_split
    }
    assert sum(stats.by_split.values()) == 160


def test_split_shares_are_honoured():
    keys = [f"prompt-{i}" for i in range(4000)]
    splits = [split_of(k, validation_share=0.2, test_share=0.1) for k in keys]

    assert splits.count("test") / 4000 == pytest.approx(0.1, abs=0.02)
    assert splits.count("validation") / 4000 == pytest.approx(0.2, abs=0.02)
    assert [split_of(k, 0.2, 0.1) for k in keys] == splits


def test_snapshot_hash_is_order_free_and_tracks_content(project):
    (user,) = users(1)
    _add_prompts(project, 0, 10, user)
    rows = list(preference_rows(project))

    first = snapshot(rows, both_bad=0)
    shuffled = snapshot(list(reversed(rows)), both_bad=0)
    vote(make_pair(project, "new prompt"), "a", user)
    grown = snapshot(list(preference_rows(project)))

    assert first["content_hash"] == shuffled["content_hash"]
    assert first["total"] == 20 and first["both_bad"] == 0
    assert sum(first["counts"].values()) == 20
    assert grown["content_hash"] != first["content_hash"]
    assert grown["total"] == 21


def test_snapshot_hash_changes_when_a_label_flips(project):
    pair = make_pair(project, "Q")
    u1, u2 = users(2)
    vote(pair, "a", u1)
    before = snapshot(list(preference_rows(project)))
    vote(pair, "b", u2)
    after = snapshot(list(preference_rows(project)))

    assert before["content_hash"] != after["content_hash"]
    assert after["ties"] == 1


def test_rows_stream_across_chunks(project, monkeypatch):
    import annotate.selectors.dataset as dataset

    monkeypatch.setattr(dataset, "CHUNK", 3)
    (user,) = users(1)
    _add_prompts(project, 0, 5, user)

    rows = list(preference_rows(project))

    assert [r["pair_id"] for r in rows] == sorted(r["pair_id"] for r in rows)
    assert len(rows) == 10
