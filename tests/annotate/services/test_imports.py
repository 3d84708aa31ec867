"""annotate/services/imports.py: every input shape, detection, idempotency and bad lines."""

import csv
import gzip
import json
from pathlib import Path

import pytest

from annotate.importers.candidates import pair_indices
from annotate.models import Choice, Comparison, ImportBatch, Pair, Prompt, Response
from annotate.services import imports
from annotate.services.imports import ImportRejected, import_file

pytestmark = pytest.mark.django_db

HH_ROWS = Path(__file__).parents[1] / "importers" / "data" / "hh_harmless_base_test_rows.jsonl"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def judged(project):
    """{(prompt text, better text, worse text or None, choice)} of the imported comparisons."""
    out = set()
    for c in Comparison.objects.filter(project=project).select_related(
        "pair__prompt", "pair__response_a", "pair__response_b"
    ):
        a, b = c.pair.response_a.text, c.pair.response_b.text
        if c.choice == Choice.A:
            out.add((c.pair.prompt.text, a, b))
        elif c.choice == Choice.B:
            out.add((c.pair.prompt.text, b, a))
        else:
            out.add((c.pair.prompt.text, frozenset((a, b)), c.choice))
    return out


def test_unlabelled_pairs_jsonl_are_open_and_counted(project, tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "Capital of France?", "response_a": "Paris", "response_b": "Lyon"},
            {
                "id": "q2",
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "2+2?"},
                ],
                "response_a": "4",
                "response_b": "5",
                "model_a": "m-small",
                "model_b": "m-large",
                "metadata": {"topic": "math"},
            },
        ],
    )
    result = import_file(project=project, path=path)

    assert (result.format, result.rows, result.pairs_created) == ("pair", 2, 2)
    assert result.comparisons_created == 0 and result.errors == []
    assert Pair.objects.filter(project=project, is_open=True).count() == 2
    math = Prompt.objects.get(external_id="q2")
    assert math.messages[0] == {"role": "system", "content": "Be brief."}
    assert math.metadata == {"topic": "math"}
    assert set(Response.objects.filter(prompt=math).values_list("text", "model_name")) == {
        ("4", "m-small"),
        ("5", "m-large"),
    }
    project.refresh_from_db()
    assert (project.pair_count, project.comparison_count) == (2, 0)
    batch = ImportBatch.objects.get()
    assert (batch.file_name, batch.format, batch.rows, batch.pairs_created) == (
        "pairs.jsonl",
        "pair",
        2,
        2,
    )


@pytest.mark.parametrize(
    ("model", "columns"),
    [
        (Prompt, imports.PROMPT_COLUMNS),
        (Response, imports.RESPONSE_COLUMNS),
        (Pair, imports.PAIR_COLUMNS),
        (Comparison, imports.COMPARISON_COLUMNS),
    ],
)
def test_each_import_insert_names_every_column_of_its_model(model, columns):
    """The inserts are written by hand (annotate/services/bulk.py says why): a column added
    to a model later must be written by the import too, not left to the database."""
    assert sorted(columns) == sorted(
        f.column for f in model._meta.concrete_fields if not f.primary_key
    )


