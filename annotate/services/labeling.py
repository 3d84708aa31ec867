"""Labeling writes: lease the next Pair to a labeler, store their Comparison, skip a Pair.

The assignment rules: a Pair receives at most `project.redundancy` human Comparisons, from
distinct labelers; a Pair is served to a labeler at most once (a reload returns the Pair they
hold); a served Pair is leased for `project.lease_minutes` so that concurrent labelers don't
over-fill it, and an expired or skipped lease frees its slot for others. Under judge-first
(`project.judge_first`) the Pairs the AI judges settled are not served to people; they stay
open, so they come back the moment a judge or the reward model disagrees, or the option is
turned off (annotate.selectors.judge_first).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotate.errors import ApplicationError
from annotate.models import (
    Choice,
    Comparison,
    Lease,
    Membership,
    Pair,
    Project,
    Side,
    messages_text,
    new_random_key,
)
from annotate.selectors.judge_first import judge_sure
from annotate.services import _queue_sql
from annotate.services._queue_sql import LockedPair, NewComparison, ShownResponse
from annotate.services.checks import check_lease
from annotate.services.selection import RANDOM_ORDER, queue_order

# How many locked-then-refused candidates a lease attempt tolerates before giving up; each
# refusal needs a concurrent labeler to have leased that very Pair in the same instant.
LEASE_ATTEMPTS = 5


class LabelingError(ApplicationError):
    """A request the assignment rules refuse; the message is safe to show to the labeler."""

    status = HTTPStatus.BAD_REQUEST
    code = "labeling_refused"


class ComparisonInvalid(LabelingError):
    """The judgment does not fit the project's label scale."""

    status = HTTPStatus.BAD_REQUEST
    code = "comparison_invalid"


class ComparisonExists(LabelingError):
    """The labeler already judged this Pair; carries the stored Comparison's id."""

    status = HTTPStatus.CONFLICT
    code = "exists"
    code_in_body = True

    def __init__(self, comparison_id: int) -> None:
        super().__init__(f"You already judged this pair (comparison {comparison_id}).")
        self.comparison_id = comparison_id

    @property
    def extra(self) -> dict[str, int]:
        return {"id": self.comparison_id}


class PairFull(LabelingError):
    """The Pair already has all the Comparisons its project asks for."""

    status = HTTPStatus.CONFLICT
    code = "pair_full"
    code_in_body = True


class PairNotServed(LabelingError):
    """No such Pair for this labeler: not on their projects, or never served to them."""

    status = HTTPStatus.NOT_FOUND
    code = "pair_not_served"


class LabelerExcluded(LabelingError):
    """Staff excluded this labeler from the project: no more pairs, and the reason why."""

    status = HTTPStatus.FORBIDDEN
    code = "excluded"
    code_in_body = True


def labeler_exclusion(*, project: Project, labeler: AbstractBaseUser) -> str | None:
    """Why staff excluded the labeler from the project (a message for them), or None."""
    reason = (
        Membership.objects.filter(project=project, user=labeler, excluded=True)
        .values_list("excluded_reason", flat=True)
        .first()
    )
    return None if reason is None else _exclusion_message(reason)


def _exclusion_message(reason: str) -> str:
    why = f" The reason given: {reason}" if reason else ""
    return (
        "Staff excluded you from this project, so it has no more pairs for you; your "
        f"earlier judgments stay stored.{why}"
    )


@dataclass(frozen=True)
class Judgment:
    """A validated judgment, ready to store."""

    choice: str
    strength: int | None
    reasons: list[str]


@dataclass(frozen=True)
class LeasedPair:
    """A Pair leased to a labeler, as the page and the API show it: plain values read with
    the lease (the project is the caller's own instance)."""

    lease_id: int
    pair_id: int
    project: Project
    left: str
    is_repeat: bool
    expires_at: datetime
    messages: list[dict[str, Any]]
    response_a: ShownResponse
    response_b: ShownResponse

    @property
    def shown(self) -> tuple[ShownResponse, ShownResponse]:
        """Both responses in display order: the lease's left side first."""
        if self.left == Side.A:
            return self.response_a, self.response_b
        return self.response_b, self.response_a

    @property
    def prompt_text(self) -> str:
        """The prompt as one string, by the rule of Prompt.text: the last user turn."""
        return messages_text(self.messages)

    @cached_property
    def pair(self) -> Pair:
        """The leased Pair as a model instance, read through the ORM on first use: for callers
        off the hot path (scripts, benchmarks, tests) that pass it to comparison_create or
        read its other columns. The page and the API never touch it."""
        return Pair.objects.select_related("project", "prompt", "response_a", "response_b").get(
            pk=self.pair_id
        )


