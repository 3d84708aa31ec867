"""Active learning's selection: the queue order per lease, the random share, the assignment
rules under every selection, and the neighbour pairings of many candidates."""

import random

import pytest
from django.db import connection, transaction
from django.utils import timezone
from scipy.stats import binom

from annotate.models import Choice, Comparison, Lease, Pair, Prompt, Response, Selection
from annotate.services.catalog import pair_get_or_create
from annotate.services.labeling import (
    comparison_create,
    lease_candidate_plan,
    lease_skip,
    pair_lease_next,
)
from annotate.services.selection import (
    MANY_CANDIDATES,
    PRIORITY_ORDER,
    RANDOM_ORDER,
    pairs_add_by_reward,
    queue_order,
    reward_neighbours,
)
from tests.factories import MembershipFactory, PromptFactory, ResponseFactory, UserFactory

pytestmark = pytest.mark.django_db

LEASES = 1000
SHARE = 0.2


def interval_999(n: int, p: float) -> tuple[float, float]:
    """The central 99.9% interval of a Binomial(n, p) count."""
    return binom.interval(0.999, n, p)


def set_selection(project, selection, share=SHARE, redundancy=1):
    project.selection = selection
    project.random_share = share
    project.redundancy = redundancy
    project.save(update_fields=["selection", "random_share", "redundancy"])
    return project


def member(project, username):
    user = UserFactory(username=username)
    MembershipFactory(project=project, user=user)
    return user


def pool(project, n):
    """n open pairs whose two orders disagree: priority falls with the id, random_key rises
    with it, so the first pair by priority is never the first pair by random_key."""
    prompt = PromptFactory(project=project)
    responses = [ResponseFactory(prompt=prompt) for _ in range(n + 1)]
    Pair.objects.bulk_create(
        Pair(
            project=project,
            prompt=prompt,
            response_a=responses[0],
            response_b=responses[i + 1],
            priority=float(n - i),
            random_key=(n - i) / (n + 1),
        )
        for i in range(n)
    )
    return list(Pair.objects.filter(project=project).order_by("id"))


def test_each_selection_reads_its_order(project):
    rng = random.Random(0)
    set_selection(project, Selection.RANDOM)
    assert {queue_order(project=project, rng=rng) for _ in range(50)} == {RANDOM_ORDER}
    set_selection(project, Selection.UNCERTAINTY)
    assert {queue_order(project=project, rng=rng) for _ in range(50)} == {PRIORITY_ORDER}
    set_selection(project, Selection.MIXED, share=0.0)
    assert {queue_order(project=project, rng=rng) for _ in range(50)} == {PRIORITY_ORDER}
    set_selection(project, Selection.MIXED, share=1.0)
    assert {queue_order(project=project, rng=rng) for _ in range(50)} == {RANDOM_ORDER}


@pytest.mark.slow
def test_mixed_leases_serve_the_random_share_within_a_binomial_interval(project, labeler):
    """1,000 leases with random_share 0.2: each served pair is the first by random_key or the
    first by priority (never both), and the random ones number within the 99.9% interval.
    The draws come from a seeded RNG, so the count is the same on every run."""
    set_selection(project, Selection.MIXED)
    pool(project, LEASES + 1)
    rng = random.Random(20240611)
    # Priority falls and random_key rises with the id (pool()), so the first open pair by
    # priority is the lowest id left and the first by random_key the highest.
    remaining = sorted(Pair.objects.filter(project=project).values_list("id", flat=True))
    at_random = 0
    for _ in range(LEASES):
        by_priority, by_key = remaining[0], remaining[-1]
        lease = pair_lease_next(project=project, labeler=labeler, rng=rng)
        assert lease.pair_id in (by_priority, by_key)
        at_random += lease.pair_id == by_key
        # The pair closes (as a judgment at redundancy 1 closes it) and leaves the index.
        Pair.objects.filter(pk=lease.pair_id).update(is_open=False)
        remaining.remove(lease.pair_id)
    low, high = interval_999(LEASES, SHARE)
    assert low <= at_random <= high, at_random


