"""Staff downloads of a ModelVersion as one zip, built once by a worker (task
rewardtrain.model_zip_build) into MEDIA_ROOT/exports/models/<version id>/ and then sent as a
file (by nginx when EXPORT_ACCEL_REDIRECT is set), so no web request streams gigabytes.

No table: the state is the folder. `<name>.zip` is the finished zip, `building` says a build was
asked for (the worker touches it as it writes), `error.txt` holds why the last build failed.
The zip is written under a `.partial` name and renamed when whole, so a file named `.zip` is
always complete. Folders smaller than MODEL_DOWNLOAD_SYNC_MAX_BYTES still stream from the request.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from annotate.queue import QueueUnavailable, task_publish
from rewardtrain.models import ModelVersion
from rewardtrain.services.model_exports import (
    ModelExportError,
    model_folder,
    model_zip_name,
    model_zip_stream,
)

logger = logging.getLogger(__name__)

MODEL_ZIP_TASK = "rewardtrain.model_zip_build"
ZIPS_DIR = ("exports", "models")  # under MEDIA_ROOT: nginx's /_exports/ location serves it too
BUILDING = "building"
ERROR = "error.txt"
# The task's time limit: 28 GB of weights copied into a zip take minutes, not hours. A `building`
# mark this old and untouched belongs to a lost worker, and the next request asks again.
BUILD_MAX_SECONDS = 2 * 3600
TOUCH_EVERY_S = 10.0


@dataclass(frozen=True)
class ModelZip:
    """Where a version's download stands: `ready` with its file, `building`, or `failed` with
    the reason (`error`); `none` when nothing was asked for yet."""

    status: str
    name: str
    path: Path | None = None
    error: str = ""


def zip_folder(model_version: ModelVersion) -> Path:
    return Path(settings.MEDIA_ROOT).joinpath(*ZIPS_DIR, str(model_version.pk))


def folder_bytes(model_version: ModelVersion) -> int:
    """The size of the version's folder (ModelExportError when it is missing)."""
    folder = model_folder(model_version)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def model_zip_state(model_version: ModelVersion) -> ModelZip:
    name = f"{model_zip_name(model_version)}.zip"
    where = zip_folder(model_version)
    done = where / name
    if done.is_file() and done.stat().st_mtime >= _newest_mtime(model_version):
        return ModelZip("ready", name, path=done)
    building = where / BUILDING
    if building.is_file() and time.time() - building.stat().st_mtime < BUILD_MAX_SECONDS:
        return ModelZip("building", name)
    if (where / ERROR).is_file():
        return ModelZip("failed", name, error=(where / ERROR).read_text())
    return ModelZip("none", name)


def _newest_mtime(model_version: ModelVersion) -> float:
    """A zip older than any file of the folder is stale (the folder was written again)."""
    folder = Path(model_version.path)
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)


def model_zip_request(*, model_version: ModelVersion, retry: bool = False) -> ModelZip:
    """A staff request for the version's zip: its state, after queuing a build when none is
    ready or under way. A failed build is asked again only with `retry`. The folder is checked
    first (ModelExportError)."""
    model_folder(model_version)
    state = model_zip_state(model_version)
    if state.status in ("ready", "building") or (state.status == "failed" and not retry):
        return state
    where = zip_folder(model_version)
    where.mkdir(parents=True, exist_ok=True)
    (where / ERROR).unlink(missing_ok=True)
    (where / BUILDING).touch()
    # After the request's transaction, as export jobs do (a test's transaction never commits,
    # so tests run the build themselves, as a worker would).
    transaction.on_commit(lambda: model_zip_enqueue(model_version=model_version))
    return ModelZip("building", state.name)


def model_zip_enqueue(*, model_version: ModelVersion) -> None:
    """Publish the build; when the queue cannot be reached the build is failed, saying so (the
    next look at the download shows it)."""
    where = zip_folder(model_version)
    try:
        task_publish(name=MODEL_ZIP_TASK, args=[model_version.pk])
    except QueueUnavailable as exc:
        (where / ERROR).write_text(str(exc))
        (where / BUILDING).unlink(missing_ok=True)


def model_zip_build(*, model_version_id: int) -> ModelZip:
    """Write the version's zip (the worker's side): into a `.partial` file, renamed when whole.
    A failure leaves its reason in error.txt and no zip. Safe to run twice: a ready zip is left."""
    model_version = (
        ModelVersion.objects.select_related("project").filter(pk=model_version_id).first()
    )
    if model_version is None:
        return ModelZip("none", "")  # deleted since it was asked for; its folder went with it
    state = model_zip_state(model_version)
    if state.status == "ready":
        return state
    where = zip_folder(model_version)
    where.mkdir(parents=True, exist_ok=True)
    partial = where / f"{state.name}.{os.getpid()}.partial"
    done = where / state.name
    try:
        last = time.monotonic()
        with open(partial, "wb") as out:
            for chunk in model_zip_stream(model_version=model_version):
                out.write(chunk)
                if time.monotonic() - last >= TOUCH_EVERY_S:
                    last = time.monotonic()
                    (where / BUILDING).touch()
        partial.replace(done)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, ModelExportError) else f"{type(exc).__name__}: {exc}"
        (where / ERROR).write_text(reason)
        (where / BUILDING).unlink(missing_ok=True)
        if not isinstance(exc, ModelExportError):
            logger.exception("Building the zip of model version %s failed", model_version_id)
        return ModelZip("failed", state.name, error=reason)
    (where / ERROR).unlink(missing_ok=True)
    (where / BUILDING).unlink(missing_ok=True)
    return ModelZip("ready", state.name, path=done)


def model_zip_delete(model_version: ModelVersion) -> None:
    """Remove the version's zip and marks (the version is deleted or its folder replaced)."""
    shutil.rmtree(zip_folder(model_version), ignore_errors=True)


def on_model_version_deleted(sender: type, instance: ModelVersion, **kwargs: object) -> None:
    model_zip_delete(instance)
