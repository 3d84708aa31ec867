"""`manage.py add_generator --project SLUG NAME --base-url URL --model MODEL [--api-key-env VAR]
[--temperature T] [--max-tokens N] [--concurrency N] [--update]`: add a model endpoint to a
project (with --update, set the settings of the generator of that name when it exists: what
`make run` does for the demo's chat model, whose port may change between runs)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.management.endpoints import (
    endpoint_arguments,
    endpoint_settings,
    project_named,
    sampling_arguments,
)
from annotate.services.generation import GenerationInvalid, generator_create, generator_update


class Command(BaseCommand):
    help = "Add an OpenAI-compatible endpoint to a project as a generator of responses."

    def add_arguments(self, parser: CommandParser) -> None:
        endpoint_arguments(parser, example="llama-8b")
        sampling_arguments(parser)
        parser.add_argument("--system-prompt", default="")
        parser.add_argument("--concurrency", type=int, default=4, help="Requests at once (4).")
        parser.add_argument(
            "--update",
            action="store_true",
            help="If the project has a generator of that name, set these settings on it.",
        )

    def handle(self, *args, name: str, project: str, update: bool = False, **options):
        found = project_named(project)
        values = endpoint_settings(options, "system_prompt")
        existing = found.generators.filter(name=name).first() if update else None
        try:
            if existing is not None:
                generator = generator_update(generator=existing, **values)
            else:
                generator = generator_create(project=found, name=name, **values)
        except GenerationInvalid as exc:
            raise CommandError(
                f"{exc}; nothing was {'changed' if existing else 'added'}."
            ) from None
        done = f"Updated generator {name} of" if existing else f"Added generator {name} to"
        self.stdout.write(
            f"{done} {found.slug}: {generator.model} at {generator.base_url}, "
            f"{generator.concurrency} request(s) at once."
        )
