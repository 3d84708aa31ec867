"""Ranking and rating writes: the project's task, make a prompt's ResponseSets, gold sets,
and store a labeler's ranking and/or ratings of a set they were served.

The assignment rules are the pairs' (annotate/services/labeling.py): a set receives at most
`project.redundancy` human judgments, from distinct labelers; a labeler is served a set once
(a reload returns the set they hold); a lease holds the set for `project.lease_minutes`, and an
expired or skipped lease frees its slot. Gold sets and swapped repeats are served at the
project's `gold_rate` and `repeat_rate`. Each labeler sees the responses in a random order of
their own, kept on the lease and stored with the judgment.

Leasing and skipping live in annotate/services/set_leasing.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotate.errors import ApplicationError
from annotate.models import (
    Project,
    Prompt,
    Ranking,
    Rating,
    Response,
    ResponseSet,
    SetLease,
    TaskKind,
)
from annotate.selectors.rankings import Aspect, judged_by, project_aspects

RANKING_KINDS = (TaskKind.RANKING, TaskKind.RANKING_RATING)
RATING_KINDS = (TaskKind.RATING, TaskKind.RANKING_RATING)


class RankingError(ApplicationError):
    """A request the ranking and rating rules refuse; the message is safe to show."""

    status = HTTPStatus.BAD_REQUEST
    code = "ranking_refused"


class JudgmentInvalid(RankingError):
    """The ranking or ratings do not fit the set or the project (names the problem)."""

    status = HTTPStatus.BAD_REQUEST
    code = "judgment_invalid"


class SetJudgmentExists(RankingError):
    """The labeler already judged this set."""

    status = HTTPStatus.CONFLICT
    code = "set_exists"
    code_in_body = True

    def __init__(self, set_id: int) -> None:
        super().__init__(f"You already judged this set (set {set_id}).")
        self.set_id = set_id

    @property
    def extra(self) -> dict[str, int]:
        return {"set_id": self.set_id}


class SetFull(RankingError):
    """The set already has all the judgments its project asks for."""

    status = HTTPStatus.CONFLICT
    code = "set_full"
    code_in_body = True


class WrongTaskKind(RankingError):
    """The project labels pairs: it has no sets to serve."""

    status = HTTPStatus.CONFLICT
    code = "wrong_task_kind"
    code_in_body = True


class SetNotServed(RankingError):
    """No such set for this labeler: not on their projects, or never served to them."""

    status = HTTPStatus.NOT_FOUND
    code = "set_not_served"


PAIRWISE_REFUSAL = "This project labels pairs, not rankings or ratings."


def asks_ranking(project: Project) -> bool:
    return project.task_kind in RANKING_KINDS


def asks_ratings(project: Project) -> bool:
    return project.task_kind in RATING_KINDS


# ---------------------------------------------------------------------------------------------
# The project's task and its sets


# The weight of each HelpSteer2 aspect in the reward model's scalar (the sum of weight times
# the aspect's normalised output), as rewardtrain/core/aspects.py's HELPSTEER2_ASPECTS publishes
# them (Llama3-70B-SteerLM-RM's card; tests/rewardtrain/test_set_training.py checks the two
# agree: this app never imports the reward model's). Any other aspect needs its own weight.
DEFAULT_ASPECT_WEIGHTS = {
    "helpfulness": 0.65,
    "correctness": 0.8,
    "coherence": 0.45,
    "complexity": 0.55,
    "verbosity": -0.4,
}
WEIGHT_LIMIT = 1000.0


def aspects_validate(aspects: Any, *, require_weights: bool = False) -> list[dict[str, Any]]:
    """A project's aspects, checked: a list of {name, description, min, max, weight?}, names
    unique, integer scales with min < max, a weight (when given) a finite number. With
    `require_weights`, an aspect whose name has no default weight (DEFAULT_ASPECT_WEIGHTS)
    must give one: the reward model's scalar needs every rated aspect's weight."""
    if not isinstance(aspects, list) or not aspects:
        raise JudgmentInvalid("aspects must be a non-empty list of {name, description, min, max}.")
    clean: list[dict[str, Any]] = []
    for aspect in aspects:
        if not isinstance(aspect, Mapping) or not isinstance(aspect.get("name"), str):
            raise JudgmentInvalid("Each aspect needs a name.")
        name = aspect["name"].strip()
        low, high = aspect.get("min"), aspect.get("max")
        if not name or len(name) > 100:
            raise JudgmentInvalid("An aspect's name is 1 to 100 characters.")
        if any(a["name"] == name for a in clean):
            raise JudgmentInvalid(f"Aspect {name!r} is named twice.")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise JudgmentInvalid(f"Aspect {name!r}: min and max must be whole numbers.")
        if not -1000 <= low < high <= 1000:
            raise JudgmentInvalid(f"Aspect {name!r}: min must be below max (within ±1000).")
        description = str(aspect.get("description", ""))
        clean.append({"name": name, "description": description, "min": low, "max": high})
        weight = aspect.get("weight")
        if weight is not None:
            if (
                not isinstance(weight, int | float)
                or isinstance(weight, bool)
                or not math.isfinite(weight)
                or abs(weight) > WEIGHT_LIMIT
            ):
                raise JudgmentInvalid(
                    f"Aspect {name!r}: weight must be a number (within ±{WEIGHT_LIMIT:g})."
                )
            clean[-1]["weight"] = weight
        elif require_weights and name not in DEFAULT_ASPECT_WEIGHTS:
            raise JudgmentInvalid(
                f"Aspect {name!r} needs a weight: the reward model's score is the weighted sum "
                f"of the aspects, and only HelpSteer2's ({', '.join(DEFAULT_ASPECT_WEIGHTS)}) "
                "have default weights."
            )
    return clean


def project_task_set(
    *,
    project: Project,
    task_kind: str,
    ranking_size: int | None = None,
    aspects: list[dict[str, Any]] | None = None,
) -> Project:
    """Set what the project's labelers are asked: its task kind, K, and its aspects."""
    if task_kind not in TaskKind.values:
        raise JudgmentInvalid(f"Unknown task kind {task_kind!r}.")
    if ranking_size is not None:
        if not 2 <= ranking_size <= 9:
            raise JudgmentInvalid("ranking_size must be from 2 to 9.")
        project.ranking_size = ranking_size
    if aspects is not None:
        project.aspects = aspects_validate(aspects)
    project.task_kind = task_kind
    project.save(update_fields=["task_kind", "ranking_size", "aspects"])
    return project


