"""Rounds of the policy loop (issue 26, item 3): a round is a generation job from a real
`transformers serve`; its pairs, labels, the active model's mean reward of its samples and the
labelers' agreement with that model, on the training page, through the API and through
rewardtrain.client (over real HTTP to a live server)."""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.models import Comparison, GeneratedSample, Pair
from annotate.services.generation import generation_job_create, generator_create
from annotate.services.generation_run import generation_job_execute
from rewardtrain.client import RoundError, fetch_round_export, start_round, wait_for_labels
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.models import RoundScore
from rewardtrain.selectors.rounds import round_rows
from rewardtrain.services.triggers import project_rescore
from tests.factories import ComparisonFactory, UserFactory
from tests.rewardtrain.queue_helpers import broker  # noqa: F401
from tests.rewardtrain.test_exports import saved_version

pytestmark = pytest.mark.django_db


def _round(project, server, prompts: int, *, first: int = 0):
    if not project.generators.exists():
        generator_create(
            project=project,
            name="policy",
            base_url=server.base_url,
            model=server.model,
            temperature=1.0,
            max_tokens=6,
            seed=3,
        )
    texts = [
        [{"role": "user", "content": f"w{i} good w{i + 1}"}] for i in range(first, first + prompts)
    ]
    job = generation_job_create(
        project=project, generators=["policy"], samples=3, prompts=texts, enqueue=False
    )
    return generation_job_execute(job_id=job.pk)


def _vote(pair: Pair, choice: str, n: int = 1) -> None:
    for _ in range(n):
        ComparisonFactory(pair=pair, project=pair.project, choice=choice)


def test_a_round_shows_its_pairs_labels_mean_reward_and_agreement(project, chat_server, tmp_path):
    version = saved_version(project, tmp_path, 1, active=True)
    first = _round(project, chat_server, 3)
    assert first.status == "succeeded", first.error
    assert project_rescore(project_id=project.pk) > 0  # scores pairs, then the round

    score = RoundScore.objects.get(job=first, model_version=version)
    samples = GeneratedSample.objects.filter(job=first).select_related("prompt", "response")
    scorer = RewardScorer.load(version.path)
    rewards = scorer.score([s.prompt.messages for s in samples], [s.response.text for s in samples])
    assert score.samples == len(rewards) == 9
    assert score.mean_reward == pytest.approx(sum(rewards) / len(rewards), abs=1e-6)

    pairs = list(Pair.objects.filter(project=project).order_by("id"))
    assert len(pairs) == first.pairs_created > 2
    # Labelers agree with the model on the first pair, disagree on the second, are split on
    # the third (left out): agreement 1 of 2.
    model_side = ["a" if p.model_p_a > 0.5 else "b" for p in pairs]
    other = {"a": "b", "b": "a"}
    _vote(pairs[0], model_side[0], 2)
    _vote(pairs[1], other[model_side[1]], 1)
    _vote(pairs[2], "a")
    _vote(pairs[2], "b")
    ComparisonFactory(pair=pairs[3 % len(pairs)], project=project, choice="a", is_repeat=True)

    second = _round(project, chat_server, 2, first=10)
    rows = round_rows(project=project)
    assert [r["id"] for r in rows] == [first.pk, second.pk]
    row = rows[0]
    assert row["policy"] == [chat_server.model]
    assert (row["samples"], row["pairs"], row["labeled"]) == (9, len(pairs), 3)
    assert row["agreement"] == 0.5 and row["agreement_pairs"] == 2
    assert row["mean_reward"] == pytest.approx(score.mean_reward)
    # The second round waits for its scoring (the rescoring task after its pairs arrive).
    assert rows[1]["mean_reward"] is None and rows[1]["labeled"] == 0
    project_rescore(project_id=project.pk, unscored_only=True)
    assert round_rows(project=project)[1]["mean_reward"] is not None