def test_imported_rows_read_back_as_the_orm_would_have_written_them(project, tmp_path):
    path = write_jsonl(
        tmp_path / "one.jsonl",
        [{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go.", "metadata": {"k": [1, 2]}}],
    )
    import_file(project=project, path=path)
    prompt, pair, comparison = Prompt.objects.get(), Pair.objects.get(), Comparison.objects.get()
    assert prompt.messages == [{"role": "user", "content": "Hi?"}]
    assert prompt.metadata == {"k": [1, 2]} and prompt.created_at.tzinfo is not None
    assert all(r.metadata == {} for r in Response.objects.all())
    assert (pair.priority, pair.human_count, pair.is_open, pair.gold) == (0.0, 0, False, "")
    assert (pair.ambiguous, pair.added_by_model, pair.model_p_a) == (False, False, None)
    assert 0 <= pair.random_key < 1 and 0 <= comparison.random_key < 1
    assert (comparison.source, comparison.labeler_id, comparison.reasons) == ("import", None, [])
    assert (comparison.is_repeat, comparison.is_gold_check, comparison.strength) == (
        False,
        False,
        None,
    )
    assert comparison.created_at.tzinfo is not None


def test_csv_is_detected_from_its_header(project, tmp_path):
    path = write_csv(
        tmp_path / "pairs.csv",
        ["prompt", "response_a", "response_b"],
        [["Say hi", "Hi!", "Hello,\nthere"], ["Say bye", "Bye", "Ciao"]],
    )
    result = import_file(project=project, path=path)
    assert (result.format, result.pairs_created) == ("pair", 2)
    assert Response.objects.filter(text="Hello,\nthere").exists()


def test_candidates_are_paired_by_the_rule(project, tmp_path):
    path = write_jsonl(
        tmp_path / "candidates.jsonl",
        [
            {"prompt": "Three", "responses": ["r1", {"text": "r2", "model": "m2"}, "r3"]},
            {"prompt": "Six", "responses": [f"s{i}" for i in range(6)]},
        ],
    )
    result = import_file(project=project, path=path)
    assert result.pairs_created == 3 + 10
    assert Pair.objects.filter(prompt__messages__0__content="Three").count() == 3
    assert Response.objects.get(text="r2").model_name == "m2"

    assert pair_indices(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    six = pair_indices(6)
    assert len(six) == 10 and {i for pair in six for i in pair} == set(range(6))
    assert six[:6] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5)]
    twelve = pair_indices(12)
    assert len(twelve) == 12 and all(sum(i in p for p in twelve) == 2 for i in range(12))


def test_trl_rows_with_text_messages_and_implicit_prompts(project, tmp_path):
    conversation = [{"role": "user", "content": "Name a colour"}]
    path = write_jsonl(
        tmp_path / "trl.jsonl",
        [
            {"prompt": "Best pet?", "chosen": "A dog.", "rejected": "A rock."},
            {
                "prompt": conversation,
                "chosen": [{"role": "assistant", "content": "Blue"}],
                "rejected": [{"role": "assistant", "content": "Seven"}],
            },
            {
                "chosen": conversation + [{"role": "assistant", "content": "Red"}],
                "rejected": conversation + [{"role": "assistant", "content": "Table"}],
            },
        ],
    )
    result = import_file(project=project, path=path)

    assert (result.format, result.pairs_created, result.comparisons_created) == ("trl", 3, 3)
    assert judged(project) == {
        ("Best pet?", "A dog.", "A rock."),
        ("Name a colour", "Blue", "Seven"),
        ("Name a colour", "Red", "Table"),
    }
    assert Prompt.objects.filter(project=project).count() == 2
    assert not Pair.objects.filter(is_open=True).exists()
    c = Comparison.objects.first()
    assert (c.source, c.labeler, c.import_batch_id, c.import_file) == (
        "import",
        None,
        result.batch_id,
        "trl.jsonl",
    )
    project.refresh_from_db()
    assert (project.pair_count, project.comparison_count) == (3, 3)


def test_hh_rlhf_transcripts_split_into_conversation_and_replies(project, tmp_path):
    shared = "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell a joke"
    path = write_jsonl(
        tmp_path / "hh.jsonl",
        [
            {
                "chosen": shared + "\n\nAssistant: Why did the chicken cross the road?",
                "rejected": shared + "\n\nAssistant: No.",
            }
        ],
    )
    result = import_file(project=project, path=path)
    assert result.format == "hh-rlhf"
    prompt = Prompt.objects.get()
    assert prompt.messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell a joke"},
    ]
    assert judged(project) == {("Tell a joke", "Why did the chicken cross the road?", "No.")}


def test_the_published_hh_rlhf_rows_import_with_no_option_and_no_loss(project, tmp_path):
    # Real rows (tests/annotate/importers/data/README.md): four prefer an empty reply, five
    # part before their last reply. The published file is gzip, read as it is.
    path = tmp_path / "test.jsonl.gz"
    path.write_bytes(gzip.compress(HH_ROWS.read_bytes()))

    result = import_file(project=project, path=path)

    assert (result.format, result.rows, result.errors) == ("hh-rlhf", 9, [])
    assert (result.pairs_created, result.comparisons_created) == (9, 9)
    empty = Response.objects.filter(text="")
    assert empty.count() == 4
    for comparison in Comparison.objects.filter(pair__response_a__in=empty):
        assert comparison.choice == Choice.A
    for comparison in Comparison.objects.filter(pair__response_b__in=empty):
        assert comparison.choice == Choice.B
    assert Comparison.objects.filter(source=Comparison.Source.IMPORT).count() == 9
    # Imported judgments are training data: nothing of this is served to labelers.
    assert not Pair.objects.filter(is_open=True).exists()


