"""The three edges of the import service: the import_pairs command, the API, the upload page."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from annotate.models import Comparison, ImportBatch, Pair, Project, Ranking, ResponseSet

GOOD = [
    {"prompt": "Q1", "chosen": "good", "rejected": "bad"},
    {"prompt": "Q2", "response_a": "x", "response_b": "y"},  # another shape: a bad line
    {"prompt": "Q3", "chosen": "fine", "rejected": "poor"},
]


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.django_db
def test_command_imports_and_prints_the_counts(project, tmp_path, capsys):
    path = jsonl(tmp_path / "trl.jsonl", [GOOD[0], GOOD[2]])
    call_command("import_pairs", str(path), "--project", "demo")
    out = capsys.readouterr().out
    assert out.strip() == (
        "Imported trl.jsonl into demo (format trl): 2 rows, 2 pairs created, "
        "2 comparisons created, 0 duplicates skipped."
    )
    call_command("import_pairs", str(path), "--project", "demo")
    assert "0 pairs created, 0 comparisons created, 2 duplicates skipped" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_command_with_bad_lines_prints_each_and_exits_non_zero(project, tmp_path, capsys):
    # (An empty chosen is a judgment, not a bad line: an empty prompt is one.)
    path = jsonl(tmp_path / "mixed.jsonl", GOOD + [{"prompt": " ", "chosen": "y", "rejected": "z"}])
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "import_pairs", str(path), "--project", "demo"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "line 2: chosen is missing" in err
    assert "line 4: prompt is empty" in err
    assert "2 bad lines; nothing was imported." in err
    assert not Pair.objects.exists()


@pytest.mark.django_db
def test_command_skip_invalid_imports_the_rest_and_reports(project, tmp_path, capsys):
    path = jsonl(tmp_path / "mixed.jsonl", GOOD)
    call_command("import_pairs", str(path), "--project", "demo", "--skip-invalid")
    captured = capsys.readouterr()
    assert "2 rows, 2 pairs created, 2 comparisons created" in captured.out
    assert "Skipped 1 bad lines:\nline 2: chosen is missing" in captured.err
    assert Comparison.objects.count() == 2


@pytest.mark.django_db
def test_command_unknown_project_needs_create(tmp_path, capsys):
    path = jsonl(tmp_path / "trl.jsonl", [GOOD[0]])
    with pytest.raises(CommandError, match="No project with the slug 'fresh'.*--create"):
        call_command("import_pairs", str(path), "--project", "fresh")
    call_command("import_pairs", str(path), "--project", "fresh", "--create")
    project = Project.objects.get(slug="fresh")
    assert (project.name, project.pair_count, project.comparison_count) == ("fresh", 1, 1)


@pytest.mark.django_db
def test_command_refuses_an_unknown_shape_listing_the_known_ones(project, tmp_path, capsys):
    path = jsonl(tmp_path / "x.jsonl", [{"text": "hello"}])
    with pytest.raises(CommandError) as caught:
        call_command("import_pairs", str(path), "--project", "demo")
    assert "Unrecognised shape" in str(caught.value)
    assert "- hh-rlhf: " in str(caught.value) and "- label-studio: " in str(caught.value)


def upload(client, path, **extra):
    with open(path, "rb") as f:
        return client.post("/api/projects/demo/imports/", {"file": f, **extra}, format="multipart")


@pytest.mark.django_db
def test_api_staff_import_answers_201_with_the_counts(project, staff, tmp_path):
    client = APIClient()
    client.force_authenticate(staff)
    response = upload(client, jsonl(tmp_path / "trl.jsonl", [GOOD[0], GOOD[2]]))
    # 201 also shows the upload went to disk: the view hands the service its temporary file
    # path, which an in-memory upload does not have.
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "batch_id": ImportBatch.objects.get().pk,
        "format": "trl",
        "rows": 2,
        "pairs_created": 2,
        "comparisons_created": 2,
        "sets_created": 0,
        "rankings_created": 0,
        "ratings_created": 0,
        "set_judgments_created": 0,
        "duplicates_skipped": 0,
        "errors": [],
        "error_count": 0,
    }
    batch = ImportBatch.objects.get()
    assert (batch.file_name, batch.created_by) == ("trl.jsonl", staff)
    assert set(Comparison.objects.values_list("import_file", flat=True)) == {"trl.jsonl"}


@pytest.mark.django_db
def test_api_bad_file_is_400_with_every_line(project, staff, tmp_path):
    client = APIClient()
    client.force_authenticate(staff)
    response = upload(client, jsonl(tmp_path / "mixed.jsonl", GOOD))
    assert response.status_code == 400
    assert response.json() == {
        "detail": "1 bad line; nothing was imported.",
        "errors": [{"line": 2, "message": "chosen is missing"}],
        "error_count": 1,
    }
    assert not Pair.objects.exists()

    response = upload(client, tmp_path / "mixed.jsonl", skip_invalid="true")
    assert response.status_code == 201
    assert response.json()["errors"] == [{"line": 2, "message": "chosen is missing"}]
    assert response.json()["rows"] == 2


@pytest.mark.django_db
def test_api_labeler_gets_403(project, labeler, tmp_path):
    client = APIClient()
    client.force_authenticate(labeler)
    assert upload(client, jsonl(tmp_path / "t.jsonl", [GOOD[0]])).status_code == 403
    assert not Pair.objects.exists()


@pytest.mark.django_db
def test_api_schema_lists_the_endpoint(project, staff):
    client = APIClient()
    client.force_authenticate(staff)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/projects/{slug}/imports/"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert "/projects/<slug>/import/" in operation["description"]


@pytest.mark.django_db
def test_page_uploads_and_shows_the_result(project, staff, client, tmp_path):
    client.force_login(staff)
    page = client.get("/projects/demo/import/")
    assert page.status_code == 200 and b"hh-rlhf" in page.content

    with open(jsonl(tmp_path / "trl.jsonl", [GOOD[0]]), "rb") as f:
        done = client.post("/projects/demo/import/", {"file": f})
    assert done.status_code == 200
    assert b"1 pairs created, 1 comparisons created" in done.content
    assert b"trl.jsonl" in done.content  # the recent imports table

    with open(jsonl(tmp_path / "bad.jsonl", GOOD), "rb") as f:
        refused = client.post("/projects/demo/import/", {"file": f})
    assert refused.status_code == 400
    assert b"Nothing was imported" in refused.content
    assert b"line 2: chosen is missing" in refused.content


@pytest.mark.django_db
def test_page_is_staff_only(project, labeler, client):
    assert client.get("/projects/demo/import/").status_code == 302  # to the login page
    client.force_login(labeler)
    assert client.get("/projects/demo/import/").status_code == 403


@pytest.mark.django_db
def test_page_checks_csrf(project, staff, tmp_path):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    with open(jsonl(tmp_path / "t.jsonl", [GOOD[0]]), "rb") as f:
        assert client.post("/projects/demo/import/", {"file": f}).status_code == 403
    assert not Pair.objects.exists()


@pytest.mark.django_db
def test_input_limits_name_the_bad_line_and_cap_the_error_list(project, staff, tmp_path):
    from annotate.importers import readers

    client = APIClient()
    client.force_authenticate(staff)
    deep = tmp_path / "deep.jsonl"
    nested = '{"prompt": "p", "chosen": "a", "rejected": "b", "metadata": %s}' % (
        '{"k": ' * 5000 + "1" + "}" * 5000
    )
    deep.write_text(json.dumps(GOOD[0]) + "\n" + nested + "\n" + "[" * 5000 + "\n")
    response = upload(client, deep)
    assert response.status_code == 400
    assert [e["line"] for e in response.json()["errors"]] == [2, 3]
    assert all("nested deeper than 64 levels" in e["message"] for e in response.json()["errors"])

    many = tmp_path / "many.jsonl"
    many.write_text(json.dumps(GOOD[0]) + "\n" + "{}\n" * 2500)
    body = upload(client, many).json()
    assert body["error_count"] == 2500 and len(body["errors"]) == 1000
    assert body["detail"] == "2,500 bad lines (the first 1,000 are listed); nothing was imported."
    assert body["errors"][-1]["line"] == 1001

    rows = [json.dumps(GOOD[0]), json.dumps({**GOOD[2], "prompt": "x" * 5000}), "{}"]
    long_line = tmp_path / "long.jsonl"
    long_line.write_text("\n".join(rows) + "\n")
    read = list(readers.read_rows(long_line, max_line=1000))
    assert [(r.line, r.error) for r in read[1:]] == [
        (2, "is longer than 1,000 characters"),
        (3, ""),
    ]
    assert not Pair.objects.exists()


@pytest.mark.django_db
def test_upload_over_max_upload_bytes_is_413_and_imports_nothing(
    project, staff, tmp_path, settings
):
    settings.MAX_UPLOAD_BYTES = 2000
    client = APIClient()
    client.force_authenticate(staff)
    path = jsonl(tmp_path / "big.jsonl", [{**GOOD[0], "prompt": f"q{i}"} for i in range(60)])
    response = upload(client, path)
    assert response.status_code == 413
    assert "larger than MAX_UPLOAD_BYTES (2,000 bytes)" in response.json()["detail"]
    page = APIClient()
    page.force_login(staff)
    with open(path, "rb") as f:
        answer = page.post("/projects/demo/import/", {"file": f}, format="multipart")
    assert answer.status_code == 413 and b"MAX_UPLOAD_BYTES" in answer.content
    assert not Pair.objects.exists() and not ImportBatch.objects.exists()


ARGILLA = Path(__file__).parent / "importers" / "data" / "argilla_rows.jsonl"


@pytest.mark.django_db(transaction=True)
def test_a_ranking_file_reports_its_sets_on_every_edge(project, staff, client, capsys):
    """Argilla's three records: three sets, two annotators' rankings of the first and one of the
    second, reported by the command, the API and the page (each from an empty project)."""
    call_command("import_pairs", str(ARGILLA), "--project", "demo")
    out = capsys.readouterr().out
    assert "Sets: 3 created, 3 raters' judgments (3 rankings, 0 ratings) created." in out
    assert (ResponseSet.objects.count(), Ranking.objects.count()) == (3, 3)

    ResponseSet.objects.all().delete()
    Ranking.objects.all().delete()
    ImportBatch.objects.all().delete()
    api = APIClient()
    api.force_authenticate(staff)
    body = upload(api, ARGILLA).json()
    assert {k: body[k] for k in ("sets_created", "rankings_created", "set_judgments_created")} == {
        "sets_created": 3,
        "rankings_created": 3,
        "set_judgments_created": 3,
    }

    ResponseSet.objects.all().delete()
    Ranking.objects.all().delete()
    ImportBatch.objects.all().delete()
    client.force_login(staff)
    with open(ARGILLA, "rb") as f:
        page = client.post("/projects/demo/import/", {"file": f})
    assert b"Sets: 3 created, 3 raters' judgments (3 rankings, 0 ratings)" in page.content
    with open(ARGILLA, "rb") as f:
        again = client.post("/projects/demo/import/", {"file": f})
    assert b'id="import-sets"' not in again.content  # a re-import: nothing new, no sets line
