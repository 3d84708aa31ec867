"""The reward server through its front door: a real `serve_rewards` process on a free port,
called over HTTP as RL trainers call it, reading the test database."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from rewardtrain.core.scoring import RewardScorer
from rewardtrain.services import version_activate
from tests.factories import UserFactory
from tests.rewardtrain.serving.conftest import get, post, wait_until
from tests.rewardtrain.tiny import one_thread

pytestmark = [pytest.mark.django_db(transaction=True)]

CONVERSATION = [
    {"role": "system", "content": "w30"},
    {"role": "user", "content": "w4 w5"},
    {"role": "assistant", "content": "w6"},
    {"role": "user", "content": "w7"},
]
# One shape (TRL) for the whole file: score_pairs tells the shape from the first row, as the
# import does.
ROWS = [
    {"prompt": "w1 w2 w3", "chosen": "good w1 good", "rejected": "bad w9"},
    {"prompt": CONVERSATION, "chosen": "good", "rejected": "bad w8 w9 w10"},
    # Longer than the model's max_length (48): the prompt's start is cut, as in training.
    {"prompt": " ".join(f"w{i % 60}" for i in range(70)), "chosen": "good w2", "rejected": "bad"},
]


def sides(row: dict) -> tuple[str, str]:
    return row["chosen"], row["rejected"]


def expected(version, prompts, responses) -> list[float]:
    with one_thread():
        return RewardScorer.load(version.path, device="cpu").score(prompts, responses)


def test_rewards_equal_score_pairs_behind_token_auth(
    project, staff, labeler, versions, start_server, tmp_path
):
    v1, _ = versions
    server = start_server("--project", "demo", "--max-items", "6")
    rewards_url = f"{server.url}/v1/rewards"
    staff_token = Token.objects.create(user=staff).key
    one = {"items": [{"prompt": "w1", "response": "good"}]}

    # Started before any model exists: 503 JSON until one is activated, then it serves it.
    assert "no active model yet" in server.output()
    status, health = get(f"{server.url}/health")
    assert (status, health["status"], health["model_version"]) == (200, "no_model", None)
    status, body = post(rewards_url, one, token=staff_token)
    assert status == 503 and "project demo has no active model" in body["error"]
    version_activate(version=v1)
    wait_until(
        lambda: get(f"{server.url}/health")[1]["model_version"] == 1,
        what="version 1 to be served",
        timeout=10,
        server=server,
    )

    # The same rows through score_pairs and through the server: the same rewards.
    source, out = tmp_path / "pairs.jsonl", tmp_path / "scored.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    call_command("score_pairs", str(source), "--project", "demo", "--out", str(out))
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    items = [{"prompt": r["prompt"], "response": sides(r)[k]} for k in (0, 1) for r in ROWS]
    status, body = post(rewards_url, {"items": items}, token=staff_token)
    assert status == 200, body
    assert (body["model_version"], body["project"]) == (1, "demo")
    want = [r["reward_a"] for r in scored] + [r["reward_b"] for r in scored]
    assert body["rewards"] == pytest.approx(want, abs=1e-5)

    # Tokens: "Token" and "Bearer" of staff; a labeler only once given "may score".
    assert post(rewards_url, one, token=f"Bearer {staff_token}")[0] == 200
    labeler_token = Token.objects.create(user=labeler).key
    status, body = post(rewards_url, one, token=labeler_token)
    assert status == 403 and "may not score" in body["error"]
    labeler.user_permissions.add(Permission.objects.get(codename="may_score"))
    assert post(rewards_url, one, token=labeler_token)[0] == 200
    gone = UserFactory(username="gone", is_active=False, is_staff=True)
    for token in (None, "Token nope", "Basic abc", Token.objects.create(user=gone).key):
        status, body = post(rewards_url, one, token=token)
        assert status == 401 and body["error"], token

    # Every bad input: a 4xx JSON answer naming the field, never a 500 or a page.
    deep = {"items": json.loads("[" * 30 + "]" * 30)}
    bad = [
        ("/v1/rewards", b"{not json", 400, "body"),
        ("/v1/rewards", b"[1, 2]", 400, "body"),
        ("/v1/rewards", b"[" * 100_000 + b"]" * 100_000, 400, "body"),
        ("/v1/rewards", {}, 400, "items"),
        ("/v1/rewards", {"items": "w1"}, 400, "items"),
        ("/v1/rewards", deep, 400, "items"),
        ("/v1/rewards", {"items": [one["items"][0]] * 7}, 400, "items"),
        ("/v1/rewards", {"items": [5]}, 400, "items[0]"),
        ("/v1/rewards", {"items": [{"response": "x"}]}, 400, "items[0].prompt"),
        ("/v1/rewards", {"items": [{"prompt": 3, "response": "x"}]}, 400, "items[0].prompt"),
        ("/v1/rewards", {"items": [{"prompt": "w1", "response": None}]}, 400, "items[0].response"),
        (
            "/v1/rewards",
            {"items": [{"prompt": [{"role": "user", "content": ["x"]}], "response": "x"}]},
            400,
            "items[0].prompt[0].content",
        ),
        ("/get_reward", {"query": "w1"}, 400, "query"),
        ("/get_reward", {"query": ["w1", 2]}, 400, "query[1]"),
        ("/get_reward", {"query": ["w1"], "prompts": ["w1", "w2"]}, 400, "prompts"),
        ("/nowhere", {}, 404, "path"),
    ]
    for path, payload, code, field in bad:
        raw = payload if isinstance(payload, bytes) else None
        status, body = post(f"{server.url}{path}", payload, token=staff_token, raw=raw)
        assert (status, body.get("field")) == (code, field), (path, body)
        assert body["error"].startswith(f"{field}: ")
    status, body = get(rewards_url)
    assert (status, body["field"]) == (405, "method")
    # The server still answers after all of that.
    assert post(rewards_url, one, token=staff_token)[0] == 200


@pytest.mark.slow
def test_openrlhf_concurrent_clients_and_a_promotion_without_failed_requests(
    project, versions, start_server
):
    v1, v2 = versions
    version_activate(version=v1)
    server = start_server("--project", "demo", "--no-auth")
    assert server.url.startswith("http://127.0.0.1:")
    assert "No auth: listening on the loopback interface only" in server.output()

    # OpenRLHF's request exactly as its client sends it: prompt + response already joined,
    # only a Content-Type header, "rewards" read from the answer.
    prompts = ["w1 w2 ", "w3 w4 w5 ", "w9 "]
    queries = ["w1 w2 good w3", "w3 w4 w5 bad", "w8 not starting with its prompt"]
    answer = requests.post(
        url=f"{server.url}/get_reward",
        json={"query": queries, "prompts": prompts, "labels": ["", "", ""]},
        headers={"Content-Type": "application/json"},
        timeout=180,
    )
    answer.raise_for_status()
    rewards = answer.json()["rewards"]
    assert answer.json()["scores"] == rewards
    with one_thread():
        scorer = RewardScorer.load(v1.path, device="cpu")
        split = scorer.score(prompts[:2], ["good w3", "bad"])
        whole = scorer.score_ids(scorer.encode_texts([queries[2]]))
    assert rewards == pytest.approx(split + whole, abs=1e-5)

    # 16 concurrent clients, each with its own items of its own lengths.
    def client_items(i: int) -> list[dict]:
        return [
            {
                "prompt": " ".join(f"w{(i + k) % 60}" for k in range(1 + (i * 3 + j) % 20)),
                "response": f"good w{j}",
            }
            for j in range(1 + i % 5)
        ]

    answers: dict[int, list] = {}

    def client(i: int) -> None:
        answers[i] = [
            post(f"{server.url}/v1/rewards", {"items": client_items(i)}) for _ in range(3)
        ]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(answers) == list(range(16))
    for i, replies in answers.items():
        items = client_items(i)
        want = expected(v1, [x["prompt"] for x in items], [x["response"] for x in items])
        for status, body in replies:
            assert status == 200, body
            assert body["rewards"] == pytest.approx(want, abs=1e-5)

    # A promotion while requests stream in: none fails, and version 2 answers within 10 s.
    item = {"items": [{"prompt": "w5 w6", "response": "good w7"}]}
    want = {v.version: expected(v, ["w5 w6"], ["good w7"]) for v in versions}
    seen: list[tuple[int, dict]] = []
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            seen.append(post(f"{server.url}/v1/rewards", item))

    streams = [threading.Thread(target=stream) for _ in range(2)]
    for t in streams:
        t.start()
    try:
        wait_until(lambda: len(seen) >= 5, what="requests on version 1", timeout=60, server=server)
        version_activate(version=v2)
        mark = len(seen)
        wait_until(
            lambda: any(b.get("model_version") == 2 for _, b in seen[mark:]),
            what="version 2 to answer",
            timeout=10,
            server=server,
        )
        version_activate(version=v1)  # and a rollback
        mark = len(seen)
        wait_until(
            lambda: any(b.get("model_version") == 1 for _, b in seen[mark:]),
            what="version 1 to answer again",
            timeout=10,
            server=server,
        )
    finally:
        stop.set()
        for t in streams:
            t.join(timeout=60)
    assert [s for s, _ in seen] == [200] * len(seen)
    for _, body in seen:
        assert body["rewards"] == pytest.approx(want[body["model_version"]], abs=1e-5)
    assert {b["model_version"] for _, b in seen} == {1, 2}


def test_no_auth_refuses_a_non_loopback_host(project):
    with pytest.raises(CommandError, match="--no-auth listens on the loopback interface only"):
        call_command("serve_rewards", "--project", "demo", "--no-auth", "--host", "0.0.0.0")
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("serve_rewards", "--project", "nope")