def test_the_training_page_and_the_api_show_rounds_and_export_one(
    project, staff, chat_server, tmp_path
):
    saved_version(project, tmp_path, 1, active=True)
    job = _round(project, chat_server, 2)
    other = _round(project, chat_server, 2, first=20)
    project_rescore(project_id=project.pk)
    mine = list(Pair.objects.filter(prompt__in=job.prompts.all()))
    _vote(mine[0], "a")
    _vote(Pair.objects.filter(prompt__in=other.prompts.all()).first(), "b")

    client = APIClient()
    client.force_authenticate(staff)
    client.force_login(staff)  # the page is a session page
    page = client.get(f"/projects/{project.slug}/training/")
    assert page.status_code == 200
    assert f'data-round="{job.pk}"' in page.content.decode() and b"rounds-chart" in page.content

    listed = client.get(f"/api/projects/{project.slug}/rounds/").json()
    assert [r["id"] for r in listed] == [job.pk, other.pk]
    detail = client.get(f"/api/projects/{project.slug}/rounds/{job.pk}/").json()
    assert detail["labeled"] == 1 and detail["mean_reward"] is not None

    answer = client.get(f"/api/projects/{project.slug}/rounds/{job.pk}/export/?format=trl")
    assert answer.status_code == 200, answer.content
    lines = [json.loads(x) for x in b"".join(answer.streaming_content).splitlines()]
    assert len(lines) == 1
    assert lines[0]["chosen"] == mine[0].response_a.text
    assert {"prompt", "chosen", "rejected"} <= set(lines[0])

    bad = client.get(f"/api/projects/{project.slug}/rounds/{job.pk}/export/?format=csv")
    assert bad.status_code == 400 and "format must be one of" in bad.json()["detail"]
    assert client.get(f"/api/projects/{project.slug}/rounds/999999/").status_code == 404
    labeler_client = APIClient()
    labeler_client.force_authenticate(UserFactory())
    assert labeler_client.get(f"/api/projects/{project.slug}/rounds/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_training_script_starts_a_round_waits_for_labels_and_fetches_its_export(
    live_server,
    project,
    staff,
    chat_server,
    tmp_path,
    broker,  # noqa: F811
):
    """rewardtrain.client over real HTTP. The script's wait polls the app; between its polls
    (its `pause`) the work of the rest of the loop happens: the worker's generation job, then
    the labelers' judgments."""
    generator_create(
        project=project,
        name="policy",
        base_url=chat_server.base_url,
        model=chat_server.model,
        max_tokens=6,
        seed=1,
    )
    token = Token.objects.create(user=staff).key
    prompts = ["w1 w2 good", "w3 w4 good"]
    job = start_round(
        live_server.url, token, project.slug, generators=["policy"], prompts=prompts, samples=3
    )
    assert job["status"] == "queued"
    steps: list[str] = []
    voted: list[Pair] = []

    def between_polls(seconds: float) -> None:
        if not steps:
            generation_job_execute(job_id=job["id"])  # the generation worker's part
            steps.append("generated")
        elif len(steps) == 1:
            voted.extend(Pair.objects.filter(project=project).order_by("id")[:2])
            for pair in voted:
                _vote(pair, "b")
            steps.append("labeled")

    figures = wait_for_labels(
        live_server.url, token, project.slug, job["id"], labels=2, pause=between_polls
    )
    assert steps == ["generated", "labeled"]
    assert figures["labeled"] == 2 and figures["status"] == "succeeded"

    out = tmp_path / "round.jsonl"
    assert fetch_round_export(live_server.url, token, project.slug, job["id"], str(out)) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["prompt"], r["chosen"]) for r in rows) == sorted(
        (p.prompt.messages[0]["content"], p.response_b.text) for p in voted
    )
    assert Comparison.objects.filter(project=project).count() == 2

    with pytest.raises(RoundError, match="403"):
        start_round(
            live_server.url, "not-a-token", project.slug, generators=["policy"], prompts=prompts
        )
    clock = iter([0.0, 0.0, 11.0])
    with pytest.raises(RoundError, match="2 of 5 labels"):
        wait_for_labels(
            live_server.url,
            token,
            project.slug,
            job["id"],
            labels=5,
            timeout=10,
            clock=lambda: next(clock),
            pause=lambda s: None,
        )
