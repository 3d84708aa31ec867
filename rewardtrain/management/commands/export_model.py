"""`manage.py export_model`: copy a reward model version's Hugging Face folder."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import Project
from rewardtrain.services.model_exports import (
    ModelExportError,
    model_export,
    model_version_for_export,
)


class Command(BaseCommand):
    help = "Copy a model version's folder (default: the active version) to DIR."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        # --version is the model version here: it replaces Django's "print Django's version".
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--version", type=int, help="Version number (default: active).")
        parser.add_argument("--out", required=True, type=Path, help="Folder to create.")

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        try:
            model_version = model_version_for_export(project=project, version=opts["version"])
            out = model_export(model_version=model_version, out=opts["out"])
        except ModelExportError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Copied {model_version} to {out}.")
