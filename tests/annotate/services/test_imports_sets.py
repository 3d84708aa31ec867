"""annotate/services/imports_sets.py through import_file: UltraFeedback, HelpSteer2, Argilla and
Open-Assistant rows in their published shapes (tests/annotate/importers/data/) become sets,
rankings and ratings; a re-import adds nothing; bad lines are named and nothing is kept."""

import json
from pathlib import Path

import pytest

from annotate.models import ImportBatch, Prompt, Ranking, Rating, Response, ResponseSet
from annotate.services.imports import ImportRejected, import_file
from annotate.services.rankings import project_task_set

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parents[1] / "importers" / "data"
ULTRAFEEDBACK_ASPECTS = [
    {"name": name, "description": "", "min": 1, "max": 5}
    for name in ("instruction_following", "honesty", "truthfulness", "helpfulness")
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rows_of(name):
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def rankings(project):
    """{(prompt text, ((texts of a group), ...), all_bad)} of the imported rankings."""
    out = []
    for r in Ranking.objects.filter(project=project).select_related("response_set__prompt"):
        texts = dict(
            Response.objects.filter(pk__in=r.response_set.response_ids).values_list("pk", "text")
        )
        groups = tuple(tuple(sorted(texts[i] for i in g)) for g in r.groups)
        out.append((r.response_set.prompt.text, groups, r.all_bad))
    return sorted(out)


def ratings(project):
    return sorted(
        Rating.objects.filter(project=project).values_list("response__text", "aspect", "value")
    )


@pytest.fixture
def uf_project(project):
    return project_task_set(
        project=project, task_kind="ranking_rating", aspects=ULTRAFEEDBACK_ASPECTS
    )


def test_ultrafeedback_rows_become_sets_ratings_and_score_rankings(uf_project, tmp_path):
    result = import_file(project=uf_project, path=DATA / "ultrafeedback_rows.jsonl")
    assert (result.format, result.rows, result.sets_created) == ("ultrafeedback", 2, 2)
    # 3 + 4 + 4 + 4 ratings of the first row ("N/A" is none), 8 of the second.
    assert result.ratings_created == Rating.objects.count() == 19
    assert result.rankings_created == 2
    assert ("15", "truthfulness", 1) not in ratings(uf_project)
    assert ("11", "helpfulness", 2) in ratings(uf_project)
    prime, haiku = rankings(uf_project)  # by prompt text
    # By overall_score, highest first; the haiku's equal scores (7.5) are a tie.
    assert prime[1] == (
        ("13 is a prime number between 10 and 20 (so are 11, 17 and 19).",),
        ("11",),
        ("15",),
    )
    assert len(haiku[1]) == 1 and len(haiku[1][0]) == 2
    judged = ResponseSet.objects.filter(project=uf_project)
    assert judged.count() == 2 and not judged.filter(is_open=True).exists()
    assert Response.objects.get(text="11").metadata["critique"] == "Too short."
    assert Prompt.objects.get(messages__0__content__startswith="Name").metadata["source"] == (
        "evol_instruct"
    )
    # Imported, with the batch and keys that make a re-import add nothing.
    assert set(Rating.objects.values_list("source", flat=True)) == {"import"}
    assert Ranking.objects.filter(import_batch_id=result.batch_id).count() == 2
    again = import_file(project=uf_project, path=DATA / "ultrafeedback_rows.jsonl")
    assert (again.sets_created, again.rankings_created, again.ratings_created) == (0, 0, 0)
    assert again.duplicates_skipped == 2
    assert Rating.objects.count() == 19 and Ranking.objects.count() == 2


def test_unknown_aspects_are_refused_by_name_and_nothing_is_kept(project):
    # The default aspects are HelpSteer2's: helpfulness only matches.
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=DATA / "ultrafeedback_rows.jsonl")
    assert caught.value.errors[0] == (
        1,
        "aspects honesty, instruction_following, truthfulness not among this project's "
        "aspects (helpfulness, correctness, coherence, complexity, verbosity)",
    )
    assert caught.value.error_count == 2
    assert not Prompt.objects.exists() and not ImportBatch.objects.exists()


def test_aspect_names_are_matched_loosely_and_scales_hold(project, tmp_path):
    aspects = [dict(a, min=0, max=4) for a in ULTRAFEEDBACK_ASPECTS]
    aspects[0]["name"] = "Instruction-Following"
    project_task_set(project=project, task_kind="rating", aspects=aspects)
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=DATA / "ultrafeedback_rows.jsonl")
    # 5 is off the 0-4 scale; the names matched, "instruction_following" included.
    assert caught.value.errors == [
        (1, "Instruction-Following is rated from 0 to 4; response 2 got 5"),
        (2, "truthfulness is rated from 0 to 4; response 1 got 5"),
    ]
    assert not Rating.objects.exists()
    rows = rows_of("ultrafeedback_rows.jsonl")[1:]
    rows[0]["completions"][0]["annotations"]["truthfulness"]["Rating"] = "4"
    rows[0]["completions"][1]["annotations"]["truthfulness"]["Rating"] = "4"
    result = import_file(project=project, path=write_jsonl(tmp_path / "uf.jsonl", rows))
    assert "Instruction-Following" in {a for _, a, _ in ratings(project)}
    assert result.ratings_created == 8