def test_empty_judged_replies_import_in_every_shape_the_export_writes(project, tmp_path):
    q = [{"role": "user", "content": "How do I pick a lock?"}]
    path = write_jsonl(
        tmp_path / "trl.jsonl",
        [
            {"prompt": "q1", "chosen": "", "rejected": "Like so."},
            {
                "prompt": q,
                "chosen": [{"role": "assistant", "content": ""}],
                "rejected": [{"role": "assistant", "content": "With a pin."}],
            },
        ],
    )
    assert import_file(project=project, path=path).comparisons_created == 2
    path = write_jsonl(
        tmp_path / "openai.jsonl",
        [
            {
                "input": {"messages": q},
                "preferred_output": [{"role": "assistant", "content": ""}],
                "non_preferred_output": [{"role": "assistant", "content": "Easy."}],
            }
        ],
    )
    assert import_file(project=project, path=path).comparisons_created == 1
    assert judged(project) == {
        ("q1", "", "Like so."),
        ("How do I pick a lock?", "", "With a pin."),
        ("How do I pick a lock?", "", "Easy."),
    }


def test_an_empty_prompt_or_user_turn_is_still_a_bad_line(project, tmp_path):
    path = write_jsonl(
        tmp_path / "trl.jsonl",
        [
            {"prompt": "", "chosen": "", "rejected": "x"},
            {
                "prompt": [{"role": "user", "content": ""}],
                "chosen": [{"role": "assistant", "content": ""}],
                "rejected": [{"role": "assistant", "content": "x"}],
            },
            {"prompt": "q", "chosen": None, "rejected": "x"},
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=path)
    assert caught.value.errors == [
        (1, "prompt is empty"),
        (2, "prompt message 1 is empty"),
        (3, "chosen is missing"),
    ]


def test_openai_preference_rows(project, tmp_path):
    path = write_jsonl(
        tmp_path / "openai.jsonl",
        [
            {
                "input": {
                    "messages": [{"role": "user", "content": "Hello"}],
                    "tools": [],
                },
                "preferred_output": [{"role": "assistant", "content": "Hi there!"}],
                "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
            }
        ],
    )
    result = import_file(project=project, path=path)
    assert result.format == "openai"
    assert judged(project) == {("Hello", "Hi there!", "Go away.")}
    assert Prompt.objects.get().metadata == {"input": {"tools": []}}


def test_arena_csv_with_turn_lists_ties_and_multi_turn(project, tmp_path):
    header = ["id", "model_a", "model_b", "prompt", "response_a", "response_b"]
    header += ["winner_model_a", "winner_model_b", "winner_tie"]
    path = write_csv(
        tmp_path / "arena.csv",
        header,
        [
            ["1", "ma", "mb", '["Q1"]', '["A wins"]', '["B loses"]', 1, 0, 0],
            ["2", "ma", "mb", '["Q2"]', '["A loses"]', '["B wins"]', 0, 1, 0],
            ["3", "ma", "mb", "Q3", "same-ish", "same-ish too", 0, 0, 1],
            ["4", "ma", "mb", '["T1", "T2"]', '["a1", "a2"]', '["b1", "b2"]', 1, 0, 0],
        ],
    )
    result = import_file(project=project, path=path)
    assert (result.format, result.comparisons_created) == ("arena", 4)
    assert judged(project) == {
        ("Q1", "A wins", "B loses"),
        ("Q2", "B wins", "A loses"),
        ("Q3", frozenset({"same-ish", "same-ish too"}), "tie"),
        ("T1", "a1\n\nUser: T2\n\nAssistant: a2", "b1\n\nUser: T2\n\nAssistant: b2"),
    }
    assert Response.objects.get(text="B wins").model_name == "mb"
    arena_left = Comparison.objects.get(import_key="id:1")
    assert arena_left.left == "a" and arena_left.pair.response_a.text == "A wins"


def test_arena_battles_with_all_four_winners(project, tmp_path):
    def conv(q, a):
        return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]

    rows = [
        {"question_id": f"b{i}", "model_a": "x", "model_b": "y", "winner": w,
         "conversation_a": conv(f"Q{i}", f"x{i}"), "conversation_b": conv(f"Q{i}", f"y{i}"),
         "language": "English"}
        for i, w in enumerate(["model_a", "model_b", "tie", "tie (bothbad)"])
    ]  # fmt: skip
    result = import_file(project=project, path=write_jsonl(tmp_path / "battles.jsonl", rows))
    assert (result.format, result.comparisons_created) == ("arena-battle", 4)
    assert judged(project) == {
        ("Q0", "x0", "y0"),
        ("Q1", "y1", "x1"),
        ("Q2", frozenset({"x2", "y2"}), "tie"),
        ("Q3", frozenset({"x3", "y3"}), "both_bad"),
    }
    assert Prompt.objects.get(external_id="b0").metadata == {"language": "English"}


