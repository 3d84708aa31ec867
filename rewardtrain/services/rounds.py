"""Rounds of the policy loop: one generation job from the policy's endpoints, its labeling and
the retraining it triggers. The active reward model's mean reward of each round's samples is
stored (RoundScore) when the model changes or a round's samples arrive, so that the training
page reads it instead of scoring on a page load."""

from __future__ import annotations

from annotate.models import GeneratedSample, GenerationJob, Project
from rewardtrain.models import RoundScore
from rewardtrain.selectors.runs import version_active
from rewardtrain.services.versions import scorer_for

# Samples scored per call of the scorer: bounded memory for a round of any size.
SCORE_CHUNK = 256


def round_scores_update(*, project: Project, device: str = "") -> int:
    """Score, with the active model, every finished round of the project it has not scored
    yet; how many rounds were scored (0 without an active model). A round still running is
    left for the next call: its mean would move."""
    version = version_active(project=project)
    if version is None:
        return 0
    finished = (GenerationJob.Status.SUCCEEDED, GenerationJob.Status.CANCELLED)
    jobs = (
        GenerationJob.objects.filter(project=project, status__in=finished)
        .exclude(round_scores__model_version=version)
        .order_by("pk")
    )
    scorer = None
    scored = 0
    for job in jobs:
        samples = (
            GeneratedSample.objects.filter(job=job)
            .select_related("prompt", "response")
            .only("id", "prompt__messages", "response__text")
            .order_by("id")
        )
        total, count, last_id = 0.0, 0, 0
        while chunk := list(samples.filter(id__gt=last_id)[:SCORE_CHUNK]):
            last_id = chunk[-1].id
            scorer = scorer or scorer_for(version=version, device=device)
            rewards = scorer.score(
                [s.prompt.messages for s in chunk], [s.response.text for s in chunk]
            )
            total += float(sum(rewards))
            count += len(chunk)
        RoundScore.objects.update_or_create(
            model_version=version,
            job=job,
            defaults={"samples": count, "mean_reward": total / count if count else None},
        )
        scored += 1
    return scored
