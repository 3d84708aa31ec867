"""Serving ResponseSets to labelers: lease the next set (gold checks and swapped repeats at the
project's rates, else the open queue), and skip a leased set. The rules are the pairs'
(annotate/services/labeling.py) and annotate/services/rankings.py's module docstring; stored
judgments are rankings.py's.

Sets are far fewer than pairs per labeled response and the queue reads one partial index, so
these run through the ORM; rows a concurrent labeler is leasing are skipped by
SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite serializes writers instead).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.models import (
    Project,
    Prompt,
    Ranking,
    Rating,
    Response,
    ResponseSet,
    SetLease,
    TaskKind,
    messages_text,
)
from annotate.selectors.rankings import judged_by
from annotate.services.checks import REPEAT_MIN_DISTANCE
from annotate.services.labeling import LabelerExcluded, labeler_exclusion
from annotate.services.rankings import PAIRWISE_REFUSAL, WrongTaskKind, asks_ranking
from annotate.services.selection import RANDOM_ORDER, queue_order

# As for pairs: locked-then-refused candidates a lease attempt tolerates before giving up.
LEASE_ATTEMPTS = 5


@dataclass(frozen=True)
class ShownSetResponse:
    id: int
    text: str


@dataclass(frozen=True)
class LeasedSet:
    """A set leased to a labeler, as the page and the API show it: the responses in the
    order this labeler sees them."""

    lease_id: int
    set_id: int
    project: Project
    is_repeat: bool
    expires_at: datetime
    messages: list[dict[str, Any]]
    responses: list[ShownSetResponse]

    @property
    def prompt_text(self) -> str:
        """The last user turn, by the rule of Prompt.text."""
        return messages_text(self.messages)


def _leased(lease: SetLease, project: Project) -> LeasedSet:
    texts = dict(Response.objects.filter(pk__in=lease.shown).values_list("pk", "text"))
    return LeasedSet(
        lease_id=lease.pk,
        set_id=lease.response_set_id,
        project=project,
        is_repeat=lease.is_repeat,
        expires_at=lease.expires_at,
        messages=lease.response_set.prompt.messages,
        responses=[ShownSetResponse(i, texts[i]) for i in lease.shown],
    )


def response_set_lease_next(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random | None = None
) -> LeasedSet | None:
    """Lease the next ResponseSet for this labeler, or None when nothing is left for them;
    LabelerExcluded when staff excluded them. A labeler holding an unexpired lease gets the
    same set back, in the same order. At the project's rates a gold set or a swapped repeat is
    served first; else the open queue, by priority or at random as the project's selection
    says. The order the responses are shown in is drawn here with `rng` and kept on the
    lease."""
    if project.task_kind == TaskKind.PAIRWISE:
        raise WrongTaskKind(PAIRWISE_REFUSAL)
    rng = rng or random.Random()
    now = timezone.now()
    with transaction.atomic():
        reason = labeler_exclusion(project=project, labeler=labeler)
        if reason is not None:
            raise LabelerExcluded(reason)
        current = (
            SetLease.objects.filter(
                labeler=labeler, response_set__project=project, expires_at__gt=now
            )
            .filter(
                Q(response_set__is_open=True) | Q(is_repeat=True) | Q(response_set__is_gold=True)
            )
            .select_related("response_set__prompt")
            .order_by("-created_at")
            .first()
        )
        if current is not None:
            return _leased(current, project)
        check = _check_lease(project=project, labeler=labeler, rng=rng, now=now)
        if check is not None:
            return _leased(check, project)
        leased = _queue_lease(project=project, labeler=labeler, rng=rng, now=now)
        return None if leased is None else _leased(leased, project)


def _lease_create(
    *,
    response_set: ResponseSet,
    labeler: AbstractBaseUser,
    shown: list[int],
    is_repeat: bool,
    project: Project,
    now: datetime,
) -> SetLease:
    lease = SetLease.objects.create(
        response_set=response_set,
        labeler=labeler,
        shown=shown,
        is_repeat=is_repeat,
        expires_at=now + timedelta(minutes=project.lease_minutes),
    )
    lease.response_set = response_set
    return lease


def _check_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> SetLease | None:
    """At the project's rates, a gold or repeat lease; None means serve the open queue."""
    if project.gold_rate <= 0 and project.repeat_rate <= 0:
        return None
    draw = rng.random()
    if draw < project.gold_rate:
        return _gold_lease(project=project, labeler=labeler, rng=rng, now=now)
    if draw < project.gold_rate + project.repeat_rate:
        return _repeat_lease(project=project, labeler=labeler, rng=rng, now=now)
    return None


