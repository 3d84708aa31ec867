"""What the commands of a project's model endpoints share: add_generator and add_judge take the
same endpoint arguments; generate_responses and judge_pairs run their job in this process with
a progress bar. All four find the project by its slug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser, OutputWrapper

from annotate.management.progress import ProgressBar
from annotate.models import Project
from annotate.services.jobs import Job, Status

# The settings an endpoint command passes on when given (a left-out one keeps the model's default).
ENDPOINT_OPTIONS = (
    *("base_url", "model", "api_key_env", "temperature", "top_p", "max_tokens", "seed"),
    "concurrency",
)


def project_named(slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"No project with slug {slug!r}.")
    return project


def endpoint_arguments(parser: CommandParser, *, example: str) -> None:
    """The endpoint's name, project, URL, model and key variable; `example` is a name."""
    parser.add_argument("name", metavar="NAME", help=f"Unique in the project, e.g. {example}.")
    parser.add_argument("--project", required=True, metavar="SLUG")
    parser.add_argument("--base-url", required=True, help="Up to /v1: {base_url}/chat/completions.")
    parser.add_argument("--model", required=True, help="The model name the endpoint expects.")
    parser.add_argument(
        "--api-key-env", default="", help="Name of the environment variable with the key."
    )


def sampling_arguments(parser: CommandParser) -> None:
    """The sampling settings (each the endpoint's default when left out)."""
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--seed", type=int)


def endpoint_settings(options: dict[str, Any], *own: str) -> dict[str, Any]:
    """The endpoint settings given (ENDPOINT_OPTIONS and the kind's `own`), by setting name."""
    return {key: options[key] for key in (*ENDPOINT_OPTIONS, *own) if options[key] is not None}


def job_run_foreground(
    *,
    job: Job,
    kind: str,
    execute: Callable[..., Job],
    progress: Callable[[Job], str],
    stream: OutputWrapper,
) -> Job:
    """The job run now, in this process, with `progress(job)` behind a bar on `stream`; a job
    that does not succeed is a CommandError with its own error (`kind`: "generation" or
    "judging", as the message names it)."""
    bar = ProgressBar(stream)

    def show(running: Job) -> None:
        bar.show(running.done / running.total if running.total else 1.0, progress(running))

    job = execute(job_id=job.pk, on_progress=show)
    bar.close()
    if job.status != Status.SUCCEEDED:
        raise CommandError(f"{kind} job {job.pk} {job.status}: {job.error}")
    return job
