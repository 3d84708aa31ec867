"""Model version downloads built once by a worker (rewardtrain/services/downloads.py): the
zip is written whole or not at all, goes with its version, and the download page answers 202
while it is built, then sends the file."""

from __future__ import annotations

import io
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotate.services.export_jobs import export_jobs_clean
from rewardtrain.models import ModelVersion
from rewardtrain.services.downloads import (
    model_zip_build,
    model_zip_request,
    model_zip_state,
    zip_folder,
)
from tests.rewardtrain.test_exports import saved_version


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_build_writes_the_whole_zip_once_and_a_newer_folder_makes_it_stale(
    project, tmp_path, media
):
    version = saved_version(project, tmp_path, 3, active=True)
    assert model_zip_state(version).status == "none"
    built = model_zip_build(model_version_id=version.pk)
    assert built.status == "ready" and built.name == "demo-reward-model-v3.zip"
    assert sorted(p.name for p in zip_folder(version).iterdir()) == [built.name]  # no .partial
    names = zipfile.ZipFile(built.path).namelist()
    assert {"demo-reward-model-v3/model.safetensors", "demo-reward-model-v3/prefloop.json"} <= set(
        names
    )
    assert model_zip_build(model_version_id=version.pk).path == built.path  # left as it is
    # The folder written again after the zip: the zip no longer stands for it.
    weights = Path(version.path) / "model.safetensors"
    later = built.path.stat().st_mtime + 10
    os.utime(weights, (later, later))
    assert model_zip_state(version).status == "none"


def test_a_failed_build_says_why_and_leaves_no_zip_until_asked_again(project, tmp_path, media):
    version = saved_version(project, tmp_path, 4, active=True)
    (Path(version.path) / "config.json").rename(Path(version.path) / "config.json.bak")
    failed = model_zip_build(model_version_id=version.pk)
    assert failed.status == "failed" and "no config.json" in failed.error
    assert not any(p.suffix in (".zip", ".partial") for p in zip_folder(version).iterdir())
    assert model_zip_state(version).error == failed.error
    (Path(version.path) / "config.json.bak").rename(Path(version.path) / "config.json")
    assert model_zip_request(model_version=version).status == "failed"  # not asked again
    assert model_zip_request(model_version=version, retry=True).status == "building"
    assert model_zip_build(model_version_id=version.pk).status == "ready"


def test_deleting_a_version_removes_its_zip(project, tmp_path, media):
    version = saved_version(project, tmp_path, 5, active=True)
    model_zip_build(model_version_id=version.pk)
    folder = zip_folder(version)
    assert folder.is_dir()
    # The export jobs' hourly cleanup, whose folder this shares, leaves it alone.
    export_jobs_clean(now=timezone.now() + timedelta(days=30))
    assert folder.is_dir()
    ModelVersion.objects.filter(pk=version.pk).delete()
    assert not folder.exists()


def test_a_large_version_answers_202_then_sends_the_built_zip(
    client, staff, project, tmp_path, media, settings
):
    version = saved_version(project, tmp_path, 6, active=True)
    settings.MODEL_DOWNLOAD_SYNC_MAX_BYTES = 0  # every folder counts as large
    client.force_login(staff)
    url = "/projects/demo/models/6/download/"
    asked = client.get(url)
    assert asked.status_code == 202
    assert 'data-status="building"' in asked.content.decode()
    status = client.get(f"{url}status/").json()
    assert (status["status"], status["download_url"]) == ("building", url)
    assert client.get(url).status_code == 202  # asked once; still building

    model_zip_build(model_version_id=version.pk)  # what the worker does
    assert client.get(f"{url}status/").json()["status"] == "ready"
    download = client.get(url)
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"] == 'attachment; filename="demo-reward-model-v6.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    source = Path(version.path)
    top = "demo-reward-model-v6"
    assert archive.read(f"{top}/model.safetensors") == (source / "model.safetensors").read_bytes()
    assert archive.read(f"{top}/tokenizer.json") == (source / "tokenizer.json").read_bytes()

    # Behind nginx: nginx sends the file from the exports location, not this worker.
    settings.EXPORT_ACCEL_REDIRECT = "/_exports/"
    accel = client.get(url)
    assert accel["X-Accel-Redirect"] == f"/_exports/models/{version.pk}/{top}.zip"
    assert accel.content == b""
