"""`manage.py seed_demo`: the demo project and two accounts, safe to run again.

Creates the accounts admin (staff) and labeler, the project "demo" and its pairs from
annotate/fixtures/demo_pairs.jsonl (through the import service, so a second run adds nothing),
and prints how to log in. Passwords come from DEMO_ADMIN_PASSWORD and DEMO_LABELER_PASSWORD.
"""

import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

import annotate
from annotate.services.accounts import PasswordRefused, password_check
from annotate.services.catalog import project_get_or_create
from annotate.services.imports import import_file
from annotate.services.projects import membership_create

DEMO_PAIRS = Path(annotate.__file__).parent / "fixtures" / "demo_pairs.jsonl"
INSTRUCTIONS = """Compare the two responses to the prompt and pick the **better** one.

- Prefer responses that are **correct**, then **helpful**, then **clear and concise**.
- A response that is confidently wrong is worse than one that is brief but right.
- Use **tie** when neither is better, and **both bad** when neither is acceptable.
- Then say how much better it is. Reasons and a comment are optional but help a lot.

Responses are model output: links and HTML in them are shown as text on purpose.
"""


class Command(BaseCommand):
    help = "Create the demo project (40+ pairs), an admin and a labeler. Safe to run again."

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
        admin, admin_new = self._account("admin", admin_password, staff=True)
        labeler, labeler_new = self._account("labeler", labeler_password, staff=False)

        project, created = project_get_or_create(slug="demo", name="Demo: which answer is better?")
        if created:
            project.instructions = INSTRUCTIONS
            project.ask_strength = True
            project.reason_tags = [
                "more accurate",
                "more helpful",
                "clearer",
                "safer",
                "more concise",
            ]
            project.save()
        for user in (admin, labeler):
            membership_create(project=project, user=user)
        # Importing again would add nothing (imports are idempotent) but would log a batch.
        added = 0
        if not project.imports.filter(file_name=DEMO_PAIRS.name).exists():
            added = import_file(project=project, path=DEMO_PAIRS, created_by=admin).pairs_created
        project.refresh_from_db()
        self.stdout.write(
            f"Demo project '{project.slug}': {project.pair_count} pairs ({added} added now)."
        )
        for username, password, new in (
            ("admin", admin_password, admin_new),
            ("labeler", labeler_password, labeler_new),
        ):
            shown = password if new or self._password_is(username, password) else "(changed since)"
            self.stdout.write(f"  log in as {username} / {shown}")

    def _account(self, username: str, password: str, *, staff: bool):
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": staff, "is_superuser": staff}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, created

    def _password_is(self, username: str, password: str) -> bool:
        return get_user_model().objects.get(username=username).check_password(password)