def _set_groups(response_ids: list[int], in_sets: set[int], size: int) -> list[list[int]]:
    """The new sets of one prompt's responses (ascending ids): those in no set yet, K at a
    time; a remainder is filled up to K with the prompt's other responses, lowest id first,
    when the prompt has K; a prompt with fewer than K responses has no set yet."""
    if len(response_ids) < size:
        return []
    fresh = [i for i in response_ids if i not in in_sets]
    groups = [fresh[i : i + size] for i in range(0, len(fresh), size)]
    if groups and len(groups[-1]) < size:
        last = groups[-1]
        last += [i for i in response_ids if i not in last][: size - len(last)]
    return [sorted(group) for group in groups]


@transaction.atomic
def response_sets_create(*, project: Project, prompt_ids: Iterable[int] | None = None) -> int:
    """Make the project's ResponseSets of K = project.ranking_size responses from its prompts'
    responses (or those of `prompt_ids`), by the rule of _set_groups: every response of a
    prompt with K or more ends up in a set. Idempotent: a set of the same responses is never
    made twice. Returns how many sets are new."""
    prompts = Prompt.objects.filter(project=project)
    if prompt_ids is not None:
        prompts = prompts.filter(pk__in=list(prompt_ids))
    by_prompt: dict[int, list[int]] = {}
    for prompt_id, response_id in (
        Response.objects.filter(prompt__in=prompts)
        .order_by("prompt_id", "id")
        .values_list("prompt_id", "id")
    ):
        by_prompt.setdefault(prompt_id, []).append(response_id)
    in_sets: dict[int, set[int]] = {}
    for prompt_id, ids in ResponseSet.objects.filter(prompt_id__in=by_prompt).values_list(
        "prompt_id", "response_ids"
    ):
        in_sets.setdefault(prompt_id, set()).update(ids)
    new = [
        ResponseSet(
            project=project,
            prompt_id=prompt_id,
            response_ids=group,
            response_key=",".join(map(str, group)),
        )
        for prompt_id, ids in by_prompt.items()
        for group in _set_groups(ids, in_sets.get(prompt_id, set()), project.ranking_size)
    ]
    before = ResponseSet.objects.filter(project=project).count()
    ResponseSet.objects.bulk_create(new, ignore_conflicts=True)
    return ResponseSet.objects.filter(project=project).count() - before


