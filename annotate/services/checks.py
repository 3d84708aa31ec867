"""Quality checks served inside the ordinary labeling queue: gold pairs and swapped repeats.

At the project's `gold_rate` a labeler is served a gold Pair (one with a known answer) that
they have not seen; at its `repeat_rate`, a Pair they judged earlier, with the sides swapped.
Neither is marked as such in the page or the API: the Lease and the Comparison record it.
Gold checks never count toward a Pair's redundancy; repeats never count anywhere but in
self-consistency.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef

from annotate.models import Comparison, Lease, Pair, Project, Side

# A repeat is drawn from the labeler's judgments older than their most recent few, so that
# the repeat comes "later" and is not recognised from short-term memory.
REPEAT_MIN_DISTANCE = 5


def _lease(
    *, pair: Pair, labeler: AbstractBaseUser, left: str, now: datetime, is_repeat: bool
) -> Lease:
    lease = Lease.objects.create(
        pair=pair,
        labeler=labeler,
        left=left,
        is_repeat=is_repeat,
        expires_at=now + timedelta(minutes=pair.project.lease_minutes),
    )
    lease.pair = pair
    return lease


def gold_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> Lease | None:
    """A gold Pair this labeler has neither judged nor been served, in random order."""
    judged = Comparison.objects.filter(pair=OuterRef("pk"), labeler=labeler, is_repeat=False)
    served = Lease.objects.filter(pair=OuterRef("pk"), labeler=labeler)
    pair = (
        Pair.objects.filter(project=project)
        .exclude(gold="")
        .filter(~Exists(judged), ~Exists(served))
        .select_related("project", "prompt", "response_a", "response_b")
        .order_by("random_key", "id")
        .first()
    )
    if pair is None:
        return None
    return _lease(
        pair=pair, labeler=labeler, left=rng.choice([Side.A, Side.B]), now=now, is_repeat=False
    )


def repeat_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> Lease | None:
    """A Pair the labeler judged earlier (not among their latest few, not repeated before),
    drawn at random, served again with the response they saw on the left now on the right.

    The draw is a probe of the `comparison_repeat_probe` index: the first eligible judgment
    at or after a random key, else (wrapping around) the first one before it. Each read walks
    the labeler's judgments in key order and stops at the first fit, so its cost does not grow
    with how many they have made (sorting them all cost 56-83 ms a lease at 1M comparisons).
    """
    mine = Comparison.objects.filter(
        project=project, labeler=labeler, source=Comparison.Source.HUMAN, is_repeat=False
    )
    recent = list(
        mine.order_by("-created_at", "-id").values_list("id", flat=True)[:REPEAT_MIN_DISTANCE]
    )
    repeated = Comparison.objects.filter(pair=OuterRef("pair_id"), labeler=labeler, is_repeat=True)
    leased = Lease.objects.filter(pair=OuterRef("pair_id"), labeler=labeler)
    # Only the judgment's pair and side: with the pair's texts joined in as well, planning the
    # statement (six tables) cost more than running it.
    eligible = (
        mine.exclude(id__in=recent)
        .filter(pair__gold="")
        .filter(~Exists(repeated), ~Exists(leased))
        .order_by("random_key", "id")
        .values_list("pair_id", "left")
    )
    start = rng.random()
    original = (
        eligible.filter(random_key__gte=start).first()
        or eligible.filter(random_key__lt=start).first()
    )
    if original is None:
        return None
    pair_id, seen_left = original
    if seen_left:
        left = Side.B if seen_left == Side.A else Side.A
    else:
        left = rng.choice([Side.A, Side.B])
    pair = Pair.objects.select_related("project", "prompt", "response_a", "response_b").get(
        pk=pair_id
    )
    return _lease(pair=pair, labeler=labeler, left=left, now=now, is_repeat=True)


def check_lease(
    *, project: Project, labeler: AbstractBaseUser, rng: random.Random, now: datetime
) -> Lease | None:
    """At the project's rates, a gold or repeat lease; None means serve the ordinary queue."""
    if project.gold_rate <= 0 and project.repeat_rate <= 0:
        return None
    draw = rng.random()
    if draw < project.gold_rate:
        return gold_lease(project=project, labeler=labeler, rng=rng, now=now)
    if draw < project.gold_rate + project.repeat_rate:
        return repeat_lease(project=project, labeler=labeler, rng=rng, now=now)
    return None
