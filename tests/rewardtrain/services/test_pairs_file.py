"""rewardtrain/services/pairs.py score_pairs_file: every file import_pairs reads is scored as
it is, each row kept with its rewards added, and bad lines named as the import names them."""

import csv
import gzip
import json
import math
import shutil

import pytest

from annotate.importers import hh_rlhf
from annotate.services.imports import ImportRejected, import_file
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.services import PairsFileError, score_pairs_file
from tests.annotate.services.test_imports import HH_ROWS

PROMPT = [{"role": "user", "content": "w1"}]
FIRST, SECOND = "good w2", "bad w3"


def conversation(reply):
    return [*PROMPT, {"role": "assistant", "content": reply}]


def reply(text):
    return [{"role": "assistant", "content": text}]


# One row per shape: prompt "w1", first (chosen, preferred, model_a's, left) "good w2".
JSONL_ROWS = {
    "pair": {"prompt": "w1", "response_a": FIRST, "response_b": SECOND, "id": "p1"},
    "trl": {"prompt": "w1", "chosen": FIRST, "rejected": SECOND, "extra": {"k": 1}},
    "trl-conversational": {"prompt": PROMPT, "chosen": reply(FIRST), "rejected": reply(SECOND)},
    "trl-implicit": {"chosen": conversation(FIRST), "rejected": conversation(SECOND)},
    "hh-rlhf": {
        "chosen": f"\n\nHuman: w1\n\nAssistant: {FIRST}",
        "rejected": f"\n\nHuman: w1\n\nAssistant: {SECOND}",
    },
    "openai": {
        "input": {"messages": PROMPT},
        "preferred_output": reply(FIRST),
        "non_preferred_output": reply(SECOND),
    },
    "arena-battle": {
        "question_id": "b1",
        "model_a": "x",
        "model_b": "y",
        "winner": "model_b",
        "conversation_a": conversation(FIRST),
        "conversation_b": conversation(SECOND),
    },
}
LABEL_STUDIO = [
    {
        "id": 1,
        "data": {"prompt": "w1", "answer1": FIRST, "answer2": SECOND},
        "annotations": [{"id": 5, "result": [{"type": "pairwise", "value": {"selected": "left"}}]}],
    }
]
ARENA_HEADER = ["id", "model_a", "model_b", "prompt", "response_a", "response_b"]
ARENA_HEADER += ["winner_model_a", "winner_model_b", "winner_tie"]
ARENA_ROW = ["1", "x", "y", '["w1"]', json.dumps([FIRST]), json.dumps([SECOND]), "0", "1", "0"]


@pytest.fixture
def model_dir(backbone, tmp_path_factory):
    """The tiny BERT as a saved model folder whose inputs are cut to 64 tokens (its positions
    end at 128; the real HH-RLHF rows are longer)."""
    path = tmp_path_factory.mktemp("model") / "bert"
    shutil.copytree(backbone, path)
    (path / "prefloop.json").write_text(json.dumps({"max_length": 64}))
    return path


@pytest.fixture
def scorer(model_dir):
    return RewardScorer.load(model_dir, device="cpu")


def score(model_dir, source, tmp_path):
    out = tmp_path / "scored.jsonl"
    count = score_pairs_file(source=source, out=out, model_dir=model_dir, device="cpu")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert count == len(rows)
    return rows


def assert_scored(row, original, scorer, prompt, first, second):
    assert {k: row[k] for k in original} == original
    reward_a, reward_b = scorer.score([prompt, prompt], [first, second])
    assert row["reward_a"] == pytest.approx(reward_a, abs=1e-5)
    assert row["reward_b"] == pytest.approx(reward_b, abs=1e-5)
    assert row["p_a_better"] == pytest.approx(1 / (1 + math.exp(reward_b - reward_a)))