def test_the_mixed_draw_alone_keeps_its_share():
    """The per-lease draw itself, 20,000 times per share (no database)."""

    class Stub:
        selection = Selection.MIXED

    for share in (0.05, 0.2, 0.5):
        Stub.random_share = share
        rng = random.Random(share)
        n = 20_000
        hits = sum(queue_order(project=Stub, rng=rng) == RANDOM_ORDER for _ in range(n))
        low, high = interval_999(n, share)
        assert low <= hits <= high, (share, hits)


def test_random_selection_serves_by_random_key(project, labeler):
    set_selection(project, Selection.RANDOM)
    pairs = pool(project, 5)
    served = []
    for _ in range(5):
        lease = pair_lease_next(project=project, labeler=labeler)
        served.append(lease.pair_id)
        lease_skip(pair=lease.pair, labeler=labeler)
    by_key = sorted(pairs, key=lambda p: p.random_key)
    assert served == [p.pk for p in by_key]


@pytest.mark.parametrize("selection", [Selection.RANDOM, Selection.UNCERTAINTY, Selection.MIXED])
def test_selection_keeps_the_assignment_rules(project, selection):
    """Five labelers working a pool of 12 pairs at redundancy 2, some holding leases and some
    skipping: no pair gets more than 2 judgments, nobody is served a pair twice, and every
    pair ends with exactly its 2 judgments."""
    set_selection(project, selection, share=0.5, redundancy=2)
    pool(project, 12)
    labelers = [member(project, f"l{i}") for i in range(5)]
    rng = random.Random(7)
    served: dict[int, list[int]] = {u.pk: [] for u in labelers}
    skipped: set[tuple[int, int]] = set()
    active = list(labelers)
    while active:
        for user in list(active):
            lease = pair_lease_next(project=project, labeler=user, rng=rng)
            if lease is None:
                active.remove(user)
                continue
            if lease.pair_id not in served[user.pk]:
                served[user.pk].append(lease.pair_id)
            live = Lease.objects.filter(pair=lease.pair, expires_at__gt=timezone.now())
            assert lease.pair.human_count + live.count() <= 2
            if rng.random() < 0.15 and len(skipped) < 6:
                skipped.add((user.pk, lease.pair_id))
                lease_skip(pair=lease.pair, labeler=user)
            elif rng.random() < 0.5:
                comparison_create(pair=lease.pair, labeler=user, choice=Choice.A)
            # else: the lease is held, and the same pair comes back on the next call.
    for user_pairs in served.values():
        assert len(user_pairs) == len(set(user_pairs))
    for pair in Pair.objects.filter(project=project):
        judges = list(pair.comparisons.values_list("labeler_id", flat=True))
        assert len(judges) == len(set(judges)) == 2
        assert pair.human_count == 2 and not pair.is_open
    assert not any(
        Pair.objects.get(pk=pair_id).comparisons.filter(labeler_id=user_id).exists()
        for user_id, pair_id in skipped
    )


def test_reward_neighbours_chain_every_response_in_reward_order():
    rewards = {10: 0.3, 11: -2.0, 12: 1.5, 13: 0.2, 14: 0.25}
    assert reward_neighbours(rewards) == [(11, 13), (13, 14), (10, 14), (10, 12)]
    assert reward_neighbours({5: 1.0}) == []


class TextScorer:
    """A stand-in reward model: the reward of a response is the number in its text."""

    def score(self, prompts, responses):
        assert len(prompts) == len(responses)
        return [float(text.split()[-1]) for text in responses]


def candidates(project, rewards, ring=True):
    """A prompt with one response per reward, paired as the importer pairs many candidates
    (a ring), with no judgments yet."""
    prompt = PromptFactory(project=project)
    responses = [ResponseFactory(prompt=prompt, text=f"answer {r}") for r in rewards]
    if ring:
        for i, first in enumerate(responses):
            second = responses[(i + 1) % len(responses)]
            pair_get_or_create(project=project, prompt=prompt, first=first, second=second)
    return prompt, responses


