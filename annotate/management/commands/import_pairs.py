"""`python manage.py import_pairs FILE --project SLUG [--create] [--skip-invalid]`."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import Project
from annotate.services.catalog import project_get_or_create
from annotate.services.imports import ImportRejected, import_file


class Command(BaseCommand):
    help = (
        "Import pairs and preference judgments from a JSON Lines, CSV or Label Studio JSON "
        "file into a project. The format is detected from the rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument(
            "--create", action="store_true", help="Create the project when it does not exist."
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the good rows and report the bad ones (default: import nothing).",
        )

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        slug: str = options["project"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if options["create"]:
            project, _ = project_get_or_create(slug=slug)
        else:
            project = Project.objects.filter(slug=slug).first()
            if project is None:
                known = ", ".join(Project.objects.values_list("slug", flat=True)[:20]) or "none"
                raise CommandError(
                    f"No project with the slug {slug!r} (known: {known}). Pass --create to make it."
                )
        try:
            result = import_file(project=project, path=path, skip_invalid=options["skip_invalid"])
        except ImportRejected as exc:
            for line, message in exc.errors:
                self.stderr.write(f"line {line}: {message}")
            raise CommandError(exc.message) from None

        self.stdout.write(
            f"Imported {path.name} into {project.slug} (format {result.format}): "
            f"{result.rows} rows, {result.pairs_created} pairs created, "
            f"{result.comparisons_created} comparisons created, "
            f"{result.duplicates_skipped} duplicates skipped."
        )
        if result.sets_created or result.set_judgments_created:
            self.stdout.write(
                f"Sets: {result.sets_created} created, {result.set_judgments_created} raters' "
                f"judgments ({result.rankings_created} rankings, {result.ratings_created} "
                "ratings) created."
            )
        if result.errors:
            self.stderr.write(f"Skipped {len(result.errors)} bad lines:")
            for line, message in result.errors:
                self.stderr.write(f"line {line}: {message}")
