"""The rounds of a project's policy loop as the training page, the API and rewardtrain.client
read them: per generation job, the policy model, pairs generated and labeled, the active
reward model's mean reward of the round's samples, and how often labelers agreed with it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from annotate.exporters import ExportContext, get_format
from annotate.models import Comparison, GeneratedSample, GenerationJob, Pair, Project
from annotate.selectors.dataset import preference_rows
from rewardtrain.models import RoundScore
from rewardtrain.selectors.runs import version_active

ROUND_FORMATS = ("trl", "trl-conversational", "hh", "openai")


def round_pairs(*, job: GenerationJob) -> QuerySet[Pair]:
    """The pairs a round made: those with a response one of its samples wrote."""
    written = GeneratedSample.objects.filter(job=job).values("response_id")
    return Pair.objects.filter(project_id=job.project_id).filter(
        Q(response_a_id__in=written) | Q(response_b_id__in=written)
    )


def _human(choice: str) -> Count:
    return Count(
        "comparisons",
        filter=Q(
            comparisons__source=Comparison.Source.HUMAN,
            comparisons__is_repeat=False,
            comparisons__choice=choice,
        ),
    )


def round_figures(
    *, job: GenerationJob, version_id: int | None, scores: dict[int, float | None] | None = None
) -> dict[str, Any]:
    """One round's figures. `agreement` is the share of the round's labeled pairs with a human
    majority for A or B (ties of votes, ties and "both bad" left out) on which the reward
    model's view when it last scored the pair (Pair.model_p_a) picks the same side."""
    pairs = round_pairs(job=job)
    labeled = pairs.filter(
        Exists(
            Comparison.objects.filter(
                pair=OuterRef("pk"), source=Comparison.Source.HUMAN, is_repeat=False
            )
        )
    )
    votes = labeled.filter(model_p_a__isnull=False).annotate(a=_human("a"), b=_human("b"))
    agreed = decided = 0
    for p_a, a, b in votes.values_list("model_p_a", "a", "b"):
        if a == b or p_a == 0.5:
            continue
        decided += 1
        agreed += (p_a > 0.5) == (a > b)
    if scores is None:  # one round asked for: its own lookup
        scores = _mean_rewards([job.pk], version_id)
    return {
        "id": job.pk,
        "status": job.status,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "policy": sorted({g.model for g in job.generators.all()}),
        "samples": job.done,
        "pairs": pairs.count(),
        "labeled": labeled.count(),
        "mean_reward": scores.get(job.pk),
        "agreement": agreed / decided if decided else None,
        "agreement_pairs": decided,
    }


def round_rows(*, project: Project, limit: int = 50) -> list[dict[str, Any]]:
    """The project's last `limit` rounds, oldest first, figured with the active model."""
    version = version_active(project=project)
    jobs = list(
        GenerationJob.objects.filter(project=project)
        .prefetch_related("generators")
        .order_by("-created_at", "-pk")[:limit]
    )
    version_id = version.pk if version else None
    scores = _mean_rewards([job.pk for job in jobs], version_id)
    return [round_figures(job=job, version_id=version_id, scores=scores) for job in reversed(jobs)]


def _mean_rewards(job_ids: list[int], version_id: int | None) -> dict[int, float | None]:
    """The version's mean reward of each of these rounds it has scored, in one query."""
    if version_id is None:
        return {}
    return dict(
        RoundScore.objects.filter(job_id__in=job_ids, model_version_id=version_id).values_list(
            "job_id", "mean_reward"
        )
    )


def round_records(*, job: GenerationJob, format_name: str = "trl") -> Iterator[dict[str, Any]]:
    """The round's labeled pairs as dataset records of `format_name` (trl,
    trl-conversational, hh, openai): the same rows, aggregation and splits as the project's
    export, kept to the pairs this round made."""
    project = job.project
    if format_name not in ROUND_FORMATS:
        raise ValueError(f"A round exports as {', '.join(ROUND_FORMATS)}, not {format_name!r}.")
    fmt = get_format(format_name)
    ids = set(round_pairs(job=job).values_list("id", flat=True))
    ctx = ExportContext(strength_labels=project.strength_scale)
    for row in preference_rows(project):
        if row["pair_id"] in ids:
            yield fmt.record(row, ctx)