def test_label_studio_export(project, tmp_path):
    def task(i, *annotations):
        data = {"prompt": f"P{i}", "answer1": f"left{i}", "answer2": f"right{i}"}
        return {"id": i, "data": data, "annotations": list(annotations)}

    def vote(aid, selected, cancelled=False):
        result = [{"type": "pairwise", "value": {"selected": selected}, "from_name": "pw"}]
        return {"id": aid, "result": result, "was_cancelled": cancelled}

    tasks = [
        task(1, vote(11, "left")),
        task(2, vote(21, "right"), vote(22, "left")),
        task(3),
        task(4, vote(41, "left", cancelled=True)),
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks, indent=2))
    result = import_file(project=project, path=path)

    assert (result.format, result.rows, result.pairs_created) == ("label-studio", 4, 4)
    assert result.comparisons_created == 3
    assert judged(project) == {
        ("P1", "left1", "right1"),
        ("P2", "right2", "left2"),
        ("P2", "left2", "right2"),
    }
    assert set(Comparison.objects.values_list("import_key", flat=True)) == {
        "id:1:11",
        "id:2:21",
        "id:2:22",
    }
    open_prompts = set(
        Pair.objects.filter(is_open=True).values_list("prompt__external_id", flat=True)
    )
    assert open_prompts == {"3", "4"}


def test_judgment_follows_the_response_when_the_pair_is_stored_swapped(project, tmp_path):
    write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Q", "response_a": "Y", "response_b": "X"}])
    import_file(project=project, path=tmp_path / "p.jsonl")
    write_jsonl(tmp_path / "t.jsonl", [{"prompt": "Q", "chosen": "X", "rejected": "Y"}])
    result = import_file(project=project, path=tmp_path / "t.jsonl")

    assert result.pairs_created == 0 and result.comparisons_created == 1
    pair = Pair.objects.get()
    assert (pair.response_a.text, pair.response_b.text) == ("Y", "X")
    assert Comparison.objects.get().choice == Choice.B
    assert pair.is_open, "an existing pair keeps its state"


def test_importing_the_same_file_twice_adds_nothing(project, tmp_path):
    row = {"prompt": "Q", "chosen": "good", "rejected": "bad"}
    path = write_jsonl(
        tmp_path / "trl.jsonl",
        [row, row, {"prompt": "R", "chosen": "yes", "rejected": "no"}, {"id": 7, **row}],
    )
    first = import_file(project=project, path=path)
    # Identical rows are separate judgments of one pair; an id is a judgment of its own.
    assert (first.pairs_created, first.comparisons_created, first.duplicates_skipped) == (2, 4, 0)

    second = import_file(project=project, path=path)
    assert (second.rows, second.pairs_created, second.comparisons_created) == (4, 0, 0)
    assert second.duplicates_skipped == 4
    assert Comparison.objects.count() == 4 and Pair.objects.count() == 2
    project.refresh_from_db()
    assert (project.pair_count, project.comparison_count) == (2, 4)


def test_bad_lines_import_nothing_and_are_all_named(project, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "ok", "chosen": "a", "rejected": "b"}),
                "{not json",
                json.dumps({"prompt": "", "chosen": "a", "rejected": "b"}),
                "",
                json.dumps({"prompt": "x", "chosen": "same", "rejected": "same"}),
                json.dumps({"prompt": "y", "chosen": 3, "rejected": "b"}),
                "[1, 2]",
                json.dumps({"prompt": "fine", "chosen": "c", "rejected": "d"}),
            ]
        )
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=path)

    assert caught.value.errors == [
        (2, "is not valid JSON (Expecting property name enclosed in double quotes, column 2)"),
        (3, "prompt is empty"),
        (5, "chosen and rejected are the same text: nothing to compare"),
        (6, "chosen must be text, not a number"),
        (7, "is not a JSON object"),
    ]
    assert "5 bad lines" in caught.value.message
    assert not Pair.objects.exists() and not ImportBatch.objects.exists()
    project.refresh_from_db()
    assert project.pair_count == 0


def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(project, tmp_path):
    path = write_csv(
        tmp_path / "pairs.csv",
        ["prompt", "response_a", "response_b"],
        [["Q1", "a", "b"], ["Q2", "", "b"], ["Q3", "c", "d", "extra"], ["Q4", "e", "f"]],
    )
    result = import_file(project=project, path=path, skip_invalid=True)
    assert (result.rows, result.pairs_created) == (2, 2)
    assert result.errors == [(3, "response_a is empty"), (4, "has 1 more cells than the header")]
    assert ImportBatch.objects.get().errors == [
        [3, "response_a is empty"],
        [4, "has 1 more cells than the header"],
    ]


