"""Aspects from the reward server and from score_pairs: a project trained on ratings answers
each rated aspect beside the scalar reward when asked (`"aspects": true`, `--aspects`); a model
without an aspect head is a 400 (a CommandError) naming the problem."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from rewardtrain.core.scoring import RewardScorer
from rewardtrain.models import ModelVersion, TrainingRun
from rewardtrain.services import run_create, run_execute, version_activate
from tests.rewardtrain.judged import use_tiny_backbone
from tests.rewardtrain.judged_sets import RATING, add_prompts, judge_all, set_task
from tests.rewardtrain.serving.conftest import get, post, wait_until
from tests.rewardtrain.tiny import one_thread

pytestmark = [pytest.mark.django_db(transaction=True)]

ITEMS = [
    {"prompt": "w1 w2", "response": "good good good w4"},
    {"prompt": [{"role": "user", "content": "w3"}], "response": "bad bad bad w5"},
]
ROWS = [
    {"prompt": "w1 w2", "chosen": "good good good w4", "rejected": "bad bad bad w5"},
    {"prompt": "w7", "chosen": "good good bad w8", "rejected": "good bad bad w9"},
]


def rating_trained(project, labeler, backbone) -> ModelVersion:
    """The demo project rated on helpfulness (0-4) and clarity (1-5) and trained on it."""
    use_tiny_backbone(project, backbone)
    set_task(project, RATING)
    add_prompts(project, 20)
    judge_all(project, labeler, rank=False, rate=True)
    run, _ = run_create(project=project, trigger=TrainingRun.Trigger.COMMAND)
    run = run_execute(run_id=run.pk)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return run.model_version


def test_the_server_answers_aspects_when_asked_and_only_from_an_aspect_head(
    project, labeler, backbone, versions, start_server
):
    plain, _ = versions  # tiny models with one output: the reward alone
    version_activate(version=plain)
    server = start_server("--project", "demo", "--no-auth")
    url = f"{server.url}/v1/rewards"

    status, body = post(url, {"items": ITEMS, "aspects": True})
    assert status == 400 and body["field"] == "aspects"
    assert "model version 1 has no aspect head (it was trained without ratings)" in body["error"]
    status, body = post(url, {"items": ITEMS, "aspects": "yes"})
    assert (status, body["error"]) == (400, "aspects: must be true or false, got a string")
    status, body = post(url, {"items": ITEMS})
    assert status == 200 and "aspects" not in body

    trained = rating_trained(project, labeler, backbone)
    if not trained.is_active:
        version_activate(version=trained)
    wait_until(
        lambda: get(f"{server.url}/health")[1]["model_version"] == trained.version,
        what="the rating-trained version to be served",
        timeout=30,
        server=server,
    )
    status, asked = post(url, {"items": ITEMS, "aspects": True})
    assert status == 200, asked
    status, plain_answer = post(url, {"items": ITEMS})
    assert status == 200 and "aspects" not in plain_answer
    # The same scalar either way, and each aspect on its own scale, as the scorer gives them.
    assert asked["rewards"] == pytest.approx(plain_answer["rewards"], abs=1e-5)
    with one_thread():
        want = RewardScorer.load(trained.path, device="cpu").score_aspects(
            [i["prompt"] for i in ITEMS], [i["response"] for i in ITEMS]
        )
    assert [sorted(a) for a in asked["aspects"]] == [["clarity", "helpfulness"]] * 2
    for got, expected in zip(asked["aspects"], want, strict=True):
        assert got == pytest.approx(expected["aspects"], abs=1e-5)
    assert asked["rewards"] == pytest.approx([w["reward"] for w in want], abs=1e-5)

    # OpenRLHF's route takes the flag too.
    status, body = post(f"{server.url}/get_reward", {"query": ["w1 good"], "aspects": True})
    assert status == 200 and sorted(body["aspects"][0]) == ["clarity", "helpfulness"]


def test_score_pairs_writes_aspects_when_asked(project, labeler, backbone, versions, tmp_path):
    source, out = tmp_path / "pairs.jsonl", tmp_path / "scored.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    plain, _ = versions
    version_activate(version=plain)
    with pytest.raises(CommandError, match="this model has no aspect head"):
        call_command(
            "score_pairs", str(source), "--project", "demo", "--out", str(out), "--aspects"
        )
    assert not out.exists()

    trained = rating_trained(project, labeler, backbone)
    version_activate(version=trained)
    call_command("score_pairs", str(source), "--project", "demo", "--out", str(out), "--aspects")
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    with one_thread():
        scorer = RewardScorer.load(trained.path, device="cpu")
        want = scorer.score_aspects(
            [r["prompt"] for r in ROWS] * 2,
            [r["chosen"] for r in ROWS] + [r["rejected"] for r in ROWS],
        )
    for k, row in enumerate(scored):
        assert row["reward_a"] == pytest.approx(want[k]["reward"], abs=1e-5)
        assert row["reward_b"] == pytest.approx(want[len(ROWS) + k]["reward"], abs=1e-5)
        assert row["aspects_a"] == pytest.approx(want[k]["aspects"], abs=1e-5)
        assert row["aspects_b"] == pytest.approx(want[len(ROWS) + k]["aspects"], abs=1e-5)

    # Without the flag, the file is as before: rewards alone.
    call_command("score_pairs", str(source), "--project", "demo", "--out", str(out))
    assert all("aspects_a" not in json.loads(line) for line in out.read_text().splitlines())


def test_a_candidates_row_gets_one_aspects_dict_per_response(project, labeler, backbone, tmp_path):
    trained = rating_trained(project, labeler, backbone)
    source, out = tmp_path / "candidates.jsonl", tmp_path / "scored.jsonl"
    row = {"prompt": "w1", "responses": ["good good good w2", "bad w3", "good bad w4"]}
    source.write_text(json.dumps(row) + "\n")
    call_command(
        "score_pairs", str(source), "--model", trained.path, "--out", str(out), "--aspects"
    )
    (scored,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(scored["rewards"]) == len(scored["aspects"]) == 3
    assert all(sorted(a) == ["clarity", "helpfulness"] for a in scored["aspects"])
