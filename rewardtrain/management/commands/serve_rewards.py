"""`manage.py serve_rewards --project SLUG`: the project's active reward model over HTTP, for
RL trainers (OpenRLHF's --remote_rm_url, TRL's GRPOTrainer through rewardtrain.client)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Project
from rewardtrain.serving.server import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_WAIT_MS,
    DEFAULT_PORT,
    ServeError,
    serve,
)


class Command(BaseCommand):
    help = "Serve the project's active reward model: POST /v1/rewards, /get_reward; GET /health."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug: its active model.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: any free port.")
        parser.add_argument("--device", default="", help="cpu or cuda (default: cuda if any).")
        parser.add_argument(
            "--max-batch-tokens",
            type=int,
            help="Padded tokens per forward (default 1024 on cpu, 65536 on cuda).",
        )
        parser.add_argument(
            "--max-wait-ms",
            type=float,
            default=DEFAULT_MAX_WAIT_MS,
            help="How long the first request of a batch waits for others to join it.",
        )
        parser.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS)
        parser.add_argument(
            "--no-auth",
            action="store_true",
            help="No token needed (OpenRLHF sends none); listens on loopback only.",
        )

    def handle(self, *args, **options):
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {options['project']!r}") from None

        def say(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            serve(
                project=project,
                host=options["host"],
                port=options["port"],
                device=options["device"],
                max_batch_tokens=options["max_batch_tokens"],
                max_wait_ms=options["max_wait_ms"],
                max_items=options["max_items"],
                no_auth=options["no_auth"],
                say=say,
            )
        except ServeError as exc:
            raise CommandError(str(exc)) from exc
