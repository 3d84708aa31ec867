"""Labeling writes: lease the next Pair to a labeler, store their Comparison, skip a Pair.

The assignment rules: a Pair receives at most `project.redundancy` human Comparisons, from
distinct labelers; a Pair is served to a labeler at most once (a reload returns the Pair they
hold); a served Pair is leased for `project.lease_minutes` so that concurrent labelers don't
over-fill it, and an expired or skipped lease frees its slot for others.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate.models import Choice, Comparison, Lease, Pair, Project, Side
from annotate.services.checks import check_lease
from annotate.services.selection import queue_order

# How many locked-then-refused candidates a lease attempt tolerates before giving up; each
# refusal needs a concurrent labeler to have leased that very Pair in the same instant.
LEASE_ATTEMPTS = 5


class LabelingError(Exception):
    """A request the assignment rules refuse; the message is safe to show to the labeler."""


class ComparisonInvalid(LabelingError):
    """The judgment does not fit the project's label scale."""


class ComparisonExists(LabelingError):
    """The labeler already judged this Pair; carries the stored Comparison's id."""

    def __init__(self, comparison_id: int) -> None:
        super().__init__(f"You already judged this pair (comparison {comparison_id}).")
        self.comparison_id = comparison_id


class PairFull(LabelingError):
    """The Pair already has all the Comparisons its project asks for."""


@dataclass(frozen=True)
class Judgment:
    """A validated judgment, ready to store."""

    choice: str
    strength: int | None
    reasons: list[str]


def _active_leases(now: datetime):
    """Unexpired leases of the outer Pair, counted in SQL."""
    return (
        Lease.objects.filter(pair=OuterRef("pk"), expires_at__gt=now)
        .order_by()
        .values("pair")
        .annotate(n=Count("pk"))
        .values("n")
    )


def _lease_current(*, project: Project, labeler: AbstractBaseUser, now: datetime) -> Lease | None:
    return (
        Lease.objects.filter(labeler=labeler, pair__project=project, expires_at__gt=now)
        # Gold and repeat leases stand outside the open queue.
        .filter(Q(pair__is_open=True) | Q(is_repeat=True) | ~Q(pair__gold=""))
        .select_related("pair__prompt", "pair__response_a", "pair__response_b")
        .order_by("-created_at")
        .first()
    )


def pair_candidates(*, project: Project, labeler: AbstractBaseUser, now: datetime):
    """The Pairs the labeler may be served, in queue order, row-locked as they are read: SKIP
    LOCKED passes over Pairs that a concurrent labeler is leasing right now (PostgreSQL;
    SQLite serializes writers instead).

    Read with a LIMIT it is one query walking the `pair_queue` partial index in order and
    stopping at the first fit: open Pairs of the project by priority then age, minus those
    the labeler judged or was served, minus those whose human Comparisons plus live leases
    already reach the project's redundancy.
    """
    judged = Comparison.objects.filter(pair=OuterRef("pk"), labeler=labeler, is_repeat=False)
    served = Lease.objects.filter(pair=OuterRef("pk"), labeler=labeler)
    held = Coalesce(Subquery(_active_leases(now), output_field=IntegerField()), Value(0))
    return (
        Pair.objects.filter(project=project, is_open=True, gold="")
        .filter(~Exists(judged), ~Exists(served))
        .alias(held=held)
        .filter(Q(human_count__lt=project.redundancy - F("held")))
        .select_related("prompt", "response_a", "response_b")
        .order_by("-priority", "id")
        .select_for_update(skip_locked=True, of=("self",))
    )


