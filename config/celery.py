"""The Celery app: reads CELERY_* settings from Django settings and finds tasks in the apps.
How a web request publishes a task lives beside the apps (annotate/queue.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
