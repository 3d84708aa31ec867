"""The export job through the real queue: the export API answers 202, a Celery worker process
(the test Redis, the test database) builds the zip, and the download is the complete file whose
checksum the manifest holds."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from annotate.models import ExportJob
from tests.annotate.export_data import judged_project
from tests.rewardtrain.queue_helpers import (  # noqa: F401 - fixtures
    broker,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_large_export_is_built_by_a_worker_and_downloads_whole(
    project,
    labeler,
    staff,
    settings,
    tmp_path,
    monkeypatch,
    start_worker,  # noqa: F811
):
    judged_project(project, labeler)
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    monkeypatch.setenv("MEDIA_ROOT", str(media))  # the worker's, from its environment
    settings.EXPORT_SYNC_MAX_COMPARISONS = 0
    api = APIClient()
    api.force_authenticate(staff)

    asked = api.get(f"/api/projects/{project.slug}/export/", {"format": "raw"})
    assert asked.status_code == 202, asked.content
    job_id = asked.json()["id"]
    worker = start_worker()
    wait_for(
        lambda: ExportJob.objects.filter(pk=job_id).exclude(status__in=["queued", "running"]),
        what="the export job to end",
        worker=worker,
    )
    job = api.get(asked["Location"]).json()
    assert job["status"] == "succeeded", job["error"]

    download = api.get(job["download_url"])
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    data = archive.read(f"{project.slug}-raw.jsonl")
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["data_sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["counts"]["rows"] == len(data.splitlines()) == job["rows_done"] == 10