def pair_lease_next(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random | None = None
) -> Lease | None:
    """Lease the next Pair for this labeler, or None when nothing is left for them.

    A labeler holding an unexpired lease gets the same Pair back, so a reload never skips
    work. The project's selection picks the queue order (annotate/services/selection.py).
    The left/right order is drawn here, per labeler and Pair, and kept on the Lease; `rng`
    makes both draws reproducible.
    """
    rng = rng or random.Random()
    now = timezone.now()
    with transaction.atomic():
        current = _lease_current(project=project, labeler=labeler, now=now)
        if current is not None:
            current.pair.project = project
            return current
        check = check_lease(project=project, labeler=labeler, rng=rng, now=now)
        if check is not None:
            return check
        order = queue_order(project=project, rng=rng)
        for _ in range(LEASE_ATTEMPTS):
            candidates = pair_candidates(project=project, labeler=labeler, now=now)
            pair = candidates.order_by(*order).first()
            if pair is None:
                return None
            # The candidate query's snapshot can predate a lease that a concurrent labeler
            # committed just before releasing this row; with the row lock held, a fresh
            # count sees every lease on it.
            live = Lease.objects.filter(pair=pair, expires_at__gt=now).count()
            if pair.human_count + live < project.redundancy:
                lease = Lease.objects.create(
                    pair=pair,
                    labeler=labeler,
                    left=rng.choice([Side.A, Side.B]),
                    expires_at=now + timedelta(minutes=project.lease_minutes),
                )
                pair.project = project
                lease.pair = pair
                return lease
    return None


def lease_skip(*, pair: Pair, labeler: AbstractBaseUser) -> None:
    """The labeler passes on this Pair: its slot goes to others at once and the Pair is not
    served to this labeler again (the expired lease stays as the record that it was served)."""
    Lease.objects.filter(pair=pair, labeler=labeler, expires_at__gt=timezone.now()).update(
        expires_at=timezone.now()
    )


def choice_from_preferred(*, pair: Pair, preferred: int | str) -> str:
    """Map the API's `preferred` (a response id, "tie" or "both_bad") to the canonical choice."""
    if preferred in (Choice.TIE, Choice.BOTH_BAD):
        return str(preferred)
    try:
        response_id = int(preferred)
    except (TypeError, ValueError):
        raise ComparisonInvalid(
            'preferred must be one of the pair\'s response ids, "tie" or "both_bad".'
        ) from None
    if response_id == pair.response_a_id:
        return Choice.A
    if response_id == pair.response_b_id:
        return Choice.B
    raise ComparisonInvalid(f"Response {response_id} is not one of this pair's responses.")


def judgment_validate(
    *, project: Project, choice: str, strength: int | None, reasons: Iterable[str]
) -> Judgment:
    """Check a judgment against the project's label scale."""
    if choice not in Choice.values:
        raise ComparisonInvalid(f"Unknown choice {choice!r}.")
    if choice == Choice.TIE and not project.allow_tie:
        raise ComparisonInvalid("This project does not allow ties.")
    if choice == Choice.BOTH_BAD and not project.allow_both_bad:
        raise ComparisonInvalid('This project does not allow "both bad".')
    decisive = choice in (Choice.A, Choice.B)
    levels = len(project.strength_scale)
    if strength is not None:
        if not (project.ask_strength and decisive):
            raise ComparisonInvalid(
                "Strength applies only to a preference in a project that asks it."
            )
        if not 1 <= strength <= levels:
            raise ComparisonInvalid(f"Strength must be between 1 and {levels}.")
    elif project.ask_strength and decisive:
        raise ComparisonInvalid(f"Choose a strength between 1 and {levels}.")
    unique_reasons = list(dict.fromkeys(reasons))
    unknown = [r for r in unique_reasons if r not in project.reason_tags]
    if unknown:
        raise ComparisonInvalid(f"Unknown reasons: {', '.join(unknown)}.")
    return Judgment(choice=choice, strength=strength, reasons=unique_reasons)


def comparison_create(
    *,
    pair: Pair,
    labeler: AbstractBaseUser,
    choice: str,
    strength: int | None = None,
    reasons: Iterable[str] = (),
    comment: str = "",
    time_spent_ms: int | None = None,
) -> Comparison:
    """Store one labeler's judgment of a Pair.

    The Pair row is locked for the check-then-write, so a double submit stores one Comparison
    (the second raises ComparisonExists with the first's id) and concurrent labelers never push
    a Pair past its redundancy.
    """
    judgment = judgment_validate(
        project=pair.project, choice=choice, strength=strength, reasons=reasons
    )
    try:
        return _comparison_store(
            pair=pair,
            labeler=labeler,
            judgment=judgment,
            comment=comment,
            time_spent_ms=time_spent_ms,
        )
    except IntegrityError:
        # The unique (pair, labeler) constraint is the last guard behind the row lock.
        existing = Comparison.objects.filter(pair=pair, labeler=labeler, is_repeat=False).first()
        if existing is None:
            raise
        raise ComparisonExists(existing.pk) from None