def _leased_from(lease: Lease, project: Project) -> LeasedPair:
    """A LeasedPair from a Lease the ORM read with its Pair's prompt and responses."""
    pair = lease.pair
    return LeasedPair(
        lease_id=lease.pk,
        pair_id=lease.pair_id,
        project=project,
        left=lease.left,
        is_repeat=lease.is_repeat,
        expires_at=lease.expires_at,
        messages=pair.prompt.messages,
        response_a=ShownResponse(pair.response_a_id, pair.response_a.text),
        response_b=ShownResponse(pair.response_b_id, pair.response_b.text),
    )


@dataclass(frozen=True)
class StoredComparison:
    """A labeler's judgment just stored, as the submission answers it: the values written,
    its id, and what the answer names (the project's slug, the pair's response ids)."""

    id: int
    pair_id: int
    project_id: int
    project_slug: str
    response_a_id: int
    response_b_id: int
    choice: str
    strength: int | None
    reasons: list[str]
    comment: str
    left: str
    time_spent_ms: int | None
    is_repeat: bool
    created_at: datetime

    @classmethod
    def of(cls, comparison: Comparison) -> StoredComparison:
        """The same values from a Comparison the ORM read (its pair and project attached)."""
        return cls(
            id=comparison.pk,
            pair_id=comparison.pair_id,
            project_id=comparison.project_id,
            project_slug=comparison.project.slug,
            response_a_id=comparison.pair.response_a_id,
            response_b_id=comparison.pair.response_b_id,
            choice=comparison.choice,
            strength=comparison.strength,
            reasons=comparison.reasons,
            comment=comparison.comment,
            left=comparison.left,
            time_spent_ms=comparison.time_spent_ms,
            is_repeat=comparison.is_repeat,
            created_at=comparison.created_at,
        )


def pair_lease_next(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random | None = None
) -> LeasedPair | None:
    """Lease the next Pair for this labeler, or None when nothing is left for them;
    LabelerExcluded when staff excluded them from the project.

    A labeler holding an unexpired lease gets the same Pair back, so a reload never skips
    work. The project's selection picks the queue order (annotate/services/selection.py).
    The left/right order is drawn here, per labeler and Pair, and kept on the Lease; `rng`
    makes both draws reproducible.

    The candidate read is one statement walking the `pair_queue` (or `pair_queue_random`)
    partial index in order and stopping at the first fit, whatever the project's size
    (annotate/services/_queue_sql.py); rows a concurrent labeler is leasing are skipped.
    """
    rng = rng or random.Random()
    now = timezone.now()
    with transaction.atomic():
        # A lease is soft state: its commit need not wait for the disk (a judgment's does).
        _queue_sql.commit_without_flush()
        # The exclusion (as labeler_exclusion reads it) and the current lease, in one read.
        start = _queue_sql.lease_start(project_id=project.pk, labeler_id=labeler.pk, now=now)
        if start.excluded:
            raise LabelerExcluded(_exclusion_message(start.excluded_reason))
        if start.current_id is not None:
            current = Lease.objects.select_related(
                "pair__prompt", "pair__response_a", "pair__response_b"
            ).get(pk=start.current_id)
            return _leased_from(current, project)
        check = check_lease(project=project, labeler=labeler, rng=rng, now=now)
        if check is not None:
            return _leased_from(check, project)
        return _queue_lease(project=project, labeler=labeler, rng=rng, now=now)


