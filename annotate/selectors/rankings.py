"""Reads of rankings and ratings: a project's aspects, the permission-checked fetch of a
ResponseSet for a labeler, and every stored Ranking and Rating of a project as plain data
(what quality, training and export read; the boundary is data, as for pairs).

A Ranking's `groups` are lists of response ids, best first, each list a tie; a Rating is one
(response, aspect, value). Both are raw and per labeler: repeats, gold checks, imported rows
and excluded labelers' rows are all returned, flagged, for the reader to keep or drop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Q
from django.http import Http404

from annotate.models import (
    Membership,
    Project,
    Ranking,
    Rating,
    Response,
    ResponseSet,
    SetLease,
    TaskKind,
)

# Rows read per database round trip while streaming a project's judgments.
CHUNK = 2000


@dataclass(frozen=True)
class Aspect:
    """One rating aspect of a project: an integer scale from `min` to `max`."""

    name: str
    description: str
    min: int
    max: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "min": self.min,
            "max": self.max,
        }


def project_aspects(project: Project) -> list[Aspect]:
    """The project's rating aspects, in the order the page shows them."""
    return [
        Aspect(
            name=str(a["name"]),
            description=str(a.get("description", "")),
            min=int(a["min"]),
            max=int(a["max"]),
        )
        for a in project.aspects or []
    ]


def response_set_get_for_labeler(*, labeler: AbstractBaseUser, set_id: int) -> ResponseSet:
    """A ResponseSet the labeler was served (leased) or has judged, on a project they are on;
    else 404. Labelers judge what they were served, never a set picked by id."""
    leased = SetLease.objects.filter(response_set=OuterRef("pk"), labeler=labeler)
    ranked = Ranking.objects.filter(response_set=OuterRef("pk"), labeler=labeler)
    rated = Rating.objects.filter(response_set=OuterRef("pk"), labeler=labeler)
    found = (
        ResponseSet.objects.select_related("project")
        .filter(pk=set_id, project__memberships__user=labeler)
        .filter(Exists(leased) | Exists(ranked) | Exists(rated))
        .first()
    )
    if found is None:
        raise Http404("No such response set.")
    return found


def judged_by(labeler: AbstractBaseUser, *, repeat: bool = False) -> Q:
    """Sets the labeler ranked or rated (their first judgment, or with repeat=True, their
    repeat)."""
    ranked = Ranking.objects.filter(response_set=OuterRef("pk"), labeler=labeler, is_repeat=repeat)
    rated = Rating.objects.filter(response_set=OuterRef("pk"), labeler=labeler, is_repeat=repeat)
    return Q(Exists(ranked)) | Q(Exists(rated))


@dataclass(frozen=True)
class StoredRanking:
    """One stored ranking with what a reader needs beside it: the prompt's conversation and
    every response's text (`responses`: id to text, for the ids in `groups`)."""

    id: int
    set_id: int
    prompt_id: int
    messages: list[dict[str, Any]]
    responses: dict[int, str]
    groups: list[list[int]]
    all_bad: bool
    shown: list[int]
    labeler_id: int | None
    labeler: str
    source: str
    excluded: bool
    is_repeat: bool
    is_gold_check: bool
    time_spent_ms: int | None
    created_at: datetime

    @property
    def ordered_texts(self) -> list[list[str]]:
        """`groups` with each id replaced by its response's text."""
        return [[self.responses[i] for i in group] for group in self.groups]


@dataclass(frozen=True)
class StoredRating:
    """One stored rating: a response's value on one aspect, with its prompt and text."""

    id: int
    set_id: int
    prompt_id: int
    messages: list[dict[str, Any]]
    response_id: int
    response_text: str
    aspect: str
    value: int
    position: int | None
    labeler_id: int | None
    labeler: str
    source: str
    excluded: bool
    is_repeat: bool
    is_gold_check: bool
    created_at: datetime


def _excluded_ids(project: Project) -> set[int]:
    return set(
        Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    )


def rankings_of_project(*, project: Project) -> Iterator[StoredRanking]:
    """Every Ranking of the project, oldest first, streamed in chunks: each with its prompt's
    messages and its responses' texts. Raw: filter on is_repeat, is_gold_check, source and
    excluded as the use asks (training takes `not is_repeat and not excluded`)."""
    excluded = _excluded_ids(project)
    rows = (
        Ranking.objects.filter(project=project)
        .select_related("response_set__prompt", "labeler")
        .order_by("id")
    )
    for chunk in _chunks(rows):
        texts = _texts(r.response_set.response_ids for r in chunk)
        for r in chunk:
            response_set = r.response_set
            yield StoredRanking(
                id=r.pk,
                set_id=r.response_set_id,
                prompt_id=response_set.prompt_id,
                messages=response_set.prompt.messages,
                responses={i: texts[i] for i in response_set.response_ids},
                groups=[list(group) for group in r.groups],
                all_bad=r.all_bad,
                shown=list(r.shown),
                labeler_id=r.labeler_id,
                labeler=r.labeler.get_username() if r.labeler else "",
                source=r.source,
                excluded=r.labeler_id in excluded,
                is_repeat=r.is_repeat,
                is_gold_check=r.is_gold_check,
                time_spent_ms=r.time_spent_ms,
                created_at=r.created_at,
            )


def ratings_of_project(*, project: Project) -> Iterator[StoredRating]:
    """Every Rating of the project, oldest first (one row per response, aspect and labeler),
    streamed in chunks, each with its prompt's messages and its response's text. Raw, as
    rankings_of_project."""
    excluded = _excluded_ids(project)
    rows = (
        Rating.objects.filter(project=project)
        .select_related("response_set__prompt", "response", "labeler")
        .order_by("id")
    )
    for chunk in _chunks(rows):
        for r in chunk:
            yield StoredRating(
                id=r.pk,
                set_id=r.response_set_id,
                prompt_id=r.response_set.prompt_id,
                messages=r.response_set.prompt.messages,
                response_id=r.response_id,
                response_text=r.response.text,
                aspect=r.aspect,
                value=r.value,
                position=r.position,
                labeler_id=r.labeler_id,
                labeler=r.labeler.get_username() if r.labeler else "",
                source=r.source,
                excluded=r.labeler_id in excluded,
                is_repeat=r.is_repeat,
                is_gold_check=r.is_gold_check,
                created_at=r.created_at,
            )


def _chunks(rows) -> Iterator[list]:
    """Keyset pages of an id-ordered queryset: memory stays flat however many rows."""
    last = 0
    while True:
        chunk = list(rows.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def _texts(id_lists: Iterator[list[int]]) -> dict[int, str]:
    ids = {i for ids in id_lists for i in ids}
    return dict(Response.objects.filter(pk__in=ids).values_list("pk", "text"))


def response_sets_count(*, project: Project) -> dict[str, int]:
    """The project's sets: in all, still open, and gold."""
    sets = ResponseSet.objects.filter(project=project)
    return {
        "sets": sets.count(),
        "open": sets.filter(is_open=True).count(),
        "gold": sets.filter(is_gold=True).count(),
    }


def project_has_sets(*, project: Project) -> bool:
    """Whether the project deals in sets: its task ranks or rates, or it holds imported ones
    (rankings and ratings import into a pairwise project too)."""
    if project.task_kind != TaskKind.PAIRWISE:
        return True
    return ResponseSet.objects.filter(project=project).exists()
