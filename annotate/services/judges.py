"""AI judges (a project's model endpoints that judge its pairs as a labeler would) and judging
jobs: adding a judge with its own labeler account, asking it to read pairs, cancelling and
resuming. The job itself runs in annotate/services/judging_run.py, on a worker's `generation`
queue or in the foreground (`manage.py judge_pairs`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet

from annotate.errors import ApplicationError
from annotate.generation.client import Endpoint
from annotate.judging.rubric import (
    RubricInvalid,
    allowed_verdicts,
    default_rubric,
    rubric_check,
)
from annotate.models import Comparison, Judge, JudgeVerdict, JudgingJob, Membership, Pair, Project
from annotate.services.endpoints import endpoint_problem
from annotate.services.generation import JOB_MAX_SECONDS
from annotate.services.jobs import job_cancel, job_publish_on_commit, job_resume

JUDGING_JOB_TASK = "annotate.judging_job_run"
JUDGING_JOB_MAX_SECONDS = JOB_MAX_SECONDS
JUDGE_FIELDS = (
    *("base_url", "model", "api_key_env", "temperature", "top_p", "max_tokens", "seed"),
    *("rubric", "concurrency"),
)
# A judge's account is `judge:<project slug>:<name>`. Django's username validator refuses ":",
# so no person's account (made by a form, the admin or createsuperuser) can pass for a judge:
# the templates mark these as AI judges by their name alone (annotate/templatetags/judges.py).
JUDGE_USERNAME_PREFIX = "judge:"
USERNAME_MAX = 150  # Django's User.username
# Alternatives asked for per reply token: P(verdict) from logprobs (OpenAI allows up to 20).
TOP_LOGPROBS = 5


class JudgingInvalid(ApplicationError):
    """A judge or a judging job that cannot be made as asked; the message says what is
    wrong."""

    status = HTTPStatus.BAD_REQUEST
    code = "judging_invalid"


class JudgingConflict(ApplicationError):
    """A job asked to do what its status does not allow (cancel an ended job, resume a
    running one)."""

    status = HTTPStatus.CONFLICT
    code = "judging_conflict"


def judge_username(*, project: Project, name: str) -> str:
    username = f"{JUDGE_USERNAME_PREFIX}{project.slug}:{name}"
    if len(username) > USERNAME_MAX:  # a long slug and a long name: the project's id instead
        username = f"{JUDGE_USERNAME_PREFIX}{project.pk}:{name}"
    return username


def is_judge_username(username: str) -> bool:
    return username.startswith(JUDGE_USERNAME_PREFIX)


@transaction.atomic
def judge_add(*, project: Project, name: str, **values: Any) -> Judge:
    """A new judge of the project and its labeler account: a member of the project that
    cannot sign in (no usable password), listed as an AI judge wherever labelers are.
    JudgingInvalid names each bad value (a name the project already has, a URL that is not
    one, a rubric without its placeholders, a concurrency under 1)."""
    unknown = set(values) - set(JUDGE_FIELDS)
    if unknown:
        raise JudgingInvalid(f"unknown judge settings: {', '.join(sorted(unknown))}")
    for key in ("rubric", "api_key_env"):  # text settings left out are blank, not null
        if values.get(key) is None:
            values.pop(key, None)
    judge = Judge(project=project, name=name, **values)
    judge_check(judge)
    if Judge.objects.filter(project=project, name=name).exists():
        raise JudgingInvalid(f"the project already has a judge named {name!r}")
    User = get_user_model()
    username = judge_username(project=project, name=name)
    if User.objects.filter(username=username).exists():
        # A judge of this name was deleted; its account keeps its comparisons, which must not
        # become another model's.
        raise JudgingInvalid(
            f"the account {username} of an earlier judge named {name!r} holds its "
            "comparisons; choose another name"
        )
    user = User(username=username, first_name="AI judge", last_name=name[:150])
    user.set_unusable_password()
    user.save()
    Membership.objects.get_or_create(project=project, user=user)
    judge.user = user
    try:
        with transaction.atomic():
            judge.save()
    except IntegrityError as exc:
        raise JudgingInvalid(f"the project already has a judge named {name!r}") from exc
    return judge


def judge_check(judge: Judge) -> None:
    """The checks a judge's settings pass before it is saved (the service's and the admin's)."""
    problem = endpoint_problem(judge, exclude=("user", "project"))
    if problem:
        raise JudgingInvalid(problem)
    try:
        rubric_check(judge.rubric)
    except RubricInvalid as exc:
        raise JudgingInvalid(str(exc)) from exc