def _queue_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> LeasedPair | None:
    """Lease the first fit of the ordinary queue, inside pair_lease_next's transaction."""
    random_order = queue_order(project=project, rng=rng) == RANDOM_ORDER
    for _ in range(LEASE_ATTEMPTS):
        candidate = _queue_sql.candidate_next(
            project_id=project.pk,
            labeler_id=labeler.pk,
            redundancy=project.redundancy,
            now=now,
            random_order=random_order,
            judge_sure=judge_sure(project),
        )
        if candidate is None:
            return None
        pair_id, human_count = candidate
        left = rng.choice([Side.A, Side.B])
        expires_at = now + timedelta(minutes=project.lease_minutes)
        leased = _queue_sql.lease_insert_if_free(
            pair_id=pair_id,
            human_count=human_count,
            redundancy=project.redundancy,
            labeler_id=labeler.pk,
            left=left,
            expires_at=expires_at,
            now=now,
        )
        if leased is not None:
            lease_id, content = leased
            return LeasedPair(
                lease_id=lease_id,
                pair_id=pair_id,
                project=project,
                left=left,
                is_repeat=False,
                expires_at=expires_at,
                messages=content.messages,
                response_a=content.response_a,
                response_b=content.response_b,
            )
    return None


def lease_candidate_plan(
    *, project: Project, labeler: AbstractBaseUser, random_order: bool, analyze: bool = False
) -> str:
    """The database's plan for the candidate read of pair_lease_next, for this labeler now
    (tests check that it walks the queue's index; the load benchmark prints it)."""
    return _queue_sql.candidate_plan(
        project_id=project.pk,
        labeler_id=labeler.pk,
        redundancy=project.redundancy,
        now=timezone.now(),
        random_order=random_order,
        analyze=analyze,
        judge_sure=judge_sure(project),
    )


def lease_skip(*, pair: Pair, labeler: AbstractBaseUser) -> None:
    """The labeler passes on this Pair: its slot goes to others at once and the Pair is not
    served to this labeler again (the expired lease stays as the record that it was served)."""
    Lease.objects.filter(pair=pair, labeler=labeler, expires_at__gt=timezone.now()).update(
        expires_at=timezone.now()
    )


