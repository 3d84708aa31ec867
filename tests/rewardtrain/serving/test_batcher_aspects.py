"""The batcher with an aspect head: requests that ask for aspects and requests that do not
share one forward, each gets its answer, and the scalar is the same either way."""

from __future__ import annotations

import asyncio
import json

import pytest

from rewardtrain.core.scoring import RewardScorer
from rewardtrain.serving.batcher import Batcher, LoadedModel, NoAspects
from tests.rewardtrain.judged_sets import ASPECTS
from tests.rewardtrain.tiny import make_bert, one_thread

HEAD = [{**a, "weight": a.get("weight", 0.65)} for a in ASPECTS]


@pytest.fixture(scope="module")
def scorers(tmp_path_factory):
    """(a tiny BERT with a two-aspect head, the same body with one output)."""
    plain = make_bert(tmp_path_factory.mktemp("plain") / "bert", seed=5)
    rated = make_bert(tmp_path_factory.mktemp("rated") / "bert", seed=5)
    (rated / "prefloop.json").write_text(json.dumps({"max_length": 48, "aspects": HEAD}))
    return RewardScorer.load(rated, device="cpu"), RewardScorer.load(plain, device="cpu")


def score_together(scorer, version, jobs):
    batcher = Batcher(lambda: LoadedModel(scorer, version), max_batch_tokens=10_000, max_wait_s=0.2)
    batcher.start()

    async def all_at_once():
        return await asyncio.gather(
            *(batcher.score(p, r, aspects=a) for p, r, a in jobs), return_exceptions=True
        )

    try:
        with one_thread():
            return asyncio.run(all_at_once())
    finally:
        batcher.stop()


def test_asking_and_not_asking_share_a_batch(scorers):
    rated, _ = scorers
    prompts, responses = ["w1 w2", "w3", "w4"], ["good w5", "bad w6 w7", "good good w8"]
    asked, plain = score_together(
        rated, 3, [(prompts, responses, True), (prompts, responses, False)]
    )
    assert plain.aspects is None and asked.version == plain.version == 3
    assert asked.rewards == pytest.approx(plain.rewards, abs=1e-6)
    with one_thread():
        want = rated.score_aspects(prompts, responses)
    assert asked.rewards == pytest.approx([w["reward"] for w in want], abs=1e-5)
    for got, expected in zip(asked.aspects, want, strict=True):
        assert list(got) == ["helpfulness", "clarity"]
        assert got == pytest.approx(expected["aspects"], abs=1e-5)


def test_a_model_without_an_aspect_head_fails_only_the_request_that_asks(scorers):
    _, plain = scorers
    asked, not_asked = score_together(
        plain, 9, [(["w1"], ["good"], True), (["w1"], ["good"], False)]
    )
    assert isinstance(asked, NoAspects) and "model version 9 has no aspect head" in str(asked)
    assert not_asked.rewards and not_asked.aspects is None
