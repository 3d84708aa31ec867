"""What test_endpoint_slots runs in processes of its own (`python -m
tests.annotate.services.slot_driver hold|job ...`), and the record of slot events it counts:
each slot taken, given back or waited for, as annotate/services/endpoint_slots.py logs it.

    hold PK NAME CONCURRENCY LEASE_S   take one slot of generator PK, print "held", keep it
                                       (its lease renewed) until killed
    job JOB_ID EVENTS_FILE             run a generation job, each slot event a line of the file
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SLOTS_LOGGER = "annotate.services.endpoint_slots"


@dataclass(frozen=True)
class SlotEvent:
    kind: str  # "taken", "given" or "wait"
    at: float  # time.time() as the event was logged: one clock for every process here
    where: str  # the process and thread


class SlotEvents(logging.Handler):
    """The slot events logged in this process, kept in memory and, with `path`, appended to
    a file line by line (another process reads it as it grows)."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.path = path
        self.events: list[SlotEvent] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        kind = getattr(record, "slot_event", None)
        if kind is None:
            return
        event = SlotEvent(kind, record.created, f"{os.getpid()}/{record.threadName}")
        with self.changed:
            self.events.append(event)
            if self.path is not None:
                with self.path.open("a") as out:
                    out.write(f"{event.kind} {event.at!r} {event.where}\n")
            self.changed.notify_all()

    def wait_until(self, check: Callable[[list[SlotEvent]], bool], timeout: float = 30) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: check(self.events), timeout=timeout)

    def __enter__(self) -> SlotEvents:
        logger = logging.getLogger(SLOTS_LOGGER)
        self._level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger(SLOTS_LOGGER)
        logger.removeHandler(self)
        logger.setLevel(self._level)


def events_read(path: Path) -> list[SlotEvent]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        kind, at, where = line.split(" ", 2)
        events.append(SlotEvent(kind, float(at), where))
    return events


def most_at_once(events: list[SlotEvent]) -> int:
    """The most slots held at once by these events; on equal times a taking counts first."""
    held = peak = 0
    for event in sorted(events, key=lambda e: (e.at, e.kind != "taken")):
        if event.kind == "taken":
            held += 1
            peak = max(peak, held)
        elif event.kind == "given":
            held -= 1
    return peak


def _hold(pk: str, name: str, concurrency: str, lease_s: str) -> None:
    from annotate.models import Generator
    from annotate.services.endpoint_slots import endpoint_slot

    generator = Generator(pk=int(pk), name=name, concurrency=int(concurrency))
    with endpoint_slot(generator, timeout_s=30, lease_s=float(lease_s)):
        print("held", flush=True)
        threading.Event().wait()  # until SIGKILL: the slot is never given back


def _job(job_id: str, events_file: str) -> None:
    from annotate.services.generation_run import generation_job_execute

    with SlotEvents(Path(events_file)):
        job = generation_job_execute(job_id=int(job_id))
    print(job.status, job.error, flush=True)
    sys.exit(0 if job.status == "succeeded" else 1)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django

    django.setup()
    {"hold": _hold, "job": _job}[sys.argv[1]](*sys.argv[2:])
