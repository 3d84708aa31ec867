"""The export API and the staff export page: staff download a streamed zip; labelers are
refused."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from annotate.exporters.raw import labeler_pseudonym
from tests.annotate.export_data import judged_project


@pytest.fixture
def judged(project, labeler):
    return judged_project(project, labeler)


def client_for(user) -> APIClient:
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def unzip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_staff_download_streams_a_zip_with_manifest_and_card(judged, staff):
    response = client_for(staff).get(
        "/api/projects/demo/export/", {"format": "trl", "drop_ties": "true"}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="demo-trl-')
    archive = unzip(response)
    assert archive.namelist() == ["demo-trl.jsonl", "manifest.json", "README.md"]
    rows = [json.loads(line) for line in archive.read("demo-trl.jsonl").splitlines()]
    assert [r["pair_id"] for r in rows] == [
        judged.majority.id,
        judged.unanimous.id,
        judged.imported.id,
        judged.conversation.id,
    ]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["filters"]["drop_ties"] is True
    assert manifest["counts"]["dropped_ties"] == 1
    assert archive.read("README.md").decode().startswith("---\npretty_name:")


def test_staff_download_of_raw_parquet_with_filters(judged, staff):
    import pyarrow.parquet as pq

    response = client_for(staff).get(
        "/api/projects/demo/export/",
        {"format": "parquet", "shape": "raw", "labelers": "bob", "since": "", "split": ""},
    )
    assert response.status_code == 200
    archive = unzip(response)
    table = pq.read_table(io.BytesIO(archive.read("demo-raw.parquet")))
    assert table.num_rows == 3  # bob's two votes and his both-bad one
    bob = judged.users["bob"]
    assert set(table.column("labeler").to_pylist()) == {labeler_pseudonym(bob.id)}
    assert json.loads(archive.read("manifest.json"))["counts"]["comparisons"] == 3


def test_bad_requests_are_400_before_any_byte(judged, staff):
    client = client_for(staff)
    assert client.get("/api/projects/demo/export/", {"format": "excel"}).status_code == 400
    response = client.get("/api/projects/demo/export/", {"format": "raw", "drop_ties": "true"})
    assert response.status_code == 400
    assert "apply to pairs" in response.json()["detail"]
    response = client.get("/api/projects/demo/export/", {"labelers": "ghost"})
    assert response.status_code == 400 and "ghost" in response.json()["detail"]
    assert client.get("/api/projects/nope/export/").status_code == 404


def test_labelers_and_anonymous_are_refused(judged, labeler):
    assert client_for(labeler).get("/api/projects/demo/export/").status_code == 403
    assert client_for(None).get("/api/projects/demo/export/").status_code in (401, 403)


def test_export_page_is_staff_only(judged, client, staff, labeler):
    client.force_login(labeler)
    assert client.get("/projects/demo/export/").status_code == 403
    client.force_login(staff)
    page = client.get("/projects/demo/export/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'action="/api/projects/demo/export/"' in html
    assert '<option value="trl-conversational">' in html
    assert 'href="/projects/demo/training/"' in html  # where the models download
    client.logout()
    assert client.get("/projects/demo/export/").status_code == 302  # to the login page


def test_a_large_export_answers_202_with_a_job_to_follow_then_download(
    judged, staff, settings, tmp_path
):
    from annotate.services.export_jobs import export_job_execute
    from tests.factories import ProjectFactory

    settings.MEDIA_ROOT = tmp_path
    settings.EXPORT_SYNC_MAX_COMPARISONS = 3
    client = client_for(staff)
    asked = client.get("/api/projects/demo/export/", {"format": "raw", "split": ""})
    assert asked.status_code == 202
    job = asked.json()
    url = f"http://testserver/api/projects/demo/export/jobs/{job['id']}/"
    assert job["url"] == asked["Location"] == url
    assert (job["status"], job["progress"], job["download_url"]) == ("queued", 0.0, None)
    assert client.get(f"{job['url']}download/").status_code == 409  # not built yet

    export_job_execute(job_id=job["id"])  # what the worker does
    done = client.get(job["url"]).json()
    assert (done["status"], done["progress"], done["error"]) == ("succeeded", 1.0, "")
    assert done["rows_done"] == done["rows_total"] == 10 and done["expires_at"]
    download = client.get(done["download_url"])
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"] == f'attachment; filename="{done["file_name"]}"'
    archive = unzip(download)
    assert len(archive.read(archive.namelist()[0]).splitlines()) == 10
    # The export page lists the job with its download.
    client.force_login(staff)
    assert (
        done["download_url"].removeprefix("http://testserver")
        in client.get("/projects/demo/export/").content.decode()
    )

    # Another project's staff URL for this job: 404; a labeler: 403.
    ProjectFactory(slug="other")
    assert client.get(f"/api/projects/other/export/jobs/{job['id']}/").status_code == 404
    assert client.get(f"/api/projects/other/export/jobs/{job['id']}/download/").status_code == 404
    labeler = judged.users["alice"]
    assert client_for(labeler).get(job["url"]).status_code == 403

    # Behind nginx the file is sent by nginx's internal location, not by the web worker.
    settings.EXPORT_ACCEL_REDIRECT = "/_exports/"
    accel = client.get(done["download_url"])
    assert accel["X-Accel-Redirect"] == f"/_exports/{job['id']}/{done['file_name']}"
    assert accel.content == b""