def response_set_gold_set(
    *,
    response_set: ResponseSet,
    best_id: int | None = None,
    ratings: Mapping[int, Mapping[str, tuple[int, int] | list[int]]] | None = None,
) -> ResponseSet:
    """Make the set a gold check: `best_id`, the known best response (rankings), and/or
    `ratings`, known bounds {response_id: {aspect: [lo, hi]}} (ratings). Gold sets are served
    at the project's gold_rate, to each labeler once, and take no redundancy slot."""
    members = set(response_set.response_ids)
    if best_id is not None and best_id not in members:
        raise JudgmentInvalid(f"Response {best_id} is not one of this set's responses.")
    scales = {a.name: a for a in project_aspects(response_set.project)}
    bounds: dict[str, dict[str, list[int]]] = {}
    for response_id, by_aspect in (ratings or {}).items():
        if int(response_id) not in members:
            raise JudgmentInvalid(f"Response {response_id} is not one of this set's responses.")
        for name, (low, high) in by_aspect.items():
            aspect = scales.get(name)
            if aspect is None:
                raise JudgmentInvalid(f"This project has no aspect {name!r}.")
            if not aspect.min <= low <= high <= aspect.max:
                raise JudgmentInvalid(
                    f"Gold bounds of {name} must lie within {aspect.min} to {aspect.max}."
                )
            bounds.setdefault(str(int(response_id)), {})[name] = [low, high]
    response_set.gold_best_id = best_id
    response_set.gold_ratings = bounds
    response_set.is_gold = best_id is not None or bool(bounds)
    response_set.save(update_fields=["gold_best", "gold_ratings", "is_gold"])
    return response_set


# ---------------------------------------------------------------------------------------------
# Judgments


@dataclass(frozen=True)
class SetJudgment:
    """A validated judgment of a set: the ranking's groups (best first; empty when not
    asked, or all bad without an order) and the ratings {(response_id, aspect): value}."""

    groups: list[list[int]]
    all_bad: bool
    ratings: dict[tuple[int, str], int]


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _groups_validate(ranking: Any, members: list[int]) -> list[list[int]]:
    """The ranking as groups of ids, best first: each item an id, or a list of tied ids.
    Every response of the set exactly once."""
    if not isinstance(ranking, list | tuple):
        raise JudgmentInvalid("ranking must be a list of response ids or lists of tied ids.")
    groups: list[list[int]] = []
    for item in ranking:
        group = list(item) if isinstance(item, list | tuple) else [item]
        if not group:
            raise JudgmentInvalid("The ranking has an empty tie group.")
        if not all(_whole(i) for i in group):
            raise JudgmentInvalid(
                f"ranking must be a list of response ids or lists of tied ids (found {item!r})."
            )
        groups.append(group)
    seen: set[int] = set()
    for group in groups:
        for response_id in group:
            if response_id not in members:
                raise JudgmentInvalid(f"Response {response_id} is not one of this set's responses.")
            if response_id in seen:
                raise JudgmentInvalid(f"The ranking lists response {response_id} twice.")
            seen.add(response_id)
    missing = [i for i in members if i not in seen]
    if missing:
        listed = ", ".join(map(str, missing))
        raise JudgmentInvalid(f"The ranking omits response{'s' * (len(missing) > 1)} {listed}.")
    return groups


def _ratings_validate(
    ratings: Iterable[Mapping[str, Any]], members: list[int], aspects: list[Aspect]
) -> dict[tuple[int, str], int]:
    """{(response_id, aspect): value} from [{response_id, aspect, value}], each value on its
    aspect's scale, every response rated on every aspect once."""
    scales = {a.name: a for a in aspects}
    values: dict[tuple[int, str], int] = {}
    if not isinstance(ratings, list | tuple):
        raise JudgmentInvalid("ratings must be a list of {response_id, aspect, value}.")
    for rating in ratings:
        if not isinstance(rating, Mapping):
            raise JudgmentInvalid("Each rating is {response_id, aspect, value}.")
        response_id, name, value = (rating.get(k) for k in ("response_id", "aspect", "value"))
        if not _whole(response_id) or response_id not in members:
            raise JudgmentInvalid(f"Response {response_id} is not one of this set's responses.")
        aspect = scales.get(name)
        if aspect is None:
            raise JudgmentInvalid(f"This project has no aspect {name!r}.")
        if not _whole(value) or not aspect.min <= value <= aspect.max:
            raise JudgmentInvalid(
                f"{aspect.name} is rated from {aspect.min} to {aspect.max}; "
                f"response {response_id} got {value!r}."
            )
        if (response_id, name) in values:
            raise JudgmentInvalid(f"Response {response_id} is rated on {name} twice.")
        values[(response_id, name)] = value
    missing = [f"{i} on {a.name}" for i in members for a in aspects if (i, a.name) not in values]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise JudgmentInvalid(f"Rate every response on every aspect: missing response {shown}.")
    return values


