"""The project's active ModelVersion, loaded and followed: after a promotion or a rollback the
new version is loaded beside the old one and then switched in with one assignment, so no
request ever waits on a load or finds no model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections

from rewardtrain.models import ModelVersion
from rewardtrain.serving.batcher import LoadedModel

log = logging.getLogger(__name__)

# How often the database is asked which version is active: one indexed query a second keeps
# a swap well inside the 10 s the server promises, loading time included.
POLL_SECONDS = 1.0


def _load_scorer(path: str, device: str) -> Any:
    from rewardtrain.core.scoring import RewardScorer

    return RewardScorer.load(path, device=device)


class ActiveModel:
    """Call it for the model to score with (None when the project has no active version)."""

    def __init__(
        self,
        *,
        project_id: int,
        device: str,
        poll_seconds: float = POLL_SECONDS,
        load: Callable[[str, str], Any] = _load_scorer,
        on_change: Callable[[LoadedModel | None], None] | None = None,
    ) -> None:
        self.project_id = project_id
        self.device = device
        self.poll_seconds = poll_seconds
        self._load = load
        self._on_change = on_change
        self._current: LoadedModel | None = None
        self._key: tuple[int, str] | None = None
        self._failed: tuple[int, str] | None = None
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="active-model", daemon=True)

    def __call__(self) -> LoadedModel | None:
        return self._current

    def refresh(self) -> None:
        """Ask the database once; load and switch to the active version when it changed. A
        version whose folder does not load is reported once and the previous one kept."""
        close_old_connections()  # a connection the database dropped is replaced, not reused
        row = (
            ModelVersion.objects.filter(project_id=self.project_id, is_active=True)
            .values_list("pk", "version", "path")
            .first()
        )
        if row is None:
            if self._key is not None:
                log.warning("the project has no active model any more: answering 503")
                self._key, self._current = None, None
                self._notify()
            return
        pk, version, path = row
        key = (pk, path)
        if key in (self._key, self._failed):
            return
        try:
            scorer = self._load(path, self.device)
        except Exception as exc:  # any load failure keeps the old model serving
            self._failed = key
            self.error = f"version {version} did not load: {exc}"
            log.error("%s; still serving %s", self.error, self._describe())
            return
        self._current = LoadedModel(scorer=scorer, version=version)
        self._key, self._failed, self.error = key, None, ""
        self._notify()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # a database hiccup must not end the follower
                log.exception("could not read the active model; trying again")

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change(self._current)

    def _describe(self) -> str:
        return f"version {self._current.version}" if self._current else "no model"
