"""Rankings and ratings through the export API and the staff export page: a ranking project's
real judgments (leased and submitted through the services) download in the set formats and as
TRL pairs, bad options are 400 before any byte or job, and a large export becomes a job."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from annotate.exporters.raw import labeler_pseudonym
from annotate.hashing import user_message
from annotate.models import ExportJob, Project, TaskKind
from annotate.services.export_jobs import export_job_execute
from annotate.services.rankings import response_set_submit, response_sets_create
from annotate.services.set_leasing import response_set_lease_next
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
EXPORT = "/api/projects/demo/export/"
# What the export page's form sends when only the format is chosen: every field, most empty.
FORM = {
    "shape": "trl",
    "source": "all",
    "split": "",
    "min_agreement": "",
    "since": "",
    "until": "",
    "labelers": "",
    "pairs_from": "",
    "min_margin": "",
    "aspect": "",
}


@pytest.fixture
def ranked(project, labeler):
    """The demo project ranking K = 3: two sets, each ranked by alice (texts in alphabetical
    order, best first) and by bob (the reverse). Returns {username: user}."""
    Project.objects.filter(pk=project.pk).update(
        task_kind=TaskKind.RANKING, ranking_size=3, redundancy=2
    )
    project.refresh_from_db()
    for i in range(2):
        prompt = PromptFactory(project=project, messages=user_message(f"Question {i}?"))
        for text in ("Apple", "Banana", "Cherry"):
            ResponseFactory(prompt=prompt, text=f"{text} {i}")
    response_sets_create(project=project)
    bob = UserFactory(username="bob")
    MembershipFactory(project=project, user=bob)
    for user, reverse in ((labeler, False), (bob, True)):
        while (lease := response_set_lease_next(project=project, labeler=user)) is not None:
            order = sorted(lease.responses, key=lambda r: r.text, reverse=reverse)
            response_set_submit(labeler=user, set_id=lease.set_id, ranking=[r.id for r in order])
    return {"alice": labeler, "bob": bob}


def staff_api(staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff)
    return client


def rows_of(response) -> tuple[list[dict], dict]:
    """The data file's rows and the manifest of a downloaded zip."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    archive = zipfile.ZipFile(io.BytesIO(content))
    data, manifest, card = archive.namelist()
    assert card == "README.md"
    rows = [json.loads(line) for line in archive.read(data).splitlines()]
    return rows, json.loads(archive.read(manifest))


