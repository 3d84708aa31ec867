"""`manage.py retrain_due`: queue a training run for every project that is due now, what the
beat does every RETRAIN_CHECK_SECONDS. `make run` calls it once after seeding, so that the
loop demo's first model trains as soon as the worker starts instead of at the first tick."""

from django.core.management.base import BaseCommand

from rewardtrain.services.triggers import retrain_due


class Command(BaseCommand):
    help = "Queue a training run for every project with auto-retrain on that is due now."

    def handle(self, *args, **options) -> None:
        runs = retrain_due()
        for run in runs:
            self.stdout.write(
                f"Training run {run.pk} queued for {run.project.slug} "
                f"({run.get_trigger_display().lower()}): the worker trains it."
            )
        if not runs:
            self.stdout.write("No project is due for training.")