def test_many_candidates_get_the_pairings_of_reward_neighbours(project):
    rewards = [5, 1, 7, 3, 8, 2, 6, 4]  # listed out of order: the ring pairs 5-1, 1-7, ...
    prompt, responses = candidates(project, rewards)
    few, _ = candidates(project, [3, 1, 2])  # under MANY_CANDIDATES: left to the importer
    assert len(rewards) >= MANY_CANDIDATES
    before = set(prompt.pairs.values_list("response_a_id", "response_b_id"))
    pair_count = project.__class__.objects.get(pk=project.pk).pair_count

    created = pairs_add_by_reward(project=project, scorer=TextScorer())

    by_reward = sorted(responses, key=lambda r: float(r.text.split()[-1]))
    neighbours = {
        (min(a.pk, b.pk), max(a.pk, b.pk)) for a, b in zip(by_reward, by_reward[1:], strict=False)
    }
    after = set(prompt.pairs.values_list("response_a_id", "response_b_id"))
    assert neighbours <= after
    assert after - before == neighbours - before
    assert created == len(neighbours - before) > 0
    # Marked as the model's, so that the pages can say where the pairs came from.
    marked = set(
        prompt.pairs.filter(added_by_model=True).values_list("response_a_id", "response_b_id")
    )
    assert marked == neighbours - before
    assert few.pairs.count() == 3
    assert Prompt.objects.get(pk=prompt.pk).pairs.filter(is_open=True).count() == len(after)
    # The project's pair counter follows, and a second call finds nothing to add.
    assert project.__class__.objects.get(pk=project.pk).pair_count == pair_count + created
    assert pairs_add_by_reward(project=project, scorer=TextScorer()) == 0
    assert Response.objects.filter(prompt=prompt).count() == len(rewards)


@pytest.mark.parametrize(
    "order,index", [(PRIORITY_ORDER, "pair_queue"), (RANDOM_ORDER, "pair_queue_random")]
)
def test_each_order_is_one_walk_of_its_index(project, labeler, order, index):
    """The lease's candidate query reads the order straight from its partial index: no sort
    of the open pairs. On a table this small PostgreSQL may prefer a scan and a sort, so it
    is told to avoid them: the plan left shows the index alone serves the order (at 20,000
    open pairs it picks this plan by itself)."""
    pool(project, 50)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for plan_kind in ("seqscan", "bitmapscan", "sort"):
                    cursor.execute(f"SET LOCAL enable_{plan_kind} = off")
        plan = lease_candidate_plan(
            project=project, labeler=labeler, random_order=order == RANDOM_ORDER
        )
    assert index in plan
    assert "pair_queue_random" not in plan or index == "pair_queue_random"
    assert "TEMP B-TREE" not in plan and "Sort" not in plan


def test_a_lease_probes_the_labelers_history_pair_by_pair(project, labeler):
    """The candidate read looks up the labeler's comparison and lease for each Pair it walks,
    by index: it never reads the labeler's whole history, not even when the planner's
    statistics date from before that history (then PostgreSQL liked to read all of the
    labeler's comparisons on every lease, which grows with each judgment)."""
    project.redundancy = 2
    project.save()
    pool(project, 120)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Comparison, Lease):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    # The labeler judges 80 pairs; each stays open for a second labeler, ahead in the queue.
    for _ in range(80):
        lease = pair_lease_next(project=project, labeler=labeler)
        comparison_create(pair=lease.pair, labeler=labeler, choice=Choice.A)
    plan = lease_candidate_plan(project=project, labeler=labeler, random_order=False)
    if connection.vendor == "postgresql":
        assert "Materialize" not in plan and "Hash" not in plan and "Join Filter" not in plan
        assert "SubPlan" in plan
    else:
        assert "CORRELATED" in plan and "USING INDEX" in plan
    # And the walk still finds the first pair this labeler has not judged.
    served = pair_lease_next(project=project, labeler=labeler).pair
    assert Pair.objects.get(pk=served.pk).priority == 120 - 80