@pytest.mark.parametrize("shape", JSONL_ROWS)
def test_every_json_lines_shape_is_scored_with_reward_a_for_the_first_side(
    model_dir, scorer, tmp_path, shape
):
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps(JSONL_ROWS[shape]) + "\n", encoding="utf-8")

    (row,) = score(model_dir, source, tmp_path)

    assert_scored(row, JSONL_ROWS[shape], scorer, PROMPT, FIRST, SECOND)


def test_arena_csv_and_label_studio_json_are_scored(model_dir, scorer, tmp_path):
    source = tmp_path / "arena.csv"
    with open(source, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([ARENA_HEADER, ARENA_ROW])
    (row,) = score(model_dir, source, tmp_path)
    assert_scored(
        row, dict(zip(ARENA_HEADER, ARENA_ROW, strict=True)), scorer, PROMPT, FIRST, SECOND
    )

    source = tmp_path / "export.json"
    source.write_text(json.dumps(LABEL_STUDIO), encoding="utf-8")
    (row,) = score(model_dir, source, tmp_path)
    assert_scored(row, LABEL_STUDIO[0], scorer, PROMPT, FIRST, SECOND)


def test_candidates_get_one_reward_per_response(model_dir, scorer, tmp_path):
    original = {"prompt": "w1", "responses": [FIRST, {"text": SECOND, "model": "m"}, FIRST]}
    source = tmp_path / "candidates.jsonl"
    source.write_text(json.dumps(original) + "\n", encoding="utf-8")

    (row,) = score(model_dir, source, tmp_path)

    expected = scorer.score([PROMPT] * 3, [FIRST, SECOND, FIRST])
    assert {k: row[k] for k in original} == original
    assert row["rewards"] == pytest.approx(expected, abs=1e-5)
    assert "reward_a" not in row


def test_the_published_hh_rlhf_rows_are_scored_as_published(model_dir, scorer, tmp_path):
    # Real rows, gzip as published: empty chosen replies, and sides that part before their
    # last reply, each scored on its own conversation (the shared prompt + its own turns).
    source = tmp_path / "test.jsonl.gz"
    source.write_bytes(gzip.compress(HH_ROWS.read_bytes()))
    originals = [json.loads(line) for line in HH_ROWS.read_text(encoding="utf-8").splitlines()]

    rows = score(model_dir, source, tmp_path)

    assert len(rows) == 9
    for row, original in zip(rows, originals, strict=True):
        parsed = hh_rlhf.parse(original)
        (spec,) = parsed.pairs
        assert_scored(row, original, scorer, parsed.prompt, spec.first.text, spec.second.text)
    assert sum(hh_rlhf.parse(o).pairs[0].first.text == "" for o in originals) == 4


@pytest.mark.django_db
def test_bad_lines_are_all_named_as_the_import_names_them(model_dir, project, tmp_path):
    good = json.dumps({"prompt": "w1", "chosen": "good", "rejected": "bad"})
    source = tmp_path / "p.jsonl"
    lines = [good, "{not json", '{"prompt": "w1", "response_a": "x"}', "[1]", "", good]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"

    with pytest.raises(PairsFileError) as caught:
        score_pairs_file(source=source, out=out, model_dir=model_dir, device="cpu")
    with pytest.raises(ImportRejected) as imported:
        import_file(project=project, path=source)

    listed = "".join(f"\nline {line}: {message}" for line, message in imported.value.errors)
    assert str(caught.value) == f"3 bad lines; nothing was written:{listed}"
    assert "line 3: chosen is missing" in listed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]


def test_an_unknown_shape_is_refused_with_the_known_shapes(model_dir, tmp_path):
    source = tmp_path / "p.jsonl"
    source.write_text('{"question": "w1", "answer": "x"}\n', encoding="utf-8")

    with pytest.raises(PairsFileError, match="line 1 has the fields answer, question") as caught:
        score_pairs_file(source=source, out=tmp_path / "o.jsonl", model_dir=model_dir, device="cpu")
    assert "- hh-rlhf:" in str(caught.value) and "- label-studio:" in str(caught.value)
