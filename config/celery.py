"""The Celery app: reads CELERY_* settings from Django settings and finds tasks in the apps;
and how a web request publishes a task without hanging when the broker is down."""

import os

import redis.exceptions
from celery import Celery
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# What a broken or absent broker raises: kombu wraps most of it, the rest comes raw.
QUEUE_ERRORS = (OperationalError, redis.exceptions.RedisError, OSError)


class QueueUnavailable(Exception):
    """The task queue (Redis) could not be reached."""


def task_publish(*, name: str, args: list) -> str:
    """Publish one task message and return its id, or raise QueueUnavailable at once.

    A fresh connection with no retries and socket timeouts: a request that enqueues must answer
    within the broker connection timeout, not hang on kombu's retry loop or on the operating
    system's connect timeout (minutes) when the Redis host does not answer at all.
    """
    timeout = app.conf.broker_connection_timeout
    conn = app.connection_for_write(
        connect_timeout=timeout,
        transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
    )
    try:
        with conn:
            conn.ensure_connection(max_retries=0)
            return app.send_task(name, args=args, connection=conn, retry=False).id
    except QUEUE_ERRORS as exc:
        where = maybe_sanitize_url(conn.as_uri(include_password=True))  # the password masked
        raise QueueUnavailable(f"could not reach the task queue (Redis at {where}): {exc}") from exc
