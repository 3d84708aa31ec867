"""`manage.py judge_pairs --project SLUG --judge NAME [--limit N] [--open-only]`: one judging
job, run now in this process, with a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.management.endpoints import job_run_foreground, project_named
from annotate.models import JudgingJob
from annotate.services.judges import JudgingInvalid, judging_job_create
from annotate.services.judging_run import judging_job_execute


def progress(job: JudgingJob) -> str:
    """A judging job's pairs, comparisons, unparsable readings, tokens and errors, behind the
    progress bar."""
    return (
        f"{job.done}/{job.total} pairs, {job.comparisons_created} comparisons, "
        f"{job.unparsable} unparsable, {job.prompt_tokens + job.completion_tokens} tokens, "
        f"{job.errors} errors"
    )


class Command(BaseCommand):
    help = "Have a project's AI judge read its pairs (both orders), now, with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--judge", required=True, metavar="NAME")
        parser.add_argument("--limit", type=int, help="At most this many pairs.")
        parser.add_argument(
            "--open-only", action="store_true", help="Only pairs still open to people."
        )

    def handle(self, *args, project: str, judge: str, limit: int | None, open_only: bool, **_):
        found = project_named(project)
        try:
            job = judging_job_create(
                project=found, judge=judge, limit=limit, open_only=open_only, enqueue=False
            )
        except JudgingInvalid as exc:
            raise CommandError(str(exc)) from None
        job = job_run_foreground(
            job=job,
            kind="judging",
            execute=judging_job_execute,
            progress=progress,
            stream=self.stderr,
        )
        self.stdout.write(
            f"Judging job {job.pk} succeeded: {job.done} pairs read in both orders, "
            f"{job.comparisons_created} new comparisons, {job.unparsable} unparsable readings, "
            f"{job.prompt_tokens} prompt and {job.completion_tokens} completion tokens, "
            f"{job.errors} retried errors."
        )
