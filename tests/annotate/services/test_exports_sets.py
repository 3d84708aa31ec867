"""annotate/services/exports_sets.py through dataset_export: the four shapes round-trip
(import, export, import into a fresh project, export again: the same rows), rankings and
ratings expand to TRL pairs as asked, the card says which expansion, and `datasets` reads every
export."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from annotate.models import Ranking, Rating, ResponseSet
from annotate.services.exports import ExportError, ExportOptions, dataset_export
from annotate.services.imports import import_file
from annotate.services.rankings import project_task_set
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parents[1] / "importers" / "data"
UF_ASPECTS = [
    {"name": n, "description": "", "min": 1, "max": 5}
    for n in ("instruction_following", "honesty", "truthfulness", "helpfulness")
]
SHAPES = {
    "ultrafeedback": ("ultrafeedback_rows.jsonl", UF_ASPECTS),
    "helpsteer2": ("helpsteer2_rows.jsonl", None),
    "argilla": ("argilla_rows.jsonl", None),
    "oasst": ("oasst_trees.jsonl", None),
}


def export(project, path, **options):
    return dataset_export(project=project, options=ExportOptions(**options), out=path)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stored(project):
    """The project's judgments by content: rankings as groups of texts, ratings as values."""
    texts = {}
    for s in ResponseSet.objects.filter(project=project).select_related("prompt"):
        texts.update({r.pk: r.text for r in s.prompt.responses.all()})
    rankings = sorted(
        (
            r.response_set.prompt.text,
            tuple(tuple(sorted(texts[i] for i in g)) for g in r.groups),
            r.all_bad,
        )
        for r in Ranking.objects.filter(project=project).select_related("response_set__prompt")
    )
    ratings = sorted(
        Rating.objects.filter(project=project).values_list("response__text", "aspect", "value")
    )
    return rankings, ratings


def fresh(slug, aspects):
    project = ProjectFactory(slug=slug)
    if aspects:
        project_task_set(project=project, task_kind="ranking_rating", aspects=aspects)
    return project


@pytest.mark.parametrize("shape", list(SHAPES))
def test_round_trip_gives_the_same_rows(shape, tmp_path):
    from datasets import load_dataset

    name, aspects = SHAPES[shape]
    first = fresh("first", aspects)
    import_file(project=first, path=DATA / name)
    out = tmp_path / f"{shape}.jsonl"
    manifest = export(first, out, format=shape)
    assert manifest["rows_are"] == "sets" and manifest["counts"]["rows"] > 0
    ds = load_dataset("json", data_files=str(out), split="train")
    assert ds.num_rows == manifest["counts"]["rows"]
    copy = fresh("copy", aspects)
    import_file(project=copy, path=out)
    assert stored(copy) == stored(first)
    # The copy's export is the first export, row for row (set ids and keys aside).
    again = tmp_path / f"{shape}-again.jsonl"
    export(copy, again, format=shape)
    assert len(read_jsonl(again)) == len(read_jsonl(out))
    # Re-importing the export into the first project adds no set.
    sets = ResponseSet.objects.filter(project=first).count()
    import_file(project=first, path=out)
    assert ResponseSet.objects.filter(project=first).count() == sets
    card = Path(f"{out}.README.md").read_text(encoding="utf-8")
    assert f"as `{shape}` JSON Lines" in card


@pytest.fixture
def ranked(project, labeler):
    """Two labelers' rankings of one set of four, one with a tie, and their ratings."""
    import_file(project=project, path=DATA / "helpsteer2_rows.jsonl")
    s = ResponseSet.objects.order_by("id").first()
    a, b = s.response_ids
    bob = UserFactory(username="bob")
    MembershipFactory(project=project, user=bob)
    Ranking.objects.create(response_set=s, project=project, labeler=labeler, groups=[[a], [b]])
    Ranking.objects.create(response_set=s, project=project, labeler=bob, groups=[[a, b]])
    return project


def test_pairs_from_rankings_all_and_best_vs_rest(ranked, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "all.jsonl"
    manifest = export(ranked, out, format="trl", pairs_from="all")
    rows = read_jsonl(out)
    # Alice's ranking gives one pair; Bob's tie gives none.
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("100 degrees Celsius (212 °F) at sea level.", "Water boils at 90 degrees.")
    ]
    assert rows[0]["labeler"].startswith("labeler-") and rows[0]["source"] == "human"
    assert manifest["expansion"] == {"pairs_from": "all", "min_margin": None, "aspect": None}
    card = Path(f"{out}.README.md").read_text(encoding="utf-8")
    assert "rankings by **all implied pairs**" in card
    ds = load_dataset("json", data_files=str(out), split="train")
    assert ds.column_names[:3] == ["prompt", "chosen", "rejected"]

    out = tmp_path / "best.jsonl"
    export(ranked, out, format="trl-conversational", pairs_from="best-vs-rest")
    row = read_jsonl(out)[0]
    assert row["chosen"] == [
        {"role": "assistant", "content": "100 degrees Celsius (212 °F) at sea level."}
    ]
    assert "by **best vs rest**" in Path(f"{out}.README.md").read_text(encoding="utf-8")
    assert load_dataset("json", data_files=str(out), split="train").num_rows == 1


