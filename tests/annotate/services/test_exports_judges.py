"""AI judges' comparisons in exports: marked `ai_judge` in the raw rows, counted in the
manifest and the dataset card, and left out on request (source human, imported, or no_ai),
through the service, the command and the API."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from annotate.models import Comparison, Project
from annotate.services.exports import ExportError, ExportOptions, dataset_export
from tests.annotate.export_data import judged_project
from tests.factories import JudgeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(project, labeler):
    """The export tests' judged project, and an AI judge that read three of its pairs."""
    judged = judged_project(project, labeler)
    judge = JudgeFactory(project=project, name="gpt-judge")
    for pair, choice in ((judged.majority, "b"), (judged.unanimous, "b"), (judged.tie, "a")):
        Comparison.objects.create(
            pair=pair,
            project=project,
            labeler=judge.user,
            source=Comparison.Source.AI_JUDGE,
            choice=choice,
            p_chosen=0.8,
        )
    judged.judge = judge
    return judged


def export(judged, tmp_path, **options):
    out = tmp_path / "out.jsonl"
    manifest = dataset_export(project=judged.project, options=ExportOptions(**options), out=out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return rows, manifest, (tmp_path / "out.jsonl.README.md").read_text(encoding="utf-8")


def sources(rows) -> list[str]:
    return sorted(r["source"] for r in rows)


def test_raw_rows_mark_the_judges_and_the_card_counts_them(judged, tmp_path):
    rows, manifest, card = export(judged, tmp_path, format="raw", real_usernames=True)
    ai = [r for r in rows if r["source"] == "ai_judge"]
    assert len(ai) == 3 and {r["labeler"] for r in ai} == {judged.judge.user.username}
    assert sources(rows).count("human") == 9 and "import" in sources(rows)
    assert manifest["counts"]["ai_judge_comparisons"] == 3
    assert manifest["counts"]["comparisons"] == len(rows)
    assert "human and AI-judge preference data" in card
    assert f"3 of the {len(rows)} comparisons are AI judges'" in card


def test_preference_rows_count_the_judges_votes(judged, tmp_path):
    rows, manifest, card = export(judged, tmp_path, format="trl")
    by_pair = {r["pair_id"]: r for r in rows}
    # The judge's B makes the 2-1 pair a 2-2 tie under majority: one vote like anyone's.
    assert by_pair[judged.majority.id]["tie"] is True
    assert (by_pair[judged.unanimous.id]["votes_chosen"], manifest["counts"]["comparisons"]) == (
        3,
        sum(r["votes_chosen"] + r["votes_rejected"] + r["votes_tie"] for r in rows),
    )
    assert manifest["counts"]["ai_judge_comparisons"] == 3


@pytest.mark.parametrize(
    "options,expected",
    [
        ({"source": "human"}, ["human"] * 9),
        ({"no_ai": True}, ["human"] * 9 + ["import"]),
        ({"source": "imported"}, ["import"]),
        ({"source": "ai_judge"}, ["ai_judge"] * 3),
        ({}, ["ai_judge"] * 3 + ["human"] * 9 + ["import"]),
    ],
)
def test_sources_and_no_ai_choose_whose_comparisons(judged, tmp_path, options, expected):
    rows, manifest, card = export(judged, tmp_path, format="raw", **options)
    assert sources(rows) == expected
    assert manifest["counts"]["ai_judge_comparisons"] == expected.count("ai_judge")
    assert ("AI-judge" in card) == ("ai_judge" in expected)


def test_all_follows_the_projects_judges_in_training(judged, tmp_path):
    Project.objects.filter(pk=judged.project.pk).update(judges_in_training=False)
    judged.project.refresh_from_db()
    rows, _, _ = export(judged, tmp_path, format="raw")
    assert "ai_judge" not in sources(rows)
    rows, _, _ = export(judged, tmp_path, format="raw", source="ai_judge")
    assert sources(rows) == ["ai_judge"] * 3


def test_no_ai_with_only_ai_is_refused(judged, tmp_path):
    with pytest.raises(ExportError, match="leaves nothing"):
        export(judged, tmp_path, format="raw", source="ai_judge", no_ai=True)


def test_the_command_and_the_api_leave_ai_out(judged, tmp_path, staff):
    out = tmp_path / "cmd.jsonl"
    call_command(
        "export_dataset",
        "--project",
        judged.project.slug,
        "--format",
        "raw",
        "--no-ai",
        "--out",
        str(out),
        stdout=io.StringIO(),
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert "ai_judge" not in sources(rows) and rows
    client = APIClient()
    client.force_authenticate(staff)
    for query, ai in (({"no_ai": "true"}, 0), ({"source": "ai_judge"}, 3)):
        response = client.get(
            f"/api/projects/{judged.project.slug}/export/", {"format": "raw", **query}
        )
        assert response.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["counts"]["ai_judge_comparisons"] == ai
        assert manifest["filters"]["no_ai"] is bool(query.get("no_ai"))
