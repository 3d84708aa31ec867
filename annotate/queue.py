"""How a web request publishes a task without hanging when the broker is down.

The Celery app is config's (config/celery.py); this reads it as Celery's current app, so the
apps never import the settings package."""

from http import HTTPStatus

import redis.exceptions
from celery import current_app
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from annotate.errors import ApplicationError

# What a broken or absent broker raises: kombu wraps most of it, the rest comes raw.
QUEUE_ERRORS = (OperationalError, redis.exceptions.RedisError, OSError)


class QueueUnavailable(ApplicationError):
    """The task queue (Redis) could not be reached."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "queue_unavailable"


def task_publish(*, name: str, args: list) -> str:
    """Publish one task message and return its id, or raise QueueUnavailable at once.

    A fresh connection with no retries and socket timeouts: a request that enqueues must answer
    within the broker connection timeout, not hang on kombu's retry loop or on the operating
    system's connect timeout (minutes) when the Redis host does not answer at all.
    """
    app = current_app
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
