"""`manage.py add_judge --project SLUG NAME --base-url URL --model MODEL [--api-key-env VAR]
[--rubric FILE] [--temperature T] [--max-tokens N] [--concurrency N]`: add an AI judge (and its
labeler account) to a project."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.management.endpoints import (
    endpoint_arguments,
    endpoint_settings,
    project_named,
    sampling_arguments,
)
from annotate.services.judges import JudgingInvalid, judge_add


class Command(BaseCommand):
    help = "Add an OpenAI-compatible endpoint to a project as an AI judge of its pairs."

    def add_arguments(self, parser: CommandParser) -> None:
        endpoint_arguments(parser, example="qwen-judge")
        parser.add_argument(
            "--rubric",
            metavar="FILE",
            help="A text file with {prompt}, {response_1} and {response_2}; default: built "
            "from the project's instructions and choices.",
        )
        sampling_arguments(parser)
        parser.add_argument("--concurrency", type=int, default=4, help="Requests at once (4).")

    def handle(self, *args, name: str, project: str, rubric: str | None, **options):
        found = project_named(project)
        values = endpoint_settings(options)
        if rubric:
            try:
                values["rubric"] = Path(rubric).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read the rubric {rubric}: {exc}") from None
        try:
            judge = judge_add(project=found, name=name, **values)
        except JudgingInvalid as exc:
            raise CommandError(f"{exc}; nothing was added.") from None
        self.stdout.write(
            f"Added judge {judge.name} to {found.slug}: {judge.model} at {judge.base_url}, "
            f"{judge.concurrency} request(s) at once, "
            f"{'its own rubric' if judge.rubric.strip() else 'the default rubric'}; "
            f"its labeler account is {judge.user.username}."
        )
