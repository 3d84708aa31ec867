"""`manage.py evaluate_reward_model --project SLUG [--version N]`: figures on today's test split."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Project
from rewardtrain.models import Evaluation, ModelVersion
from rewardtrain.selectors import runs as selectors
from rewardtrain.services import version_evaluate


def metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """Numbers first, one per line; tables (dicts and lists) after, as compact JSON."""
    simple = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
    tables = {k: v for k, v in metrics.items() if isinstance(v, dict | list)}
    width = max((len(k) for k in metrics), default=0)
    lines = [
        f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}"
        for k, v in simple.items()
    ]
    lines += [f"{k:<{width}}  {json.dumps(v)}" for k, v in tables.items()]
    return lines


class Command(BaseCommand):
    help = "Evaluate a model version (default: the active one) on the project's current test split."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names a model version here; it replaces Django's own --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--version", type=int, help="Version number (default: the active one).")

    def handle(self, *args, **options):
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {options['project']!r}") from None
        if options["version"] is None:
            version = selectors.version_active(project=project)
            if version is None:
                raise CommandError(f"project {project.slug} has no active model; give --version")
        else:
            try:
                version = selectors.version_get(project=project, version=options["version"])
            except ModelVersion.DoesNotExist:
                raise CommandError(
                    f"project {project.slug} has no version {options['version']}"
                ) from None
        try:
            evaluation = version_evaluate(version=version, kind=Evaluation.Kind.MANUAL)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        snap = evaluation.snapshot
        self.stdout.write(
            f"Version {version.version} of {project.slug} on {snap.get('total', 0)} test pairs "
            f"(snapshot {str(snap.get('content_hash', ''))[:12]}):"
        )
        for line in metrics_lines(evaluation.metrics):
            self.stdout.write(f"  {line}")
