"""`manage.py add_labelers --project SLUG USERNAME... [--password P]`: put labelers on a
project, creating the accounts that are missing."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.models import Project
from annotate.services.accounts import PasswordRefused
from annotate.services.projects import labelers_add


class Command(BaseCommand):
    help = "Put labelers on a project; missing accounts are created (a password is printed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="+", metavar="USERNAME")
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument(
            "--password", help="Password for new accounts (default: a generated one each)."
        )

    def handle(self, *args, usernames: list[str], project: str, password: str | None, **opts):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"No project with slug {project!r}.")
        try:
            added_all = labelers_add(project=found, usernames=usernames, password=password)
        except PasswordRefused as error:
            raise CommandError(f"{error} Nothing was created.") from None
        for added in added_all:
            if added.generated_password:
                account = f"created, password: {added.generated_password}"
            elif added.account_created:
                account = "created with the given password"
            else:
                account = "existing account, password unchanged"
            on = "added to" if added.membership_created else "already on"
            self.stdout.write(f"{added.username}: {account}; {on} {found.slug}")
