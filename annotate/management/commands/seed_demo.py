"""`manage.py seed_demo`: the demo accounts and projects of `make run`, safe to run again.

Creates the accounts admin (staff) and labeler, the project "demo" (42 open pairs) and the
project "loop-demo" (judged pairs, a careless labeler, gold and repeats; see
annotate/services/demo.py), and prints how to log in. Passwords come from
DEMO_ADMIN_PASSWORD and DEMO_LABELER_PASSWORD. loop-demo's first training run is queued by
`manage.py retrain_due` (it has auto-retrain on and hundreds of new labels).
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotate.services.accounts import PasswordRefused, password_check
from annotate.services.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo projects, an admin and a labeler. Safe to run again."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            # Accounts with passwords printed in the README have no place on a real server.
            raise CommandError(
                "seed_demo creates accounts with known passwords and runs only with DEBUG=1 "
                "(make run sets it). On a server, create accounts with createsuperuser and "
                "add_labelers."
            )
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin-demo-pass")
        labeler_password = os.environ.get("DEMO_LABELER_PASSWORD", "labeler-demo-pass")
        # The demo passwords pass the same validators as any other (the defaults do).
        for username, password in (("admin", admin_password), ("labeler", labeler_password)):
            try:
                password_check(password=password, username=username)
            except PasswordRefused as error:
                raise CommandError(f"{error} Choose another DEMO_*_PASSWORD.") from None
        seeded = demo_seed(admin_password=admin_password, labeler_password=labeler_password)
        for p in seeded.projects:
            self.stdout.write(
                f"Demo project '{p.slug}': {p.pairs} pairs ({p.pairs_added} added now), "
                f"{p.comparisons} comparisons ({p.comparisons_added} added now)."
            )
        for username, password in seeded.accounts:
            self.stdout.write(f"  log in as {username} / {password or '(changed since)'}")