def test_argilla_records_hold_each_labelers_ranking(ranked, staff):
    response = staff_api(staff).get(EXPORT, {"format": "argilla"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="demo-argilla-')
    rows, manifest = rows_of(response)
    assert (manifest["rows_are"], manifest["counts"]["sets"]) == ("sets", 2)
    assert manifest["counts"]["rankings"] == 4
    assert sorted(r["fields"]["prompt"] for r in rows) == ["Question 0?", "Question 1?"]
    alice, bob = (labeler_pseudonym(ranked[n].id) for n in ("alice", "bob"))
    for row in rows:
        i = row["fields"]["prompt"][len("Question ")]
        by_rater = {
            answer["user_id"]: [
                row["fields"][v["value"]] for v in answer["values"]["ranking"]["value"]
            ]
            for answer in row["responses"]
        }
        best_first = [f"{t} {i}" for t in ("Apple", "Banana", "Cherry")]
        assert by_rater == {alice: best_first, bob: best_first[::-1]}


def test_rankings_expand_to_trl_pairs(ranked, staff):
    response = staff_api(staff).get(EXPORT, {"format": "trl", "pairs_from": "all"})
    assert response.status_code == 200
    rows, manifest = rows_of(response)
    assert manifest["expansion"]["pairs_from"] == "all"
    # 2 sets x 2 labelers x the 3 pairs a ranking of 3 implies.
    assert len(rows) == 12
    alice = labeler_pseudonym(ranked["alice"].id)
    for row in rows:
        assert (row["chosen"] < row["rejected"]) is (row["labeler"] == alice)
    best = staff_api(staff).get(EXPORT, {"format": "trl", "pairs_from": "best-vs-rest"})
    assert len(rows_of(best)[0]) == 8  # each ranking's best over the other two


def test_bad_set_options_are_400_before_any_byte_or_job(ranked, staff, settings):
    settings.EXPORT_SYNC_MAX_COMPARISONS = 1  # any valid export here would be a job
    client = staff_api(staff)
    refusals = {
        "apply to pairs": {"format": "argilla", "drop_ties": "true"},
        "use format trl": {"format": "hh", "pairs_from": "all"},
        "go with pairs_from rating-margin": {"format": "trl", "aspect": "helpfulness"},
        "above 0": {"format": "trl", "pairs_from": "rating-margin", "min_margin": "0"},
        "no aspect 'tone'": {"format": "trl", "pairs_from": "rating-margin", "aspect": "tone"},
        "source all, human or imported": {"format": "oasst", "source": "ai_judge"},
    }
    for needle, params in refusals.items():
        response = client.get(EXPORT, params)
        assert response.status_code == 400, params
        assert needle in response.json()["detail"], response.json()
    assert client.get(EXPORT, {"format": "excel"}).status_code == 400
    assert not ExportJob.objects.exists()


def test_a_large_set_export_becomes_a_job_whose_file_holds_every_set(
    ranked, staff, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    client = staff_api(staff)
    settings.EXPORT_SYNC_MAX_COMPARISONS = 4  # the four rankings: streamed
    assert client.get(EXPORT, {"format": "oasst"}).status_code == 200
    settings.EXPORT_SYNC_MAX_COMPARISONS = 3
    asked = client.get(EXPORT, {"format": "oasst"})
    assert asked.status_code == 202
    job = asked.json()
    assert (job["format"], job["status"]) == ("oasst", "queued")
    assert job["file_name"].startswith("demo-oasst-")

    export_job_execute(job_id=job["id"])  # what the worker does
    done = client.get(job["url"]).json()
    assert (done["status"], done["error"], done["rows_done"], done["rows_total"]) == (
        "succeeded",
        "",
        2,
        2,
    )
    rows, manifest = rows_of(client.get(done["download_url"]))
    assert manifest["counts"]["rows"] == 2
    # One tree per set, each with both labelers' ranking events.
    assert [len(r["prompt"]["events"]["ranking"]) for r in rows] == [2, 2]
    assert all(len(r["prompt"]["replies"]) == 3 for r in rows)


def test_the_page_offers_the_set_formats_and_its_form_downloads_them(ranked, client, staff):
    client.force_login(staff)
    html = client.get("/projects/demo/export/").content.decode()
    # Sets first, the default, on a project that ranks; the pairs' formats after them.
    menu = html.split('<select name="format">', 1)[1].split("</select>", 1)[0]
    assert menu.startswith('<optgroup label="Rankings and ratings"><option value="ultrafeedback">')
    for name in ("helpsteer2", "argilla", "oasst", "trl", "hh"):
        assert f'<option value="{name}">' in menu
    assert 'name="pairs_from"' in html and '<option value="best-vs-rest">' in html
    assert 'id="sets-note"' in html

    # The form's GET, every field sent as the page sends it.
    response = client.get(EXPORT, {**FORM, "format": "argilla"})
    assert response.status_code == 200
    rows, _ = rows_of(response)
    assert len(rows) == 2 and all(len(r["responses"]) == 2 for r in rows)
    response = client.get(EXPORT, {**FORM, "format": "trl-conversational", "pairs_from": "all"})
    rows, _ = rows_of(response)
    assert len(rows) == 12 and rows[0]["chosen"][0]["role"] == "assistant"


def test_a_pairwise_project_page_offers_pairs_only(client, staff):
    ProjectFactory(slug="pairs")
    client.force_login(staff)
    html = client.get("/projects/pairs/export/").content.decode()
    assert '<option value="trl">' in html and "<optgroup" not in html
    assert 'name="pairs_from"' not in html and 'value="argilla"' not in html