def set_judgment_validate(
    *,
    project: Project,
    response_ids: list[int],
    ranking: Any = None,
    all_bad: bool = False,
    ratings: Iterable[Mapping[str, Any]] | None = None,
) -> SetJudgment:
    """Check a judgment against its set and its project's task: a ranking where the task
    ranks (every response once; or none, when all are marked bad), ratings where it rates
    (every response on every aspect, each on its scale), and neither where it does not."""
    if project.task_kind == TaskKind.PAIRWISE:
        raise JudgmentInvalid(PAIRWISE_REFUSAL)
    if asks_ranking(project):
        if ranking is None and not all_bad:
            raise JudgmentInvalid('A ranking is required (or mark all responses bad: "all_bad").')
        groups = [] if ranking is None else _groups_validate(ranking, response_ids)
    else:
        if ranking is not None or all_bad:
            raise JudgmentInvalid("This project asks for ratings, not a ranking.")
        groups = []
    if asks_ratings(project):
        if ratings is None:
            raise JudgmentInvalid("Ratings are required: every response on every aspect.")
        values = _ratings_validate(ratings, response_ids, project_aspects(project))
    else:
        if ratings:
            raise JudgmentInvalid("This project asks for a ranking, not ratings.")
        values = {}
    return SetJudgment(groups=groups, all_bad=bool(all_bad), ratings=values)


@dataclass(frozen=True)
class StoredSetJudgment:
    """A labeler's judgment of a set just stored, as the submission answers it."""

    set_id: int
    project_slug: str
    ranking_id: int | None
    groups: list[list[int]]
    all_bad: bool
    ratings: list[dict[str, Any]]
    shown: list[int]
    is_repeat: bool
    time_spent_ms: int | None
    created_at: datetime


def response_set_submit(
    *,
    labeler: AbstractBaseUser,
    set_id: int,
    ranking: Any = None,
    all_bad: bool = False,
    ratings: Iterable[Mapping[str, Any]] | None = None,
    time_spent_ms: int | None = None,
) -> StoredSetJudgment:
    """Store a labeler's ranking and/or ratings of a set they were served, all or nothing.

    The set's row is locked for the check-then-write, so a double submit stores one judgment
    (the second raises SetJudgmentExists) and concurrent labelers never push a set past its
    redundancy. A set they were never served, or on a project they are not on: SetNotServed.
    A late submit (the lease expired) is taken while the set still has a free slot, counting
    others' live leases first, as for pairs; else SetFull. Bad input: JudgmentInvalid, naming
    the problem, and nothing stored."""
    try:
        return _submit(
            labeler=labeler,
            set_id=set_id,
            ranking=ranking,
            all_bad=all_bad,
            ratings=ratings,
            time_spent_ms=time_spent_ms,
        )
    except IntegrityError:
        # The unique constraints are the last guard behind the row lock.
        raise SetJudgmentExists(set_id) from None


@transaction.atomic
def _submit(
    *,
    labeler: AbstractBaseUser,
    set_id: int,
    ranking: Any,
    all_bad: bool,
    ratings: Iterable[Mapping[str, Any]] | None,
    time_spent_ms: int | None,
) -> StoredSetJudgment:
    now = timezone.now()
    locked = _lock_member_set(labeler, set_id)
    project = locked.project
    lease, judged = _served_lease(locked, labeler)
    judgment = set_judgment_validate(
        project=project,
        response_ids=list(locked.response_ids),
        ranking=ranking,
        all_bad=all_bad,
        ratings=ratings,
    )
    is_repeat = lease is not None and lease.is_repeat
    _refuse_second_judgment(labeler, set_id, is_repeat=is_repeat, judged=judged)
    # Every labeler may judge a gold set once: it checks them, it takes no slot.
    is_gold_check = locked.is_gold and not is_repeat
    if not is_repeat and not is_gold_check:
        _take_slot(locked, labeler, lease, now)
    shown = list(lease.shown) if lease is not None else []
    ranking_id = _store_judgment(
        locked,
        labeler,
        judgment,
        shown=shown,
        time_spent_ms=time_spent_ms,
        flags={"is_repeat": is_repeat, "is_gold_check": is_gold_check},
    )
    if lease is not None:
        lease.delete()
    if not is_repeat:
        _project_count_judgment(project)
    return StoredSetJudgment(
        set_id=locked.pk,
        project_slug=project.slug,
        ranking_id=ranking_id,
        groups=judgment.groups,
        all_bad=judgment.all_bad,
        ratings=[
            {"response_id": response_id, "aspect": aspect, "value": value}
            for (response_id, aspect), value in judgment.ratings.items()
        ],
        shown=shown,
        is_repeat=is_repeat,
        time_spent_ms=time_spent_ms,
        created_at=now,
    )


