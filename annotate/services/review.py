"""Staff review writes: adjudicate a Pair, mark it ambiguous, exclude or include a labeler.

Nothing here deletes a Comparison (a settled pair leaves the stored review queue at once): an adjudication is one more Comparison (source
adjudication) that the dataset rule puts in place of the votes; exclusion is a flag on the
Membership that the dataset rule reads.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.http import Http404

from annotate.models import Choice, Comparison, Membership, Pair, Project, ReviewItem
from annotate.services.projects import memberships_set_excluded


def _require_staff(user: AbstractBaseUser) -> None:
    if not user.is_staff:
        raise PermissionDenied("Only staff can review pairs and labelers.")


@transaction.atomic
def pair_adjudicate(
    *, pair: Pair, staff: AbstractBaseUser, choice: str, strength: int | None = None
) -> Comparison:
    """Record a staff member's judgment as the Pair's adjudicated label.

    The label replaces the votes in training and export (see annotate/selectors/dataset.py),
    the Pair leaves the labeling queue, and a Pair marked ambiguous is taken back: resolving
    it is the opposite decision. A staff member adjudicating the same Pair again changes their
    adjudication in place. Returns the adjudication Comparison.
    """
    _require_staff(staff)
    if choice not in Choice.values:
        raise ValidationError(f"Unknown choice {choice!r}; expected one of {Choice.values}.")
    levels = len(pair.project.strength_scale)
    if strength is not None and not 1 <= strength <= levels:
        raise ValidationError(f"Strength must be between 1 and {levels}.")
    if choice in (Choice.TIE, Choice.BOTH_BAD):
        strength = None
    locked = Pair.objects.select_for_update().get(pk=pair.pk)
    own = Comparison.objects.filter(pair=locked, labeler=staff, is_repeat=False).first()
    if own is not None and own.source != Comparison.Source.ADJUDICATION:
        # One non-repeat comparison per (pair, labeler) is a database rule; a labeler's own
        # vote must not be silently turned into a ruling on it.
        raise ValidationError(
            "You judged this pair as a labeler; another staff member must adjudicate it."
        )
    if own is not None:
        own.choice, own.strength = choice, strength
        own.save(update_fields=["choice", "strength"])
        comparison = own
    else:
        comparison = Comparison.objects.create(
            pair=locked,
            project_id=locked.project_id,
            labeler=staff,
            source=Comparison.Source.ADJUDICATION,
            choice=choice,
            strength=strength,
        )
        Project.objects.filter(pk=locked.project_id).update(
            comparison_count=F("comparison_count") + 1
        )
    locked.ambiguous = False
    locked.is_open = False
    locked.save(update_fields=["ambiguous", "is_open"])
    # Settled: out of the stored review queue now, not at the next computation.
    ReviewItem.objects.filter(pair=locked).delete()
    pair.ambiguous, pair.is_open = False, False
    return comparison


@transaction.atomic
def pair_mark_ambiguous(*, pair: Pair, staff: AbstractBaseUser) -> Pair:
    """Leave a Pair out of training and export (its comparisons stay stored) and stop serving
    it. Adjudicating it later takes it back."""
    _require_staff(staff)
    Pair.objects.filter(pk=pair.pk).update(ambiguous=True, is_open=False)
    ReviewItem.objects.filter(pair=pair).delete()
    pair.ambiguous, pair.is_open = True, False
    return pair


def membership_exclude(*, project: Project, user: AbstractBaseUser, reason: str = "") -> Membership:
    """Exclude a labeler: their comparisons stay stored and visible on the quality page but
    leave training and export by default. Reversible with membership_include."""
    membership = _membership(project=project, user=user)
    memberships_set_excluded(memberships=[membership], excluded=True, reason=reason)
    membership.refresh_from_db()
    return membership


def membership_include(*, project: Project, user: AbstractBaseUser) -> Membership:
    """Take an excluded labeler back: their comparisons count again."""
    membership = _membership(project=project, user=user)
    memberships_set_excluded(memberships=[membership], excluded=False)
    membership.refresh_from_db()
    return membership


def _membership(*, project: Project, user: AbstractBaseUser) -> Membership:
    """The user's membership of the project; 404 for anyone else. Exclusion is a flag on a
    membership: creating one here would give an outsider access to the project."""
    found = Membership.objects.filter(project=project, user=user).first()
    if found is None:
        raise Http404(f"{user} is not a member of this project.")
    return found
