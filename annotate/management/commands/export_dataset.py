"""`manage.py export_dataset`: write a project's preference data in a training tool's format."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.exporters import FORMAT_NAMES, SHAPES, pairs_from
from annotate.models import Project
from annotate.services.exports import (
    OPTION_NAMES,
    SOURCES,
    ExportError,
    dataset_export,
    export_options,
)
from annotate.services.exports_sets import SET_FORMATS
from annotate.splits import SPLITS


class Command(BaseCommand):
    help = (
        "Export a project's data: PATH plus PATH.manifest.json and the dataset card "
        "PATH.README.md, or one zip of all three when PATH ends in .zip."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", required=True, choices=FORMAT_NAMES + tuple(SET_FORMATS))
        parser.add_argument("--out", required=True, type=Path, help="Output file.")
        parser.add_argument(
            "--shape", choices=SHAPES, default="trl", help="csv and parquet: trl or raw columns."
        )
        parser.add_argument("--drop-ties", action="store_true")
        parser.add_argument(
            "--min-agreement", type=float, help="Keep pairs whose agreement is at least this."
        )
        parser.add_argument(
            "--source",
            choices=SOURCES,
            default="all",
            help="all (what training counts: AI judges' comparisons when the project's judges "
            "enter training), human, imported or ai_judge.",
        )
        parser.add_argument(
            "--no-ai", action="store_true", help="Leave AI judges' comparisons out."
        )
        parser.add_argument("--since", help="Comparisons made on or after (YYYY-MM-DD or ISO).")
        parser.add_argument("--until", help="Comparisons made up to (a date includes that day).")
        parser.add_argument("--labelers", help="Comma-separated usernames.")
        parser.add_argument("--split", choices=SPLITS)
        parser.add_argument(
            "--include-excluded", action="store_true", help="Keep labelers staff excluded."
        )
        parser.add_argument(
            "--real-usernames", action="store_true", help="raw: usernames, not pseudonyms."
        )
        parser.add_argument(
            "--pairs-from",
            choices=pairs_from.CHOICES,
            help="trl formats: pairs from rankings (all implied pairs, or best-vs-rest) or "
            "from ratings (rating-margin) instead of the project's pairs.",
        )
        parser.add_argument(
            "--min-margin", type=float, help="rating-margin: the least score difference (1)."
        )
        parser.add_argument(
            "--aspect", help="rating-margin: the aspect compared (default: the aspects' mean)."
        )

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        try:
            options = export_options(
                **{name: opts[name] for name in OPTION_NAMES},
            )
            manifest = dataset_export(project=project, options=options, out=opts["out"])
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        counts = manifest["counts"]
        if "sets" in counts:
            self.stdout.write(
                f"Wrote {counts['rows']} rows from {counts['sets']} sets ({counts['rankings']} "
                f"rankings, {counts['ratings']} ratings) to {opts['out']}."
            )
            return
        self.stdout.write(
            f"Wrote {counts['rows']} rows ({counts['pairs']} pairs, {counts['comparisons']} "
            f"comparisons) to {opts['out']}; snapshot {manifest['snapshot']['content_hash'][:12]}."
        )
