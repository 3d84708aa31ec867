"""Generators (a project's model endpoints) and generation jobs: adding and testing an endpoint,
asking for responses (from a prompts file or the project's own prompts), cancelling and resuming.
The job itself runs in annotate/services/generation_run.py, on a worker's `generation` queue or
in the foreground (`manage.py generate_responses`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from annotate.errors import ApplicationError
from annotate.generation.client import Completion, Endpoint, RetryPolicy, chat_complete
from annotate.importers.base import RowInvalid, prompt_messages
from annotate.models import GenerationJob, Generator, Project
from annotate.services.catalog import prompt_get_or_create
from annotate.services.endpoints import endpoint_problem

# ENDED is read from here by the job runners (generation_run.py, judging_run.py).
from annotate.services.jobs import ENDED as ENDED
from annotate.services.jobs import job_cancel, job_publish_on_commit, job_resume

GENERATION_JOB_TASK = "annotate.generation_job_run"
# The task's time limit (the broker's visibility timeout is above it, config/settings.py).
JOB_MAX_SECONDS = 6 * 3600
MAX_SAMPLES = 16  # per (prompt, generator) and job: more is a mistake, not a need
GENERATOR_FIELDS = (
    *("base_url", "model", "api_key_env", "temperature", "top_p", "max_tokens", "seed"),
    *("system_prompt", "concurrency"),
)


class GenerationInvalid(ApplicationError):
    """A generator or a job that cannot be made as asked; the message says what is wrong."""

    status = HTTPStatus.BAD_REQUEST
    code = "generation_invalid"


class GenerationConflict(ApplicationError):
    """A job asked to do what its status does not allow (cancel an ended job, resume a running
    one)."""

    status = HTTPStatus.CONFLICT
    code = "generation_conflict"


def generator_create(*, project: Project, name: str, **values: Any) -> Generator:
    """A new generator of the project; GenerationInvalid names each bad value (a name the
    project already has, a URL that is not one, a concurrency under 1)."""
    unknown = set(values) - set(GENERATOR_FIELDS)
    if unknown:
        raise GenerationInvalid(f"unknown generator settings: {', '.join(sorted(unknown))}")
    generator = Generator(project=project, name=name, **values)
    return _generator_save(generator)


def generator_update(*, generator: Generator, **values: Any) -> Generator:
    for key, value in values.items():
        if key not in (*GENERATOR_FIELDS, "name"):
            raise GenerationInvalid(f"unknown generator setting: {key}")
        setattr(generator, key, value)
    return _generator_save(generator)


def _generator_save(generator: Generator) -> Generator:
    problem = endpoint_problem(generator)
    if problem:
        raise GenerationInvalid(problem)
    try:
        with transaction.atomic():
            generator.save()
    except IntegrityError as exc:
        raise GenerationInvalid(
            f"the project already has a generator named {generator.name!r}"
        ) from exc
    return generator


def generator_endpoint(generator: Generator) -> Endpoint:
    """The plain description the client takes (no model instance crosses into its threads)."""
    return Endpoint(
        name=generator.name,
        base_url=generator.base_url,
        model=generator.model,
        api_key_env=generator.api_key_env,
        temperature=generator.temperature,
        top_p=generator.top_p,
        max_tokens=generator.max_tokens,
        seed=generator.seed,
        system_prompt=generator.system_prompt,
    )


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        timeout_s=settings.GENERATION_TIMEOUT_SECONDS, max_retries=settings.GENERATION_MAX_RETRIES
    )


def generator_test(*, generator: Generator, text: str = "Say hello in one sentence.") -> Completion:
    """One request, retried once at most (staff wait for the answer): the reply, or the
    EndpointError that says why not. Nothing is stored."""
    policy = RetryPolicy(timeout_s=min(settings.GENERATION_TIMEOUT_SECONDS, 60), max_retries=1)
    messages = [{"role": "user", "content": text}]
    return chat_complete(
        generator_endpoint(generator), messages, seed=generator.seed, policy=policy
    )


def prompts_read(
    lines: Iterable[str], *, source: str = "the prompts"
) -> list[list[dict[str, str]]]:
    """The prompts of a JSON Lines text, each line `{"prompt": text or [{role, content}, ...]}`;
    blank lines are skipped. GenerationInvalid names every bad line (up to 20) at once."""
    values, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {number}: not JSON ({exc})")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        values.append((f"line {number}", row.get("prompt")))
    return _prompts(values, problems, source)


def prompts_from_values(
    values: list[Any], *, source: str = "prompts"
) -> list[list[dict[str, str]]]:
    """Prompts given as a list (the API's), each text or [{role, content}, ...]."""
    return _prompts([(f"item {i}", v) for i, v in enumerate(values, start=1)], [], source)


def _prompts(
    values: list[tuple[str, Any]], problems: list[str], source: str
) -> list[list[dict[str, str]]]:
    prompts = []
    for where, value in values:
        try:
            prompts.append(prompt_messages(value))
        except RowInvalid as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise GenerationInvalid(f"{source}: {'; '.join(problems[:20])}{more}")
    if not prompts:
        raise GenerationInvalid(f"{source}: no prompt")
    return prompts


def prompts_file_read(path: str | Path) -> list[list[dict[str, str]]]:
    try:
        with open(path, encoding="utf-8") as lines:
            return prompts_read(lines, source=str(path))
    except OSError as exc:
        raise GenerationInvalid(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise GenerationInvalid(f"{path} is not UTF-8 text: {exc}") from exc


def generators_named(*, project: Project, names: list[str]) -> list[Generator]:
    """The project's generators with these names, in this order; GenerationInvalid names the
    ones it lacks."""
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise GenerationInvalid("name at least one generator")
    found = {g.name: g for g in Generator.objects.filter(project=project, name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        known = ", ".join(project.generators.order_by("name").values_list("name", flat=True))
        raise GenerationInvalid(
            f"no generator named {', '.join(missing)} in {project.slug} (it has: {known or 'none'})"
        )
    return [found[n] for n in dict.fromkeys(names)]


def generation_job_create(
    *,
    project: Project,
    generators: list[str],
    samples: int = 1,
    prompts: list[list[dict[str, str]]] | None = None,
    from_project: bool = False,
    user: Any = None,
    enqueue: bool = True,
) -> GenerationJob:
    """A job for `prompts` (added to the project, as an import would) or, with `from_project`,
    for every prompt the project has now. With `enqueue`, its task is published once the job is
    committed; without, the caller runs it (the command, in the foreground)."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise GenerationInvalid(f"samples must be 1 to {MAX_SAMPLES}, not {samples}")
    if (prompts is None) == (not from_project):
        raise GenerationInvalid("give prompts, or from_project, not both")
    chosen = generators_named(project=project, names=generators)
    with transaction.atomic():
        if from_project:
            prompt_ids = list(project.prompts.values_list("pk", flat=True))
            if not prompt_ids:
                raise GenerationInvalid(f"{project.slug} has no prompts yet")
        else:
            prompt_ids = [prompt_get_or_create(project=project, messages=m)[0].pk for m in prompts]
        job = GenerationJob.objects.create(
            project=project,
            created_by=user if getattr(user, "pk", None) else None,
            samples=samples,
            total=len(set(prompt_ids)) * len(chosen) * samples,
        )
        job.generators.set(chosen)
        job.prompts.set(prompt_ids)
        if enqueue:
            job_publish_on_commit(job=job, task=GENERATION_JOB_TASK)
    return job


def generation_job_cancel(*, job: GenerationJob) -> GenerationJob:
    """Ask the job to stop (services/jobs.py): every sample already in is kept."""
    return job_cancel(job=job, conflict=GenerationConflict)


def generation_job_resume(*, job: GenerationJob, enqueue: bool = True) -> GenerationJob:
    """Queue a cancelled or failed job again: it asks only for the samples still missing."""
    return job_resume(
        job=job, task=GENERATION_JOB_TASK, conflict=GenerationConflict, enqueue=enqueue
    )