def project_verdicts(project: Project) -> tuple[str, ...]:
    """The verdicts the project's judges may give (its labelers' choices)."""
    return allowed_verdicts(allow_tie=project.allow_tie, allow_both_bad=project.allow_both_bad)


def judge_rubric(judge: Judge) -> str:
    """The rubric the judge reads: its own, or the project's default."""
    project = judge.project
    return judge.rubric.strip() and judge.rubric or project_default_rubric(project)


def project_default_rubric(project: Project) -> str:
    return default_rubric(instructions=project.instructions, allowed=project_verdicts(project))


def judge_endpoint(judge: Judge) -> Endpoint:
    """The plain description the client takes (no model instance crosses into its threads);
    logprobs asked for, for the verdict's probability."""
    return Endpoint(
        name=judge.name,
        base_url=judge.base_url,
        model=judge.model,
        api_key_env=judge.api_key_env,
        temperature=judge.temperature,
        top_p=judge.top_p,
        max_tokens=judge.max_tokens,
        seed=judge.seed,
        kind="judge",
        top_logprobs=TOP_LOGPROBS,
    )


def judge_named(*, project: Project, name: str) -> Judge:
    judge = Judge.objects.filter(project=project, name=name.strip()).select_related("user").first()
    if judge is None:
        known = ", ".join(project.judges.order_by("name").values_list("name", flat=True))
        raise JudgingInvalid(f"no judge named {name} in {project.slug} (it has: {known or 'none'})")
    return judge


def pairs_to_judge(
    *, judge: Judge, open_only: bool, exclude: set[int] = frozenset()
) -> QuerySet[Pair]:
    """The project's pairs the judge has still to read, in the order labelers are served
    (highest priority first). Pairs it already has a comparison for, or has read in both
    orders, are done; pairs staff marked ambiguous (left out of training) are not worth an
    endpoint's time."""
    judged = Comparison.objects.filter(labeler=judge.user, is_repeat=False).values("pair_id")
    read_both = (
        JudgeVerdict.objects.filter(judge=judge)
        .values("pair_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .values("pair_id")
    )
    pairs = (
        Pair.objects.filter(project=judge.project, ambiguous=False)
        .exclude(pk__in=judged)
        .exclude(pk__in=read_both)
        .exclude(pk__in=exclude)
    )
    if open_only:
        pairs = pairs.filter(is_open=True)
    return pairs.order_by("-priority", "pk")


def judging_job_create(
    *,
    project: Project,
    judge: str,
    limit: int | None = None,
    open_only: bool = False,
    user: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> JudgingJob:
    """A job for the named judge to read the project's pairs it has not read yet (at most
    `limit`; only those still open to people with `open_only`), each in both orders. With
    `enqueue`, its task is published on commit (a worker on the `generation` queue runs it);
    without, the caller runs judging_job_execute itself."""
    if limit is not None and limit < 1:
        raise JudgingInvalid(f"limit must be at least 1, not {limit}")
    found = judge_named(project=project, name=judge)
    with transaction.atomic():
        left = pairs_to_judge(judge=found, open_only=open_only).count()
        job = JudgingJob.objects.create(
            project=project,
            judge=found,
            created_by=user if getattr(user, "pk", None) else None,
            limit=limit,
            open_only=open_only,
            total=min(left, limit) if limit is not None else left,
        )
        if enqueue:
            job_publish_on_commit(job=job, task=JUDGING_JOB_TASK)
    return job


def judging_job_cancel(*, job: JudgingJob) -> JudgingJob:
    """Ask the job to stop (services/jobs.py): every reading already in is kept."""
    return job_cancel(job=job, conflict=JudgingConflict)


def judging_job_resume(*, job: JudgingJob, enqueue: bool = True) -> JudgingJob:
    """Queue a cancelled or failed job again: it reads only what is still unread."""
    return job_resume(job=job, task=JUDGING_JOB_TASK, conflict=JudgingConflict, enqueue=enqueue)