def _project_count_judgment(project: Project) -> None:
    """Count a stored set judgment in project.comparison_count, what auto-retraining, the
    quality recompute rule and a run's comparison_count_at_start read; a swapped repeat is not
    new data, as for pairs.

    Unlike a pair's count (labeling._project_count_one, a transaction of its own), this one
    commits with the judgment's rows, so it never lags or outruns them after a crash. The
    project's row then stays locked until the commit, queueing its set submissions at their
    commits; a set judgment takes a labeler K readings, so they arrive far more slowly than
    the pair votes whose contention that other count avoids."""
    Project.objects.filter(pk=project.pk).update(comparison_count=F("comparison_count") + 1)


def _lock_member_set(labeler: AbstractBaseUser, set_id: int) -> ResponseSet:
    """The set, row-locked for the check-then-write; a set of a project the labeler is not
    on reads as absent, so its existence does not leak."""
    locked = (
        ResponseSet.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk=set_id, project__memberships__user=labeler)
        .first()
    )
    if locked is None:
        raise SetNotServed("No such response set.")
    return locked


def _served_lease(locked: ResponseSet, labeler: AbstractBaseUser) -> tuple[SetLease | None, bool]:
    """The labeler's lease on the set and whether they already judged it. Neither means the
    set was never served to them; a judged set without a lease still reaches the duplicate
    check, so a double submit answers SetJudgmentExists rather than SetNotServed."""
    lease = SetLease.objects.filter(response_set=locked, labeler=labeler).first()
    judged = ResponseSet.objects.filter(pk=locked.pk).filter(judged_by(labeler)).exists()
    if lease is None and not judged:
        raise SetNotServed("No such response set.")
    return lease, judged


def _refuse_second_judgment(
    labeler: AbstractBaseUser, set_id: int, *, is_repeat: bool, judged: bool
) -> None:
    # A repeat is the one sanctioned second look at a set, so it only clashes with an
    # earlier repeat, never with the labeler's first judgment.
    if is_repeat:
        if ResponseSet.objects.filter(pk=set_id).filter(judged_by(labeler, repeat=True)).exists():
            raise SetJudgmentExists(set_id)
    elif judged:
        raise SetJudgmentExists(set_id)


def _take_slot(
    locked: ResponseSet, labeler: AbstractBaseUser, lease: SetLease | None, now: datetime
) -> None:
    """Count the judgment against the set's redundancy, or refuse it with SetFull."""
    project = locked.project
    live_own = lease is not None and lease.expires_at > now
    taken = locked.human_count
    if not live_own:
        # A late submit competes with others' live leases: they were promised a slot first.
        taken += (
            SetLease.objects.filter(response_set=locked, expires_at__gt=now)
            .exclude(labeler=labeler)
            .count()
        )
    if not locked.is_open or taken >= project.redundancy:
        raise SetFull("This set already has all the judgments it needs.")
    locked.human_count += 1
    locked.is_open = locked.human_count < project.redundancy
    locked.save(update_fields=["human_count", "is_open"])


def _store_judgment(
    locked: ResponseSet,
    labeler: AbstractBaseUser,
    judgment: SetJudgment,
    *,
    shown: list[int],
    time_spent_ms: int | None,
    flags: dict[str, bool],
) -> int | None:
    """Write the Ranking (when the project asks one) and the Ratings; the Ranking's id."""
    project = locked.project
    ranking_id = None
    if asks_ranking(project):
        ranking_id = Ranking.objects.create(
            response_set=locked,
            project=project,
            labeler=labeler,
            groups=judgment.groups,
            all_bad=judgment.all_bad,
            shown=shown,
            time_spent_ms=time_spent_ms,
            **flags,
        ).pk
    # Each rating keeps the slot its response was shown in, for position-bias checks.
    position = {response_id: i for i, response_id in enumerate(shown)}
    Rating.objects.bulk_create(
        [
            Rating(
                response_set=locked,
                response_id=response_id,
                project=project,
                labeler=labeler,
                aspect=aspect,
                value=value,
                position=position.get(response_id),
                **flags,
            )
            for (response_id, aspect), value in judgment.ratings.items()
        ]
    )
    return ranking_id