def test_ranked_pairs_of_a_strict_ranking_of_four():
    from annotate.exporters.pairs_from import ranked_pairs

    groups = [[1], [2, 3], [4]]
    assert sorted(ranked_pairs(groups, "all")) == [(1, 2), (1, 3), (1, 4), (2, 4), (3, 4)]
    assert sorted(ranked_pairs(groups, "best-vs-rest")) == [(1, 2), (1, 3), (1, 4)]
    assert len(list(ranked_pairs([[1], [2], [3], [4]], "all"))) == 6


def test_pairs_from_rating_margin(ranked, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "margin.jsonl"
    # Boiling point: mean ratings 2.8 vs 1.0; Hamlet: 2.8 vs 2.6.
    manifest = export(ranked, out, format="trl", pairs_from="rating-margin", min_margin=1.0)
    rows = read_jsonl(out)
    assert [(r["chosen"][:3], r["margin"]) for r in rows] == [("100", 1.8)]
    assert rows[0]["score_chosen"] == 2.8 and rows[0]["score_rejected"] == 1.0
    assert manifest["counts"]["rows"] == 1
    out = tmp_path / "verbosity.jsonl"
    export(ranked, out, format="trl", pairs_from="rating-margin", min_margin=2, aspect="verbosity")
    rows = read_jsonl(out)
    # On verbosity the long Hamlet summary (3) is 2 above the short one (1).
    assert [r["chosen"][:7] for r in rows] == ["Hamlet "]
    card = Path(f"{out}.README.md").read_text(encoding="utf-8")
    assert "ratings by **rating margin**" in card and "on `verbosity`" in card
    assert "at least 2" in card
    assert load_dataset("json", data_files=str(out), split="train").num_rows == 1


def test_bad_options_are_refused(ranked, tmp_path):
    cases = [
        ({"format": "hh", "pairs_from": "all"}, "use format trl or trl-conversational"),
        ({"format": "trl", "pairs_from": "all", "min_margin": 1.0}, "go with pairs_from"),
        ({"format": "trl", "pairs_from": "rating-margin", "aspect": "tone"}, "no aspect 'tone'"),
        ({"format": "oasst", "drop_ties": True}, "apply to pairs"),
    ]
    for options, message in cases:
        with pytest.raises(ExportError, match=message):
            export(ranked, tmp_path / "x.jsonl", **options)


def test_command_takes_pairs_from(ranked, tmp_path):
    out = tmp_path / "cmd.jsonl"
    call_command(
        "export_dataset",
        "--project",
        ranked.slug,
        "--format",
        "trl",
        "--out",
        str(out),
        "--pairs-from",
        "rating-margin",
        "--min-margin",
        "0.1",
    )
    assert len(read_jsonl(out)) == 2
    zipped = tmp_path / "sets.zip"
    call_command(
        "export_dataset", "--project", ranked.slug, "--format", "argilla", "--out", str(zipped)
    )
    import zipfile

    with zipfile.ZipFile(zipped) as archive:
        assert sorted(archive.namelist()) == ["README.md", "demo-argilla.jsonl", "manifest.json"]


@pytest.mark.parametrize("shape", ["argilla", "oasst"])
def test_all_bad_and_ties_round_trip(ranked, tmp_path, shape):
    s = ResponseSet.objects.order_by("id").first()
    carol = UserFactory(username="carol")
    MembershipFactory(project=ranked, user=carol)
    Ranking.objects.create(
        response_set=s,
        project=ranked,
        labeler=carol,
        groups=[[s.response_ids[1]], [s.response_ids[0]]],
        all_bad=True,
    )
    out = tmp_path / f"{shape}.jsonl"
    export(ranked, out, format=shape)
    copy = ProjectFactory(slug="copy")
    import_file(project=copy, path=out)
    # Alice's order, Bob's tie and Carol's all-bad order, as they were.
    assert stored(copy)[0] == stored(ranked)[0]
    assert sorted(Ranking.objects.filter(project=copy).values_list("all_bad", flat=True)) == [
        False,
        False,
        True,
    ]