def _gold_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> SetLease | None:
    """A gold set this labeler has neither judged nor been served, in random order."""
    served = SetLease.objects.filter(response_set=OuterRef("pk"), labeler=labeler)
    found = (
        ResponseSet.objects.filter(project=project, is_gold=True)
        .exclude(judged_by(labeler))
        .exclude(Exists(served))
        .select_related("prompt")
        .order_by("random_key", "id")
        .first()
    )
    if found is None:
        return None
    shown = rng.sample(found.response_ids, len(found.response_ids))
    return _lease_create(
        response_set=found, labeler=labeler, shown=shown, is_repeat=False, project=project, now=now
    )


def _repeat_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> SetLease | None:
    """A set the labeler judged earlier (not among their latest few, not gold, not repeated
    before), drawn at random, served again with its responses in the reverse of the order they
    saw: the same responses in another order, every position moved (but a middle one)."""
    recent = _recent_sets(project, labeler)
    served = SetLease.objects.filter(response_set=OuterRef("pk"), labeler=labeler)
    eligible = (
        ResponseSet.objects.filter(project=project, is_gold=False)
        .filter(judged_by(labeler))
        .exclude(judged_by(labeler, repeat=True))
        .exclude(Exists(served))
        .exclude(pk__in=recent)
        .order_by("random_key", "id")
    )
    start = rng.random()
    found = (
        eligible.filter(random_key__gte=start).first()
        or eligible.filter(random_key__lt=start).first()
    )
    if found is None:
        return None
    seen = _shown_before(found, labeler)
    return _lease_create(
        response_set=found,
        labeler=labeler,
        shown=list(reversed(seen)),
        is_repeat=True,
        project=project,
        now=now,
    )


def _recent_sets(project: Project, labeler: AbstractBaseUser) -> list[int]:
    """The sets of the labeler's latest few judgments (a rating judgment is many rows)."""
    model = Ranking if asks_ranking(project) else Rating
    rows_per_set = 1 if model is Ranking else project.ranking_size * max(1, len(project.aspects))
    latest = (
        model.objects.filter(project=project, labeler=labeler, is_repeat=False)
        .order_by("-created_at", "-id")
        .values_list("response_set_id", flat=True)[: REPEAT_MIN_DISTANCE * rows_per_set]
    )
    return list(dict.fromkeys(latest))[:REPEAT_MIN_DISTANCE]


def _shown_before(response_set: ResponseSet, labeler: AbstractBaseUser) -> list[int]:
    """The order the labeler saw the set in when they first judged it."""
    ranking = (
        Ranking.objects.filter(response_set=response_set, labeler=labeler, is_repeat=False)
        .values_list("shown", flat=True)
        .first()
    )
    if ranking:
        return list(ranking)
    positions = dict(
        Rating.objects.filter(response_set=response_set, labeler=labeler, is_repeat=False)
        .exclude(position=None)
        .values_list("response_id", "position")
    )
    if len(positions) == len(response_set.response_ids):
        return sorted(positions, key=positions.__getitem__)
    return list(response_set.response_ids)


def _live_leases(now: datetime) -> Subquery:
    return Subquery(
        SetLease.objects.filter(response_set=OuterRef("pk"), expires_at__gt=now)
        .order_by()
        .values("response_set")
        .annotate(n=Count("pk"))
        .values("n")
    )


def _queue_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> SetLease | None:
    """Lease the first fit of the open queue, inside response_set_lease_next's transaction."""
    order = queue_order(project=project, rng=rng)
    order = RANDOM_ORDER if order == RANDOM_ORDER else ("-priority", "id")
    served = SetLease.objects.filter(response_set=OuterRef("pk"), labeler=labeler)
    candidates = (
        ResponseSet.objects.filter(project=project, is_open=True, is_gold=False)
        .exclude(judged_by(labeler))
        .exclude(Exists(served))
        .alias(live=Coalesce(_live_leases(now), Value(0)))
        .filter(human_count__lt=project.redundancy - F("live"))
        .order_by(*order)
    )
    for _ in range(LEASE_ATTEMPTS):
        found = candidates.select_for_update(skip_locked=True).first()
        if found is None:
            return None
        # The candidate read's snapshot can predate a lease a concurrent labeler committed
        # just before releasing this row: count again now that the row is locked.
        live = SetLease.objects.filter(response_set=found, expires_at__gt=now).count()
        if found.human_count + live >= project.redundancy:
            continue
        found.prompt = Prompt.objects.get(pk=found.prompt_id)
        shown = rng.sample(found.response_ids, len(found.response_ids))
        return _lease_create(
            response_set=found,
            labeler=labeler,
            shown=shown,
            is_repeat=False,
            project=project,
            now=now,
        )
    return None


def response_set_skip(*, response_set: ResponseSet, labeler: AbstractBaseUser) -> None:
    """The labeler passes on this set: its slot goes to others at once and it is not served
    to them again (the expired lease stays as the record that it was served)."""
    now = timezone.now()
    SetLease.objects.filter(response_set=response_set, labeler=labeler, expires_at__gt=now).update(
        expires_at=now
    )