@transaction.atomic
def _comparison_store(
    *,
    pair: Pair,
    labeler: AbstractBaseUser,
    judgment: Judgment,
    comment: str,
    time_spent_ms: int | None,
) -> Comparison:
    project = pair.project
    now = timezone.now()
    locked = Pair.objects.select_for_update().get(pk=pair.pk)
    # Read after the lock is held, so it sees every comparison and lease committed before.
    mine = Comparison.objects.filter(pair=OuterRef("pk"), labeler=labeler, is_repeat=False)
    my_lease = Lease.objects.filter(pair=OuterRef("pk"), labeler=labeler)
    others_live = (
        Lease.objects.filter(pair=OuterRef("pk"), expires_at__gt=now)
        .exclude(labeler=labeler)
        .order_by()
        .values("pair")
        .annotate(n=Count("pk"))
        .values("n")
    )
    state = (
        Pair.objects.filter(pk=pair.pk)
        .values(
            existing=Subquery(mine.values("pk")[:1]),
            lease_left=Subquery(my_lease.values("left")[:1]),
            lease_expires=Subquery(my_lease.values("expires_at")[:1]),
            lease_repeat=Subquery(my_lease.values("is_repeat")[:1]),
            others_live=Coalesce(Subquery(others_live, output_field=IntegerField()), Value(0)),
        )
        .get()
    )
    if state["lease_repeat"]:
        return _repeat_store(
            pair=locked,
            labeler=labeler,
            judgment=judgment,
            comment=comment,
            time_spent_ms=time_spent_ms,
            left=state["lease_left"],
        )
    if state["existing"] is not None:
        raise ComparisonExists(state["existing"])
    # Every labeler may judge a gold Pair once: it checks them, it takes no redundancy slot.
    is_gold_check = bool(locked.gold)
    if not is_gold_check:
        if state["lease_expires"] is not None and state["lease_expires"] > now:
            # A live lease reserved this labeler's slot.
            taken = locked.human_count
        else:
            # Without a live lease, others' live leases hold their slots first.
            taken = locked.human_count + state["others_live"]
        if not locked.is_open or taken >= project.redundancy:
            raise PairFull("This pair already has all the judgments it needs.")

    comparison = _comparison_insert(
        pair=locked,
        labeler=labeler,
        judgment=judgment,
        comment=comment,
        time_spent_ms=time_spent_ms,
        left=state["lease_left"],
        is_gold_check=is_gold_check,
    )
    if not is_gold_check:
        locked.human_count += 1
        locked.is_open = locked.human_count < project.redundancy
        locked.save(update_fields=["human_count", "is_open"])
    if state["lease_left"] is not None:
        Lease.objects.filter(pair=locked, labeler=labeler).delete()
    # Last statement before commit: the project row is the one every labeler updates.
    Project.objects.filter(pk=project.pk).update(comparison_count=F("comparison_count") + 1)
    return comparison


def _repeat_store(
    *,
    pair: Pair,
    labeler: AbstractBaseUser,
    judgment: Judgment,
    comment: str,
    time_spent_ms: int | None,
    left: str,
) -> Comparison:
    """A swapped repeat: stored for self-consistency only, outside every count."""
    existing = Comparison.objects.filter(pair=pair, labeler=labeler, is_repeat=True).first()
    if existing is not None:
        raise ComparisonExists(existing.pk)
    comparison = _comparison_insert(
        pair=pair,
        labeler=labeler,
        judgment=judgment,
        comment=comment,
        time_spent_ms=time_spent_ms,
        left=left,
        is_repeat=True,
    )
    Lease.objects.filter(pair=pair, labeler=labeler).delete()
    return comparison


def _comparison_insert(
    *,
    pair: Pair,
    labeler: AbstractBaseUser,
    judgment: Judgment,
    comment: str,
    time_spent_ms: int | None,
    left: str | None,
    is_gold_check: bool = False,
    is_repeat: bool = False,
) -> Comparison:
    return Comparison.objects.create(
        pair=pair,
        project_id=pair.project_id,
        labeler=labeler,
        source=Comparison.Source.HUMAN,
        choice=judgment.choice,
        strength=judgment.strength,
        reasons=judgment.reasons,
        comment=comment,
        left=left or "",
        time_spent_ms=time_spent_ms,
        is_gold_check=is_gold_check,
        is_repeat=is_repeat,
    )