def choice_from_preferred(*, pair: Pair | LockedPair, preferred: int | str) -> str:
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
    *,
    project: Project | LockedPair,
    choice: str,
    strength: int | None,
    reasons: Iterable[str],
) -> Judgment:
    """Check a judgment against the project's label scale (a locked Pair carries its
    project's)."""
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
    a Pair past its redundancy. The stored row is read back through the ORM: this is the
    entry for scripts, benchmarks and tests; labelers submit through comparison_submit.
    """
    judgment = judgment_validate(
        project=pair.project, choice=choice, strength=strength, reasons=reasons
    )
    stored = _comparison_store_once(
        pair_id=pair.pk,
        labeler=labeler,
        judge=lambda _pair: judgment,
        comment=comment,
        time_spent_ms=time_spent_ms,
        served_only=False,
    )
    return Comparison.objects.get(pk=stored.id)


def comparison_submit(
    *,
    labeler: AbstractBaseUser,
    pair_id: int,
    preferred: int | str,
    strength: int | None = None,
    reasons: Iterable[str] = (),
    comment: str = "",
    time_spent_ms: int | None = None,
) -> StoredComparison:
    """A labeler's submission through the API: `preferred` is one of the Pair's response ids,
    "tie" or "both_bad". Labelers judge what they were served, never a Pair picked by id: a
    Pair they hold no lease on (and never judged), or on a project they are not on, raises
    PairNotServed. Otherwise the rules of comparison_create, in the same single transaction.
    """

    def judge(pair: LockedPair) -> Judgment:
        return judgment_validate(
            project=pair,
            choice=choice_from_preferred(pair=pair, preferred=preferred),
            strength=strength,
            reasons=reasons,
        )

    return _comparison_store_once(
        pair_id=pair_id,
        labeler=labeler,
        judge=judge,
        comment=comment,
        time_spent_ms=time_spent_ms,
        served_only=True,
    )


def _comparison_store_once(
    *, pair_id: int, labeler: AbstractBaseUser, **kwargs
) -> StoredComparison:
    try:
        stored = _comparison_store(pair_id=pair_id, labeler=labeler, **kwargs)
    except IntegrityError:
        # The unique (pair, labeler) constraint is the last guard behind the row lock.
        existing = (
            Comparison.objects.filter(pair_id=pair_id, labeler=labeler, is_repeat=False)
            .values_list("pk", flat=True)
            .first()
        )
        if existing is None:
            raise
        raise ComparisonExists(existing) from None
    if not stored.is_repeat:
        _project_count_one(project_id=stored.project_id)
    return stored


def _project_count_one(*, project_id: int) -> None:
    """Count a stored Comparison on its project, after the Comparison has committed.

    Every labeler of a project updates the same project row. Inside the judgment's
    transaction its lock was held through the commit's WAL flush, so submissions queued
    behind each other's disk waits: at 32 labelers that was the slowest requests' time
    (PostgreSQL waits on Lock:transactionid and IO:WALSync in bench/labeling_load.py). In a
    transaction of its own that commits without waiting for the flush, the lock lasts
    microseconds. The cost: a crash between the two commits, or within the unflushed
    fraction of a second, leaves the counter short by those submissions; the counter only
    drives displays and the quality recompute cadence, the Comparisons themselves are
    durable."""
    in_callers = transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if not in_callers:  # a caller's transaction keeps its own durability
            _queue_sql.commit_without_flush()
        Project.objects.filter(pk=project_id).update(comparison_count=F("comparison_count") + 1)


@transaction.atomic
def _comparison_store(
    *,
    pair_id: int,
    labeler: AbstractBaseUser,
    judge: Callable[[LockedPair], Judgment],
    comment: str,
    time_spent_ms: int | None,
    served_only: bool,
) -> StoredComparison:
    now = timezone.now()
    locked = _queue_sql.pair_lock(pair_id=pair_id, member_id=labeler.pk if served_only else None)
    if locked is None:
        raise PairNotServed("No such pair.")
    # Read after the lock is held, so it sees every comparison and lease committed before.
    state = _queue_sql.labeler_state(pair_id=pair_id, labeler_id=labeler.pk, now=now)
    if served_only and state["existing"] is None and state["lease_left"] is None:
        raise PairNotServed("No such pair.")
    judgment = judge(locked)
    new = NewComparison(
        pair_id=locked.id,
        project_id=locked.project_id,
        labeler_id=labeler.pk,
        choice=judgment.choice,
        strength=judgment.strength,
        reasons=judgment.reasons,
        comment=comment,
        left=state["lease_left"] or "",
        time_spent_ms=time_spent_ms,
        is_repeat=bool(state["lease_repeat"]),
        # Every labeler may judge a gold Pair once: it checks them, it takes no slot.
        is_gold_check=bool(locked.gold) and not state["lease_repeat"],
        random_key=new_random_key(),
        created_at=now,
    )
    if new.is_repeat:
        return _stored(_repeat_store(new), new, locked)
    if state["existing"] is not None:
        raise ComparisonExists(state["existing"])
    pair_counts = None
    if not new.is_gold_check:
        if state["lease_live"]:
            # A live lease reserved this labeler's slot.
            taken = locked.human_count
        else:
            # Without a live lease, others' live leases hold their slots first.
            taken = locked.human_count + state["others_live"]
        if not locked.is_open or taken >= locked.redundancy:
            raise PairFull("This pair already has all the judgments it needs.")
        human_count = locked.human_count + 1
        pair_counts = (human_count, human_count < locked.redundancy)
    comparison_id = _queue_sql.judgment_write(
        new=new, pair_counts=pair_counts, had_lease=state["lease_left"] is not None
    )
    return _stored(comparison_id, new, locked)


def _repeat_store(new: NewComparison) -> int:
    """A swapped repeat: stored for self-consistency only, outside every count; its id."""
    existing = (
        Comparison.objects.filter(pair_id=new.pair_id, labeler_id=new.labeler_id, is_repeat=True)
        .values_list("pk", flat=True)
        .first()
    )
    if existing is not None:
        raise ComparisonExists(existing)
    comparison_id = _queue_sql.comparison_insert(new)
    Lease.objects.filter(pair_id=new.pair_id, labeler_id=new.labeler_id).delete()
    return comparison_id


def _stored(comparison_id: int, new: NewComparison, locked: LockedPair) -> StoredComparison:
    return StoredComparison(
        id=comparison_id,
        pair_id=new.pair_id,
        project_id=new.project_id,
        project_slug=locked.project_slug,
        response_a_id=locked.response_a_id,
        response_b_id=locked.response_b_id,
        choice=new.choice,
        strength=new.strength,
        reasons=new.reasons,
        comment=new.comment,
        left=new.left,
        time_spent_ms=new.time_spent_ms,
        is_repeat=new.is_repeat,
        created_at=new.created_at,
    )
