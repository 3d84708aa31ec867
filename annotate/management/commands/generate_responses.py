"""`manage.py generate_responses --project SLUG --prompts FILE|--from-project --generators a,b
[--samples N]`: one generation job, run now in this process, with a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.management.endpoints import job_run_foreground, project_named
from annotate.models import GenerationJob
from annotate.services.generation import (
    MAX_SAMPLES,
    GenerationInvalid,
    generation_job_create,
    prompts_file_read,
)
from annotate.services.generation_run import generation_job_execute


def progress(job: GenerationJob) -> str:
    """A generation job's samples, tokens, errors and pairs, behind the progress bar."""
    return (
        f"{job.done}/{job.total} samples, "
        f"{job.prompt_tokens + job.completion_tokens} tokens, {job.errors} errors, "
        f"{job.pairs_created} pairs"
    )


class Command(BaseCommand):
    help = "Generate responses to prompts from a project's generators, now, with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, metavar="SLUG")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--prompts", metavar="FILE", help='JSON Lines of {"prompt": text or messages}.'
        )
        source.add_argument(
            "--from-project", action="store_true", help="Every prompt the project has."
        )
        parser.add_argument("--generators", required=True, help="Names, comma-separated: a,b.")
        parser.add_argument(
            "--samples", type=int, default=1, help=f"Per prompt and generator (1-{MAX_SAMPLES})."
        )

    def handle(self, *args, project: str, generators: str, samples: int, **options):
        found = project_named(project)
        try:
            prompts = prompts_file_read(options["prompts"]) if options["prompts"] else None
            job = generation_job_create(
                project=found,
                generators=generators.split(","),
                samples=samples,
                prompts=prompts,
                from_project=options["from_project"],
                enqueue=False,
            )
        except GenerationInvalid as exc:
            raise CommandError(str(exc)) from None
        job = job_run_foreground(
            job=job,
            kind="generation",
            execute=generation_job_execute,
            progress=progress,
            stream=self.stderr,
        )
        self.stdout.write(
            f"Generation job {job.pk} succeeded: {job.done} samples, {job.pairs_created} new "
            f"pairs, {job.prompt_tokens} prompt and {job.completion_tokens} completion tokens, "
            f"{job.errors} retried errors."
        )
