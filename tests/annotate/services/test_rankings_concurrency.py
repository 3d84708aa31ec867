"""Rankings under concurrency: 6 labelers at once, redundancy 2, never a set over-filled,
nobody on a set twice, every accepted judgment stored; and one labeler's two simultaneous
submits of one set store one. Runs on the configured database (SQLite and PostgreSQL in CI):
both SKIP LOCKED with row locks and SQLite's serialized writers.

Threads share nothing but the database; each closes its connection when done.
"""

import threading

import pytest
from django.db import close_old_connections, connection
from django.db.models import Count

from annotate.hashing import user_message
from annotate.models import Project, Ranking, ResponseSet, TaskKind
from annotate.services.rankings import (
    SetFull,
    SetJudgmentExists,
    response_set_submit,
    response_sets_create,
)
from annotate.services.set_leasing import (
    response_set_lease_next,
)
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

LABELERS = 6
SETS = 8


def busy_project() -> Project:
    project = ProjectFactory(slug="busy-sets", redundancy=2, task_kind=TaskKind.RANKING)
    for i in range(SETS):
        prompt = PromptFactory(project=project, messages=user_message(f"Q{i}?"))
        for j in range(project.ranking_size):
            ResponseFactory(prompt=prompt, text=f"Q{i} answer {j}")
    response_sets_create(project=project)
    return project


def run_threads(target, args_list) -> list:
    errors: list = []
    start = threading.Barrier(len(args_list))

    def worker(*args) -> None:
        try:
            start.wait()
            target(*args)
        except Exception as error:  # reported by the test thread
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    return errors


def test_six_labelers_in_parallel_never_overfill_a_set():
    project = busy_project()
    users = [UserFactory(username=f"ranker{i}") for i in range(LABELERS)]
    for user in users:
        MembershipFactory(project=project, user=user)
    accepted: list = []

    def label_until_done(user_id: int) -> None:
        user = UserFactory._meta.model.objects.get(pk=user_id)
        mine = Project.objects.get(pk=project.pk)
        while True:
            lease = response_set_lease_next(project=mine, labeler=user)
            if lease is None:
                return
            try:
                stored = response_set_submit(
                    labeler=user, set_id=lease.set_id, ranking=[r.id for r in lease.responses]
                )
                accepted.append((stored.ranking_id, lease.set_id, user_id))
            except (SetFull, SetJudgmentExists):
                continue

    assert run_threads(label_until_done, [(u.pk,) for u in users]) == []
    per_set = dict(
        Ranking.objects.values("response_set")
        .annotate(n=Count("pk"))
        .values_list("response_set", "n")
    )
    assert sorted(per_set.values()) == [2] * SETS
    twice = Ranking.objects.values("response_set", "labeler").annotate(n=Count("pk"))
    assert not twice.filter(n__gt=1).exists()
    assert set(accepted) == set(Ranking.objects.values_list("pk", "response_set", "labeler"))
    assert not ResponseSet.objects.filter(is_open=True).exists()
    # Each stored judgment counted once, with its rows: none lost or added by a race.
    assert Project.objects.get(pk=project.pk).comparison_count == 2 * SETS


def test_two_simultaneous_submits_of_one_set_store_one():
    project = busy_project()
    user = UserFactory(username="twice")
    MembershipFactory(project=project, user=user)
    lease = response_set_lease_next(project=project, labeler=user)
    ranking = [r.id for r in lease.responses]
    outcomes: list = []

    def submit() -> None:
        try:
            response_set_submit(labeler=user, set_id=lease.set_id, ranking=ranking)
            outcomes.append("stored")
        except SetJudgmentExists:
            outcomes.append("exists")

    assert run_threads(submit, [(), (), ()]) == []
    assert sorted(outcomes) == ["exists", "exists", "stored"]
    assert Ranking.objects.count() == 1
    assert ResponseSet.objects.get(pk=lease.set_id).human_count == 1
    assert Project.objects.get(pk=project.pk).comparison_count == 1
