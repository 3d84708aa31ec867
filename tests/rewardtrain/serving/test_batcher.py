"""The batcher: requests that arrive together share forwards, sorted by length within a
token budget, and each gets its own rewards in its own order from one model version."""

from __future__ import annotations

import asyncio

import pytest

from rewardtrain.core.scoring import RewardScorer
from rewardtrain.serving.batcher import BadItem, Batcher, LoadedModel, NoModel, plan_batches
from tests.rewardtrain.tiny import make_bert, one_thread


class RecordingScorer(RewardScorer):
    """The real scorer, noting the rows of each forward."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.forwards: list[list[int]] = []

    def score_ids(self, rows):
        self.forwards.append([len(r) for r in rows])
        return super().score_ids(rows)


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    folder = make_bert(tmp_path_factory.mktemp("batcher") / "bert", seed=3)
    loaded = RewardScorer.load(folder, device="cpu")
    return RecordingScorer(loaded.model, loaded.tokenizer, "cpu", max_length=48)


def test_plan_batches_sorts_by_length_within_the_token_budget():
    lengths = [30, 5, 12, 5, 40, 11, 100]
    # Sorted: 5 5 11 12 30 40 100. Rows x widest row stays <= 40, a lone long row included.
    assert plan_batches(lengths, 40) == [[1, 3, 5], [2], [0], [4], [6]]
    assert plan_batches(lengths, 1000) == [[1, 3, 5, 2, 0, 4, 6]]
    assert plan_batches([], 10) == []


def run(coroutine):
    with one_thread():
        return asyncio.run(coroutine)


def test_requests_arriving_together_share_forwards_and_keep_their_order(scorer):
    jobs = [
        (["w1 w2", "w3"], ["good w4", "bad w5 w6 w7"]),
        ([[{"role": "user", "content": "w8"}]], ["good"]),
        (["w9 " * 30, None], ["good w10", "a whole text scored as given"]),
        (["w11"] * 5, [f"w{12 + k} good" for k in range(5)]),
    ]
    batcher = Batcher(lambda: LoadedModel(scorer, 7), max_batch_tokens=10_000, max_wait_s=0.2)
    batcher.start()
    scorer.forwards.clear()

    async def all_at_once():
        return await asyncio.gather(*(batcher.score(p, r) for p, r in jobs))

    try:
        results = run(all_at_once())
    finally:
        batcher.stop()
    # One forward for the 10 items of the four requests, rows sorted by length.
    assert len(scorer.forwards) == 1 and len(scorer.forwards[0]) == 10
    assert scorer.forwards[0] == sorted(scorer.forwards[0])
    for (prompts, responses), result in zip(jobs, results, strict=True):
        assert result.version == 7
        pairs = [i for i, p in enumerate(prompts) if p is not None]
        want = dict(
            zip(
                pairs,
                scorer.score([prompts[i] for i in pairs], [responses[i] for i in pairs]),
                strict=True,
            )
        )
        for i, p in enumerate(prompts):
            if p is None:
                want[i] = scorer.score_ids(scorer.encode_texts([responses[i]]))[0]
        assert result.rewards == pytest.approx([want[i] for i in range(len(prompts))], abs=1e-5)
    assert (batcher.items_scored, batcher.queue_depth) == (10, 0)


def test_a_small_budget_splits_the_batch_and_a_bad_item_fails_its_request_alone(scorer):
    batcher = Batcher(lambda: LoadedModel(scorer, 1), max_batch_tokens=16, max_wait_s=0.2)
    batcher.start()
    scorer.forwards.clear()
    bad_role = [{"role": "user", "content": "w1"}, {"content": "w2"}]

    async def mixed():
        return await asyncio.gather(
            batcher.score(["w1", "w2 w3 w4"], ["good", "bad"]),
            batcher.score([bad_role], ["good"]),
            return_exceptions=True,
        )

    try:
        good, bad = run(mixed())
    finally:
        batcher.stop()
    forwards = list(scorer.forwards)
    # "w1" and "w2 w3 w4" (with [CLS], "User:", "Assistant:" ...) cannot share 16 tokens.
    assert len(forwards) == 2 and all(len(rows) == 1 for rows in forwards)
    assert isinstance(bad, BadItem) and bad.index == 0
    assert good.rewards == pytest.approx(
        scorer.score(["w1", "w2 w3 w4"], ["good", "bad"]), abs=1e-5
    )


def test_no_model_fails_the_request(scorer):
    batcher = Batcher(lambda: None, max_batch_tokens=100, max_wait_s=0)
    batcher.start()
    try:
        with pytest.raises(NoModel):
            run(batcher.score(["w1"], ["good"]))
    finally:
        batcher.stop()