def test_an_unknown_shape_is_refused_with_the_known_shapes(project, tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"question": "Q", "answer": "A"}])
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=path)
    message = caught.value.message
    assert "Unrecognised shape: line 1 has the fields answer, question" in message
    for name in [
        "pair",
        "candidates",
        "trl",
        "hh-rlhf",
        "openai",
        "arena",
        "arena-battle",
        "label-studio",
    ]:
        assert f"- {name}: " in message


def test_rows_of_another_shape_are_bad_lines_of_the_detected_one(project, tmp_path):
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [{"prompt": "Q", "response_a": "a", "response_b": "b"}, {"prompt": "Q", "response_a": "a"}],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(project=project, path=path)
    assert caught.value.errors == [(2, "response_b is missing")]


def test_duplicates_across_batches_and_a_shared_prompt(project, tmp_path, monkeypatch):
    monkeypatch.setattr("annotate.services.imports.BATCH_ROWS", 2)
    rows = [
        {"prompt": "Q", "chosen": "c1", "rejected": "r1"},
        {"prompt": "Q", "chosen": "c2", "rejected": "r1"},
        {"prompt": "Q", "chosen": "c1", "rejected": "r1"},
        {"prompt": "Q", "response_a": "c1", "response_b": "r1"},
        {"prompt": "Q", "chosen": "r1", "rejected": "c1"},
    ]
    path = write_jsonl(tmp_path / "trl.jsonl", rows[:3] + [rows[4]])
    result = import_file(project=project, path=path)
    # Rows 1 and 3 are one judgment twice (two comparisons); row 5 judges the same pair the
    # other way round, in a later batch.
    assert (result.pairs_created, result.comparisons_created, result.duplicates_skipped) == (
        2,
        4,
        0,
    )
    pair = Pair.objects.get(response_a__text="c1")
    assert sorted(pair.comparisons.values_list("choice", flat=True)) == ["a", "a", "b"]
    assert Response.objects.count() == 3 and Prompt.objects.count() == 1

    again = import_file(project=project, path=path)
    assert (again.pairs_created, again.comparisons_created, again.duplicates_skipped) == (0, 0, 4)


def test_ultrafeedback_rows_carry_the_prompt_twice(project, tmp_path):
    def conv(reply):
        return [
            {"role": "user", "content": "Explain tides"},
            {"role": "assistant", "content": reply},
        ]

    rows = [
        {"prompt": "Explain tides", "prompt_id": "p-1", "chosen": conv("The moon."), "rejected": conv("Wind."), "score_chosen": 9.0},
        {"prompt": "Explain tides", "prompt_id": "p-1", "chosen": conv("The moon."), "rejected": conv("Fish.")},
    ]  # fmt: skip
    result = import_file(project=project, path=write_jsonl(tmp_path / "uf.jsonl", rows))
    assert (result.format, result.pairs_created, result.comparisons_created) == ("trl", 2, 2)
    prompt = Prompt.objects.get()
    assert (prompt.external_id, prompt.messages) == (
        "p-1",
        [{"role": "user", "content": "Explain tides"}],
    )
    assert prompt.metadata == {"score_chosen": 9.0}
    assert judged(project) == {
        ("Explain tides", "The moon.", "Wind."),
        ("Explain tides", "The moon.", "Fish."),
    }


def test_a_shared_prompt_id_does_not_merge_judgments_but_a_row_id_does(project, tmp_path):
    rows = [
        {"prompt_id": "p", "prompt": "Q", "chosen": "a", "rejected": "b"},
        {"prompt_id": "p", "prompt": "Q", "chosen": "b", "rejected": "a"},
        {"id": "r1", "prompt": "Q", "chosen": "a", "rejected": "b"},
        {"id": "r1", "prompt": "Q", "chosen": "b", "rejected": "a"},
    ]
    result = import_file(project=project, path=write_jsonl(tmp_path / "t.jsonl", rows))
    assert (result.comparisons_created, result.duplicates_skipped) == (3, 1)


def test_new_pairs_are_handed_to_scoring_after_commit(
    project, tmp_path, django_capture_on_commit_callbacks
):
    path = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": "Q", "response_a": "a", "response_b": "b"}]
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        import_file(project=project, path=path)
    assert len(callbacks) == 1  # without an active model it queues nothing
    with django_capture_on_commit_callbacks() as callbacks:
        import_file(project=project, path=path)
    assert callbacks == []