def test_helpsteer2_adjacent_rows_of_a_prompt_make_one_set(project):
    result = import_file(project=project, path=DATA / "helpsteer2_rows.jsonl")
    assert (result.format, result.rows, result.sets_created) == ("helpsteer2", 4, 2)
    assert result.ratings_created == 20 and result.rankings_created == 0
    sets = ResponseSet.objects.filter(project=project)
    assert sorted(len(s.response_ids) for s in sets) == [2, 2]
    assert ("Water boils at 90 degrees.", "correctness", 0) in ratings(project)
    again = import_file(project=project, path=DATA / "helpsteer2_rows.jsonl")
    assert again.ratings_created == 0 and Rating.objects.count() == 20


def test_helpsteer2_rating_off_scale_is_a_numbered_line(project, tmp_path):
    rows = rows_of("helpsteer2_rows.jsonl")
    rows[2]["verbosity"] = 7
    rows[3]["tone"] = 2
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=write_jsonl(tmp_path / "hs.jsonl", rows))
    assert caught.value.errors == [
        (3, "verbosity is rated from 0 to 4; response 1 got 7"),
        (
            4,
            "aspect tone not among this project's aspects "
            "(helpfulness, correctness, coherence, complexity, verbosity)",
        ),
    ]
    assert not Response.objects.exists()
    # --skip-invalid keeps the good lines.
    result = import_file(
        project=project, path=write_jsonl(tmp_path / "hs2.jsonl", rows), skip_invalid=True
    )
    assert result.rows == 2 and result.error_count == 2 and result.ratings_created == 10


def test_argilla_records_both_versions(project):
    result = import_file(project=project, path=DATA / "argilla_rows.jsonl")
    assert (result.format, result.rows, result.sets_created) == ("argilla", 3, 3)
    # Two answers on the cat, one submitted on the translation (the draft is not a judgment).
    assert result.rankings_created == 3
    got = rankings(project)
    assert (
        "Suggest a name for a black cat.",
        (("Midnight",), ("Whiskers",), ("Cat",)),
        False,
    ) in got
    # Equal ranks are a tie.
    assert ("Suggest a name for a black cat.", (("Midnight", "Whiskers"), ("Cat",)), False) in got
    assert ("Translate 'thank you' into French.", (("Merci.",), ("Danke.",)), False) in got
    # A record without answers is a set still to be ranked.
    unjudged = ResponseSet.objects.get(prompt__messages__0__content="Is the Earth flat?")
    assert unjudged.is_open and len(unjudged.response_ids) == 2
    assert import_file(project=project, path=DATA / "argilla_rows.jsonl").rankings_created == 0


def test_argilla_bad_rankings_are_named(project, tmp_path):
    rows = rows_of("argilla_rows.jsonl")
    value = rows[0]["responses"][0]["values"]["preference"]["value"]
    value[2]["value"] = "response-1"
    rows[1]["responses"]["ranking"][0]["value"][1]["value"] = "response9"
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=write_jsonl(tmp_path / "a.jsonl", rows))
    assert caught.value.errors == [
        (1, "answer 1 (preference, 7b2c) ranks response-1 twice"),
        (2, "the ranking names response9, which are not fields"),
    ]


def test_oasst_tree_events_are_rankings_and_rank_stands_in_without_them(project):
    result = import_file(project=project, path=DATA / "oasst_trees.jsonl")
    assert (result.format, result.rows, result.sets_created) == ("oasst", 1, 2)
    got = rankings(project)
    boil = "Put it in boiling water for 7 to 9 minutes, then cool it in cold water."
    assert [g for p, g, _ in got if p == "How do I boil an egg?"] == sorted(
        [
            ((boil,), ("Boil water and add the egg.",), ("Eggs cannot be boiled.",)),
            ((boil,), ("Eggs cannot be boiled.",), ("Boil water and add the egg.",)),
        ]
    )
    soft = [g for p, g, _ in got if p == "And a soft-boiled one?"]
    assert soft == [
        (("Boil it for 6 minutes for a runny yolk and set white.",), ("About 6 minutes.",))
    ]
    # The follow-up's prompt is the conversation down to it.
    follow_up = Prompt.objects.get(messages__2__content="And a soft-boiled one?")
    assert [m["role"] for m in follow_up.messages] == ["user", "assistant", "user"]
    assert import_file(project=project, path=DATA / "oasst_trees.jsonl").rankings_created == 0


def test_oasst_rank_that_repeats_is_refused(project, tmp_path):
    tree = rows_of("oasst_trees.jsonl")[0]
    tree["prompt"]["replies"][0]["replies"][0]["replies"][0]["rank"] = 0
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=write_jsonl(tmp_path / "t.jsonl", [tree]))
    assert caught.value.errors == [(1, "prompt reply 1 reply 1: replies: rank 0 repeats")]
    assert not ResponseSet.objects.exists()


def test_a_project_that_ranks_keeps_imported_sets_as_they_came(project):
    project_task_set(project=project, task_kind="ranking", ranking_size=3)
    import_file(project=project, path=DATA / "argilla_rows.jsonl")
    # Sets of 2 from the file stay; no further set is made from their responses.
    assert sorted(len(s.response_ids) for s in ResponseSet.objects.all()) == [2, 2, 3]
