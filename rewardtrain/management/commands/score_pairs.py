"""`manage.py score_pairs FILE --project SLUG --out FILE [--model DIR] [--aspects]`: rewards
for a file of pairs in any shape import_pairs reads (and the aspects of a rating-trained
model)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Project
from rewardtrain.services import PairsFileError, score_pairs_file


class Command(BaseCommand):
    help = (
        "Copy each row of a file that import_pairs reads (pairs, candidates, TRL, HH-RLHF, "
        "OpenAI, Arena, Label Studio; JSON Lines, CSV, JSON, gzip) to a JSON Lines file with "
        "reward_a, reward_b and p_a_better added (a = the chosen, preferred or first side), or, "
        "for candidates, rewards (one per response)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="A file in any shape import_pairs reads.")
        parser.add_argument("--project", help="Project slug: its active model scores.")
        parser.add_argument("--out", required=True, type=Path, help="JSONL file to write.")
        parser.add_argument("--model", type=Path, help="A saved model folder instead.")
        parser.add_argument(
            "--aspects",
            action="store_true",
            help="Also write each response's aspects (aspects_a and aspects_b, or aspects for "
            "candidates): a model trained on ratings only.",
        )

    def handle(self, *args, **options):
        project = None
        if options["project"]:
            try:
                project = Project.objects.get(slug=options["project"])
            except Project.DoesNotExist:
                raise CommandError(f"no project with slug {options['project']!r}") from None
        elif not options["model"]:
            raise CommandError("give --project SLUG (its active model) or --model DIR")
        try:
            count = score_pairs_file(
                source=options["file"],
                out=options["out"],
                project=project,
                model_dir=options["model"],
                aspects=options["aspects"],
            )
        except PairsFileError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Scored {count} rows into {options['out']}")
