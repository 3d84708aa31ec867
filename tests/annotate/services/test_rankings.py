"""Rankings and ratings through the services: making sets, the assignment rules (leases,
redundancy, skips, gold, swapped repeats, a random order per labeler, recorded), every bad
input refused by name with nothing stored, and a double submit stored once."""

import json
import random
from datetime import timedelta

import pytest
from django import forms
from django.utils import timezone

from annotate.admin import ProjectAdminForm
from annotate.hashing import user_message
from annotate.models import (
    DEFAULT_ASPECTS,
    Membership,
    Project,
    Ranking,
    Rating,
    Response,
    ResponseSet,
    SetLease,
    TaskKind,
)
from annotate.selectors.rankings import rankings_of_project, ratings_of_project
from annotate.services.generation_run import prompt_pairs_make
from annotate.services.imports import import_file
from annotate.services.labeling import LabelerExcluded
from annotate.services.rankings import (
    JudgmentInvalid,
    SetFull,
    SetJudgmentExists,
    SetNotServed,
    WrongTaskKind,
    aspects_validate,
    project_task_set,
    response_set_gold_set,
    response_set_submit,
    response_sets_create,
)
from annotate.services.set_leasing import (
    response_set_lease_next,
    response_set_skip,
)
from tests.factories import (
    GeneratedSampleFactory,
    GenerationJobFactory,
    GeneratorFactory,
    MembershipFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ASPECT_NAMES = [a["name"] for a in DEFAULT_ASPECTS]


def member(project, username):
    user = UserFactory(username=username)
    MembershipFactory(project=project, user=user)
    return user


def kind(project, task_kind, **fields):
    Project.objects.filter(pk=project.pk).update(task_kind=task_kind, **fields)
    project.refresh_from_db()
    return project


def prompt_with(project, n, text="Which is best?"):
    prompt = PromptFactory(project=project, messages=user_message(text))
    return [ResponseFactory(prompt=prompt, text=f"{text} answer {i}") for i in range(n)]


def make_sets(project, count=1, k=None, first=0):
    for i in range(first, first + count):
        prompt_with(project, k or project.ranking_size, f"Question {i}?")
    response_sets_create(project=project)
    return list(ResponseSet.objects.filter(project=project).order_by("id"))


def full_ratings(ids, value=2):
    return [{"response_id": i, "aspect": a, "value": value} for i in ids for a in ASPECT_NAMES]


def rank(project, labeler, rng=None, **judgment):
    lease = response_set_lease_next(project=project, labeler=labeler, rng=rng)
    assert lease is not None
    shown = [r.id for r in lease.responses]
    if "ranking" not in judgment and project.task_kind != TaskKind.RATING:
        judgment["ranking"] = shown
    if project.task_kind in (TaskKind.RATING, TaskKind.RANKING_RATING):
        judgment.setdefault("ratings", full_ratings(shown))
    return lease, response_set_submit(labeler=labeler, set_id=lease.set_id, **judgment)


def nothing_stored(response_set):
    response_set.refresh_from_db()
    return (
        not Ranking.objects.exists()
        and not Rating.objects.exists()
        and response_set.human_count == 0
        and response_set.is_open
    )


# ---- Making sets


def test_sets_are_made_k_at_a_time_from_each_prompts_responses_once(project):
    kind(project, TaskKind.RANKING, ranking_size=3)
    three = prompt_with(project, 3, "Three?")
    four = prompt_with(project, 4, "Four?")
    prompt_with(project, 2, "Two?")
    assert response_sets_create(project=project) == 3
    sets = {tuple(s.response_ids) for s in ResponseSet.objects.all()}
    ids3, ids4 = [r.pk for r in three], [r.pk for r in four]
    # The fourth response gets a set of its own, filled up with the prompt's first two.
    assert sets == {tuple(ids3), tuple(ids4[:3]), (ids4[0], ids4[1], ids4[3])}
    assert response_sets_create(project=project) == 0
    # A new response joins a new set when its prompt has K responses.
    extra = ResponseFactory(prompt=three[0].prompt)
    assert response_sets_create(project=project, prompt_ids=[three[0].prompt_id]) == 1
    assert any(extra.pk in s.response_ids for s in ResponseSet.objects.all())


def test_project_task_set_checks_its_values(project):
    project_task_set(project=project, task_kind=TaskKind.RATING, ranking_size=2)
    project.refresh_from_db()
    assert (project.task_kind, project.ranking_size) == ("rating", 2)
    assert [a["name"] for a in project.aspects] == ASPECT_NAMES
    with pytest.raises(JudgmentInvalid, match="from 2 to 9"):
        project_task_set(project=project, task_kind=TaskKind.RANKING, ranking_size=10)
    with pytest.raises(JudgmentInvalid, match="Unknown task kind"):
        project_task_set(project=project, task_kind="chat")
    with pytest.raises(JudgmentInvalid, match="min must be below max"):
        aspects_validate([{"name": "x", "min": 3, "max": 3}])
    with pytest.raises(JudgmentInvalid, match="named twice"):
        aspects_validate([{"name": "x", "min": 0, "max": 1}, {"name": "x", "min": 0, "max": 2}])


# ---- Assignment


def test_a_lease_shows_a_random_order_kept_on_reload_and_stored(project, labeler):
    kind(project, TaskKind.RANKING)
    (response_set,) = make_sets(project)
    lease = response_set_lease_next(project=project, labeler=labeler, rng=random.Random(3))
    shown = [r.id for r in lease.responses]
    assert sorted(shown) == response_set.response_ids
    assert [r.text for r in lease.responses][0].startswith("Question 0?")
    again = response_set_lease_next(project=project, labeler=labeler)
    assert again.lease_id == lease.lease_id and [r.id for r in again.responses] == shown
    assert SetLease.objects.get().shown == shown

    stored = response_set_submit(labeler=labeler, set_id=lease.set_id, ranking=shown[::-1])
    ranking = Ranking.objects.get()
    assert ranking.shown == shown == stored.shown
    assert ranking.groups == [[i] for i in shown[::-1]]
    assert not SetLease.objects.exists()


def test_each_labeler_gets_an_order_of_their_own(project, labeler):
    kind(project, TaskKind.RATING, redundancy=8)
    (response_set,) = make_sets(project)
    orders = set()
    for i in range(8):
        user = labeler if i == 0 else member(project, f"l{i}")
        lease, _ = rank(project, user, rng=random.Random(i))
        orders.add(tuple(r.id for r in lease.responses))
        positions = dict(
            Rating.objects.filter(labeler=user, aspect="helpfulness").values_list(
                "response_id", "position"
            )
        )
        assert sorted(positions, key=positions.get) == [r.id for r in lease.responses]
    assert len(orders) > 1


def test_redundancy_counts_distinct_labelers_and_closes_the_set(project, labeler):
    kind(project, TaskKind.RANKING, redundancy=2)
    (response_set,) = make_sets(project)
    bob, carol = member(project, "bob"), member(project, "carol")
    a = response_set_lease_next(project=project, labeler=labeler)
    b = response_set_lease_next(project=project, labeler=bob)
    assert a.set_id == b.set_id == response_set.pk
    # Two live leases fill both slots.
    assert response_set_lease_next(project=project, labeler=carol) is None
    for user, lease in ((labeler, a), (bob, b)):
        response_set_submit(
            labeler=user, set_id=lease.set_id, ranking=[r.id for r in lease.responses]
        )
    response_set.refresh_from_db()
    assert (response_set.human_count, response_set.is_open) == (2, False)
    assert response_set_lease_next(project=project, labeler=carol) is None
    assert response_set_lease_next(project=project, labeler=labeler) is None


def test_priority_order_then_none_when_all_judged(project, labeler):
    kind(project, TaskKind.RANKING)
    low, high = make_sets(project, 2)
    ResponseSet.objects.filter(pk=high.pk).update(priority=5)
    first, _ = rank(project, labeler)
    second, _ = rank(project, labeler)
    assert (first.set_id, second.set_id) == (high.pk, low.pk)
    assert response_set_lease_next(project=project, labeler=labeler) is None


def test_an_expired_lease_frees_the_slot_and_a_late_submit_is_handled(project, labeler):
    kind(project, TaskKind.RANKING)
    (response_set,) = make_sets(project)
    bob, carol = member(project, "bob"), member(project, "carol")
    held = response_set_lease_next(project=project, labeler=labeler)
    assert response_set_lease_next(project=project, labeler=bob) is None
    SetLease.objects.filter(pk=held.lease_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    # Expired and nobody else holds it: the late submit is taken.
    stored = response_set_submit(
        labeler=labeler, set_id=held.set_id, ranking=[r.id for r in held.responses]
    )
    assert stored.ranking_id is not None
    response_set.refresh_from_db()
    assert (response_set.human_count, response_set.is_open) == (1, False)

    # A second set: alice's lease expires, carol takes the slot: alice's late submit is refused.
    other = make_sets(project, 1, first=1)[-1]
    ResponseSet.objects.filter(pk=response_set.pk).delete()
    held = response_set_lease_next(project=project, labeler=bob)
    assert held.set_id == other.pk
    SetLease.objects.filter(pk=held.lease_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    taken = response_set_lease_next(project=project, labeler=carol)
    assert taken.set_id == other.pk
    with pytest.raises(SetFull):
        response_set_submit(labeler=bob, set_id=other.pk, ranking=[r.id for r in held.responses])
    assert not Ranking.objects.filter(labeler=bob).exists()


def test_skip_passes_the_set_to_others_and_not_back(project, labeler):
    kind(project, TaskKind.RANKING)
    skipped, other = make_sets(project, 2)
    bob = member(project, "bob")
    lease = response_set_lease_next(project=project, labeler=labeler)
    assert lease.set_id == skipped.pk
    response_set_skip(response_set=skipped, labeler=labeler)
    assert response_set_lease_next(project=project, labeler=labeler).set_id == other.pk
    assert response_set_lease_next(project=project, labeler=bob).set_id == skipped.pk


def test_gold_sets_check_each_labeler_once_and_take_no_slot(project, labeler):
    kind(project, TaskKind.RANKING_RATING, gold_rate=1.0)
    gold, plain = make_sets(project, 2)
    best = gold.response_ids[2]
    response_set_gold_set(response_set=gold, best_id=best, ratings={best: {"helpfulness": [3, 4]}})
    gold.refresh_from_db()
    assert gold.is_gold and gold.gold_ratings == {str(best): {"helpfulness": [3, 4]}}
    lease, _ = rank(project, labeler)
    assert lease.set_id == gold.pk
    assert Ranking.objects.get().is_gold_check
    assert set(Rating.objects.values_list("is_gold_check", flat=True)) == {True}
    gold.refresh_from_db()
    assert gold.human_count == 0
    # Gold exhausted for alice: the ordinary queue.
    assert response_set_lease_next(project=project, labeler=labeler).set_id == plain.pk
    bob = member(project, "bob")
    assert response_set_lease_next(project=project, labeler=bob).set_id == gold.pk
    with pytest.raises(JudgmentInvalid, match="not one of this set"):
        response_set_gold_set(response_set=gold, best_id=plain.response_ids[0])
    with pytest.raises(JudgmentInvalid, match="no aspect 'tone'"):
        response_set_gold_set(response_set=gold, ratings={best: {"tone": [0, 1]}})


def test_a_swapped_repeat_shows_the_same_responses_reversed_and_counts_nowhere(project, labeler):
    kind(project, TaskKind.RANKING, redundancy=2)
    sets = make_sets(project, 7)
    first_orders = {}
    for _ in range(6):
        lease, _ = rank(project, labeler)
        first_orders[lease.set_id] = [r.id for r in lease.responses]
    Project.objects.filter(pk=project.pk).update(repeat_rate=1.0)
    project.refresh_from_db()
    repeat = response_set_lease_next(project=project, labeler=labeler)
    assert repeat.is_repeat
    # Not among the latest five: the first set judged.
    assert repeat.set_id == sets[0].pk
    assert [r.id for r in repeat.responses] == first_orders[repeat.set_id][::-1]
    response_set_submit(
        labeler=labeler, set_id=repeat.set_id, ranking=[r.id for r in repeat.responses]
    )
    stored = Ranking.objects.get(response_set_id=repeat.set_id, is_repeat=True)
    assert stored.shown == first_orders[repeat.set_id][::-1]
    sets[0].refresh_from_db()
    assert sets[0].human_count == 1
    # Repeated once only: the next repeat is another set, or none.
    again = response_set_lease_next(project=project, labeler=labeler)
    assert again is None or again.set_id != repeat.set_id


def test_an_excluded_labeler_gets_no_sets(project, labeler):
    kind(project, TaskKind.RANKING)
    make_sets(project)
    Membership.objects.filter(project=project, user=labeler).update(
        excluded=True, excluded_reason="careless"
    )
    with pytest.raises(LabelerExcluded, match="careless"):
        response_set_lease_next(project=project, labeler=labeler)


def test_a_pairwise_project_has_no_sets_to_lease(project, labeler):
    with pytest.raises(WrongTaskKind, match="labels pairs"):
        response_set_lease_next(project=project, labeler=labeler)


# ---- Submissions


def test_a_ranking_with_ties_and_all_bad_is_stored_raw(project, labeler):
    kind(project, TaskKind.RANKING)
    make_sets(project)
    lease = response_set_lease_next(project=project, labeler=labeler)
    a, b, c, d = [r.id for r in lease.responses]
    stored = response_set_submit(
        labeler=labeler,
        set_id=lease.set_id,
        ranking=[c, [a, d], b],
        all_bad=True,
        time_spent_ms=1234,
    )
    ranking = Ranking.objects.get()
    assert ranking.groups == [[c], [a, d], [b]] == stored.groups
    assert (ranking.all_bad, ranking.time_spent_ms, ranking.labeler) == (True, 1234, labeler)
    assert not Rating.objects.exists()


def test_all_bad_without_an_order_is_a_ranking_of_no_groups(project, labeler):
    kind(project, TaskKind.RANKING)
    make_sets(project)
    lease = response_set_lease_next(project=project, labeler=labeler)
    response_set_submit(labeler=labeler, set_id=lease.set_id, all_bad=True)
    assert Ranking.objects.get().groups == []


def test_ranking_and_rating_in_one_task(project, labeler):
    kind(project, TaskKind.RANKING_RATING, ranking_size=3)
    make_sets(project)
    lease = response_set_lease_next(project=project, labeler=labeler)
    ids = [r.id for r in lease.responses]
    ratings = [
        {"response_id": i, "aspect": a, "value": n % 5}
        for n, i in enumerate(ids)
        for a in ASPECT_NAMES
    ]
    response_set_submit(labeler=labeler, set_id=lease.set_id, ranking=ids, ratings=ratings)
    assert Ranking.objects.count() == 1
    assert Rating.objects.count() == 3 * 5
    assert Rating.objects.get(response_id=ids[2], aspect="verbosity").value == 2


def test_every_bad_input_is_refused_by_name_and_stores_nothing(project, labeler):
    kind(project, TaskKind.RANKING_RATING)
    (response_set,) = make_sets(project)
    lease = response_set_lease_next(project=project, labeler=labeler)
    a, b, c, d = ids = [r.id for r in lease.responses]
    good = full_ratings(ids)
    cases = [
        ({"ranking": [a, b, c], "ratings": good}, f"omits response {d}"),
        ({"ranking": [a, b], "ratings": good}, f"omits responses {min(c, d)}, {max(c, d)}"),
        ({"ranking": [a, b, c, d, a], "ratings": good}, f"lists response {a} twice"),
        ({"ranking": [a, [b, b], c, d], "ratings": good}, f"lists response {b} twice"),
        ({"ranking": [a, b, c, 99999], "ratings": good}, "Response 99999 is not one of"),
        ({"ranking": [a, [], b, c, d], "ratings": good}, "empty tie group"),
        ({"ranking": [a, "b", c, d], "ratings": good}, "list of response ids"),
        ({"ranking": "abcd", "ratings": good}, "list of response ids"),
        ({"ranking": [a, True, c, d], "ratings": good}, "list of response ids"),
        ({"ratings": good}, "A ranking is required"),
        ({"ranking": ids}, "Ratings are required"),
        ({"ranking": ids, "ratings": [None, None]}, "Each rating is"),
        ({"ranking": ids, "ratings": "all fours"}, "ratings must be a list"),
        (
            {"ranking": ids, "ratings": [*good[:-1], {**good[-1], "value": 5}]},
            "verbosity is rated from 0 to 4; response",
        ),
        (
            {"ranking": ids, "ratings": [*good[:-1], {**good[-1], "value": -1}]},
            "rated from 0 to 4",
        ),
        (
            {"ranking": ids, "ratings": [*good[:-1], {**good[-1], "value": 2.5}]},
            "rated from 0 to 4",
        ),
        (
            {"ranking": ids, "ratings": [*good, {"response_id": a, "aspect": "tone", "value": 1}]},
            "no aspect 'tone'",
        ),
        ({"ranking": ids, "ratings": good[:-1]}, f"missing response {d} on verbosity"),
        ({"ranking": ids, "ratings": [*good, good[0]]}, "rated on helpfulness twice"),
        (
            {
                "ranking": ids,
                "ratings": [*good, {"response_id": 7, "aspect": "helpfulness", "value": 1}],
            },
            "Response 7 is not one of",
        ),
    ]
    for judgment, message in cases:
        with pytest.raises(JudgmentInvalid, match=message):
            response_set_submit(labeler=labeler, set_id=lease.set_id, **judgment)
        assert nothing_stored(response_set), judgment
    assert SetLease.objects.filter(labeler=labeler).count() == 1

    kind(project, TaskKind.RATING)
    with pytest.raises(JudgmentInvalid, match="asks for ratings, not a ranking"):
        response_set_submit(labeler=labeler, set_id=lease.set_id, ranking=ids, ratings=good)
    with pytest.raises(JudgmentInvalid, match="asks for ratings, not a ranking"):
        response_set_submit(labeler=labeler, set_id=lease.set_id, all_bad=True, ratings=good)
    kind(project, TaskKind.RANKING)
    with pytest.raises(JudgmentInvalid, match="asks for a ranking, not ratings"):
        response_set_submit(labeler=labeler, set_id=lease.set_id, ranking=ids, ratings=good)
    kind(project, TaskKind.PAIRWISE)
    with pytest.raises(JudgmentInvalid, match="labels pairs"):
        response_set_submit(labeler=labeler, set_id=lease.set_id, ranking=ids)
    assert nothing_stored(response_set)


def test_a_double_submit_stores_one(project, labeler):
    kind(project, TaskKind.RANKING_RATING)
    (response_set,) = make_sets(project)
    lease = response_set_lease_next(project=project, labeler=labeler)
    ids = [r.id for r in lease.responses]
    judgment = {"ranking": ids, "ratings": full_ratings(ids)}
    response_set_submit(labeler=labeler, set_id=lease.set_id, **judgment)
    with pytest.raises(SetJudgmentExists) as raised:
        response_set_submit(labeler=labeler, set_id=lease.set_id, **judgment)
    assert raised.value.extra == {"set_id": response_set.pk}
    assert Ranking.objects.count() == 1 and Rating.objects.count() == 4 * 5
    response_set.refresh_from_db()
    assert response_set.human_count == 1


def test_a_set_never_served_or_on_another_project_is_not_found(project, labeler):
    kind(project, TaskKind.RANKING)
    (response_set,) = make_sets(project)
    with pytest.raises(SetNotServed):
        response_set_submit(
            labeler=labeler, set_id=response_set.pk, ranking=response_set.response_ids
        )
    outsider = UserFactory(username="mallory")
    with pytest.raises(SetNotServed):
        response_set_submit(
            labeler=outsider, set_id=response_set.pk, ranking=response_set.response_ids
        )
    assert nothing_stored(response_set)


# ---- Reading them back


def test_selectors_return_rankings_and_ratings_with_their_texts(project, labeler):
    kind(project, TaskKind.RANKING_RATING, ranking_size=3)
    make_sets(project)
    lease = response_set_lease_next(project=project, labeler=labeler)
    a, b, c = [r.id for r in lease.responses]
    texts = {r.id: r.text for r in lease.responses}
    response_set_submit(
        labeler=labeler,
        set_id=lease.set_id,
        ranking=[[b, a], c],
        ratings=full_ratings([a, b, c], value=3),
    )
    (ranking,) = rankings_of_project(project=project)
    assert ranking.groups == [[b, a], [c]]
    assert ranking.ordered_texts == [[texts[b], texts[a]], [texts[c]]]
    assert ranking.messages == user_message("Question 0?")
    assert (ranking.labeler, ranking.all_bad, ranking.excluded) == ("alice", False, False)
    ratings = list(ratings_of_project(project=project))
    assert len(ratings) == 15
    first = ratings[0]
    assert (first.response_text, first.value, first.labeler) == (
        texts[first.response_id],
        3,
        "alice",
    )
    assert {r.aspect for r in ratings} == set(ASPECT_NAMES)


# ---- Where sets come from


def test_importing_candidates_into_a_ranking_project_makes_its_sets(project, tmp_path):
    kind(project, TaskKind.RANKING, ranking_size=3)
    rows = [
        {"prompt": "Name a colour.", "responses": ["Red.", "Blue.", "Green."]},
        {"prompt": "Name a fruit.", "responses": ["Apple.", "Pear."]},
    ]
    path = tmp_path / "candidates.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_file(project=project, path=path)
    (made,) = ResponseSet.objects.filter(project=project)
    texts = sorted(Response.objects.filter(pk__in=made.response_ids).values_list("text", flat=True))
    assert texts == ["Blue.", "Green.", "Red."]


def test_a_generation_job_makes_the_prompts_sets(project):
    kind(project, TaskKind.RATING, ranking_size=2)
    generator = GeneratorFactory(project=project)
    job = GenerationJobFactory(project=project, samples=2)
    job.generators.add(generator)
    first = GeneratedSampleFactory(generator=generator, index=0)
    GeneratedSampleFactory(generator=generator, prompt=first.prompt, index=1)
    prompt_pairs_make(job=job, prompt_id=first.prompt_id)
    (made,) = ResponseSet.objects.filter(project=project)
    assert made.prompt_id == first.prompt_id and len(made.response_ids) == 2


def test_the_admin_form_checks_the_aspects_as_the_service_does():
    form = ProjectAdminForm.__new__(ProjectAdminForm)
    form.cleaned_data = {"aspects": [{"name": "tone", "min": 1, "max": 5, "weight": 0.5}]}
    assert form.clean_aspects() == [
        {"name": "tone", "description": "", "min": 1, "max": 5, "weight": 0.5}
    ]
    # An aspect outside HelpSteer2's names needs its weight in the reward's weighted sum.
    form.cleaned_data = {"aspects": [{"name": "tone", "min": 1, "max": 5}]}
    with pytest.raises(forms.ValidationError, match="'tone' needs a weight"):
        form.clean_aspects()
    form.cleaned_data = {"aspects": [{"name": "tone", "min": 5, "max": 1}]}
    with pytest.raises(forms.ValidationError, match="min must be below max"):
        form.clean_aspects()
