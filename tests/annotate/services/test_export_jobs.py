"""Exports built in the background (annotate/services/export_jobs.py), through the plain
service functions: which exports become jobs, the finished zip and its manifest, a failure,
and the cleanup. The queue itself is tested once, in tests/annotate/test_export_jobs_e2e.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate import exporters
from annotate.models import ExportJob
from annotate.services.export_jobs import (
    dataset_export_request,
    export_job_create,
    export_job_execute,
    export_job_file,
    export_jobs_clean,
    job_folder,
)
from annotate.services.exports import ExportError
from tests.annotate.export_data import judged_project


@pytest.fixture
def judged(project, labeler, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return judged_project(project, labeler)


def test_small_exports_stream_and_larger_ones_become_a_queued_job(judged, staff, settings):
    # The judged project counts 10 comparisons under the default options.
    settings.EXPORT_SYNC_MAX_COMPARISONS = 10
    name, chunks = dataset_export_request(project=judged.project, user=staff, values={})
    assert name.startswith("demo-trl-") and next(iter(chunks))
    assert not ExportJob.objects.exists()

    settings.EXPORT_SYNC_MAX_COMPARISONS = 9
    job = dataset_export_request(project=judged.project, user=staff, values={"format": "raw"})
    assert isinstance(job, ExportJob)
    assert (job.status, job.created_by, job.options) == ("queued", staff, {"format": "raw"})
    assert job.file_name.startswith("demo-raw-") and job.file_name.endswith(".jsonl.zip")
    # Bad options are refused before any job exists.
    with pytest.raises(ExportError, match="ghost"):
        dataset_export_request(project=judged.project, user=staff, values={"labelers": "ghost"})
    assert ExportJob.objects.count() == 1


def test_a_job_writes_a_complete_zip_whose_manifest_checksum_matches(judged, staff):
    job = export_job_create(
        project=judged.project, user=staff, values={"format": "raw"}, file_name="demo-raw.zip"
    )
    job = export_job_execute(job_id=job.pk)
    assert job.status == "succeeded", job.error
    path = export_job_file(job)
    assert path == job_folder(job) / "demo-raw.zip" and job.file_bytes == path.stat().st_size
    assert os.listdir(job_folder(job)) == ["demo-raw.zip"]  # no partial file left beside it
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["demo-raw.jsonl", "manifest.json", "README.md"]
        data = archive.read("demo-raw.jsonl")
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["data_sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["data_bytes"] == len(data)
    assert job.rows_done == job.rows_total == manifest["counts"]["rows"] == len(data.splitlines())
    assert job.started_at <= job.finished_at

    # Run twice (a redelivered message): a finished job is left as it is.
    mtime = path.stat().st_mtime_ns
    assert export_job_execute(job_id=job.pk).status == "succeeded"
    assert path.stat().st_mtime_ns == mtime


def test_a_failed_job_says_why_and_leaves_no_file(judged, staff, monkeypatch):
    def broken(row, ctx):
        raise OSError("disk full")

    raw = exporters._JSONL["raw"]
    monkeypatch.setitem(exporters._JSONL, "raw", dataclasses.replace(raw, record=broken))
    job = export_job_create(
        project=judged.project, user=staff, values={"format": "raw"}, file_name="demo-raw.zip"
    )
    job = export_job_execute(job_id=job.pk)
    assert (job.status, job.error, job.file) == ("failed", "OSError: disk full", "")
    assert export_job_file(job) is None
    assert not job_folder(job).exists()


def test_cleanup_deletes_old_jobs_with_their_files_and_fails_lost_ones(judged, staff, settings):
    settings.EXPORT_RETENTION_HOURS = 24
    now = timezone.now()

    def finished(hours_ago: float) -> ExportJob:
        job = export_job_create(
            project=judged.project, user=staff, values={}, file_name="demo-trl.zip"
        )
        job = export_job_execute(job_id=job.pk)
        ExportJob.objects.filter(pk=job.pk).update(finished_at=now - timedelta(hours=hours_ago))
        return job

    old, recent = finished(25), finished(23)
    lost = export_job_create(project=judged.project, user=staff, values={}, file_name="x.zip")
    ExportJob.objects.filter(pk=lost.pk).update(created_at=now - timedelta(hours=5))
    orphan = job_folder(old).parent / "999999"
    orphan.mkdir()
    os.utime(orphan, (0, 0))  # an old folder that no job owns

    assert export_jobs_clean(now=now) == 1
    assert not ExportJob.objects.filter(pk=old.pk).exists() and not job_folder(old).exists()
    assert export_job_file(ExportJob.objects.get(pk=recent.pk)) is not None
    lost.refresh_from_db()
    assert lost.status == "failed" and "within 4 hours" in lost.error
    assert not orphan.exists()
