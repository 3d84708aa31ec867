"""Rankings in training with InstructGPT's grouping (rewardtrain.core.rankings): the implied
comparisons and the tie rule, the grouped loss against the pairwise one, one forward per
response, and rankings mixed with pairs in the real loop."""

import math

import pytest
import torch
from torch.nn.modules.module import register_module_forward_hook
from transformers.models.bert.modeling_bert import BertEmbeddings

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.data import PairCollator, encode_rows
from rewardtrain.core.evaluation import evaluate
from rewardtrain.core.losses import batch_loss
from rewardtrain.core.model import load_backbone, rewards
from rewardtrain.core.rankings import (
    GroupCollator,
    RankingError,
    check_ranking,
    encode_groups,
    group_loss,
    implied_pairs,
    is_tie,
    ranking_pair_rows,
)
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.core.training import train
from tests.rewardtrain.test_training import keyword_rows
from tests.rewardtrain.tiny import make_bert


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    return str(make_bert(tmp_path_factory.mktemp("bert")))


def as_rankings(rows):
    """Each pair row as a ranking of two: chosen first."""
    return [
        {"prompt": r["prompt"], "ranking": [[r["chosen"]], [r["rejected"]]], "prompt_key": k}
        for k, r in enumerate(rows)
    ]


def keyword_rankings(n, seed):
    """Rankings of 4: two responses with the keyword (tied, best), then two without (tied)."""
    pairs = keyword_rows(2 * n, seed)
    return [
        {
            "prompt": a["prompt"],
            "ranking": [[a["chosen"], b["chosen"]], [a["rejected"], b["rejected"]]],
        }
        for a, b in zip(pairs[::2], pairs[1::2], strict=True)
    ]


def test_a_ranking_implies_every_pair_across_its_tie_groups():
    ranking = [["a"], ["b", "c"], ["d"]]
    assert implied_pairs(ranking, "soft") == [
        (0, 1, False),
        (0, 2, False),
        (0, 3, False),
        (1, 2, True),  # b and c tied: a 0.5-target comparison under the soft rule
        (1, 3, False),
        (2, 3, False),
    ]
    assert (1, 2, True) not in implied_pairs(ranking, "drop")
    assert len(implied_pairs(ranking, "drop")) == 5
    rows = ranking_pair_rows({"prompt": "q", "ranking": ranking, "prompt_key": "p1"})
    assert [(r["chosen"], r["rejected"], r["tie"]) for r in rows][:4] == [
        ("a", "b", False),
        ("a", "c", False),
        ("a", "d", False),
        ("b", "c", True),
    ]
    assert all(r["prompt_key"] == "p1" and "ranking" not in r for r in rows)
    # K = 9: 36 comparisons, InstructGPT's largest ranking.
    assert len(implied_pairs([[str(i)] for i in range(9)], "soft")) == 36


def test_bad_rankings_are_refused_with_the_problem_named():
    with pytest.raises(RankingError, match="twice"):
        check_ranking([["a"], ["b", "a"]])
    with pytest.raises(RankingError, match="at least 2"):
        check_ranking([["a"]])
    with pytest.raises(RankingError, match="tie groups"):
        check_ranking([["a"], []])
    with pytest.raises(RankingError, match="tie groups"):
        check_ranking("a > b")


def test_a_ranking_of_one_tie_group_is_a_tie():
    assert is_tie({"ranking": [["a", "b", "c"]]})
    assert not is_tie({"ranking": [["a", "b"], ["c"]]})
    assert is_tie({"chosen": "a", "rejected": "b", "tie": True})


def _group_batch(rows, tokenizer, tie_loss="soft", **collator):
    items, _ = encode_groups(rows, tokenizer, 64, tie_loss=tie_loss, aspects=[])
    return items, GroupCollator(tokenizer.pad_token_id, **collator)(items)


def test_with_k_2_the_grouped_loss_is_todays_pairwise_loss(bert_path):
    model, tokenizer = load_backbone(bert_path)
    model.eval()
    rows = keyword_rows(12, 1)
    encoded, _ = encode_rows(rows, tokenizer, 64)
    pairs = PairCollator(tokenizer.pad_token_id)(encoded)
    _, groups = _group_batch(as_rankings(rows), tokenizer)
    # The same rows in the same places: chosen 0..B-1, rejected B..2B-1.
    assert torch.equal(pairs["input_ids"], groups["input_ids"])
    with torch.no_grad():
        r = rewards(model, pairs["input_ids"], pairs["attention_mask"])
    for center in (0.0, 0.01):
        cfg = TrainConfig(center_rewards_coefficient=center)
        want = batch_loss(r, pairs, cfg).item()
        assert batch_loss(r, groups, cfg).item() == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert batch_loss(r, groups, TrainConfig()).item() == batch_loss(r, pairs, TrainConfig()).item()


def test_pairs_keep_their_ties_vote_shares_and_margins_as_groups(bert_path):
    _, tokenizer = load_backbone(bert_path)
    rows = keyword_rows(6, 2)
    rows[0].update(tie=True, p_chosen=0.5)
    rows[1].update(p_chosen=2 / 3, strength=2.0)
    rows[2].update(strength=1.0)
    encoded, _ = encode_rows(rows, tokenizer, 64)
    pairs = PairCollator(tokenizer.pad_token_id, margin_scale=0.5)(encoded)
    _, groups = _group_batch(rows, tokenizer, margin_scale=0.5)
    for key in ("input_ids", "targets", "margins", "ties"):
        assert torch.equal(pairs[key], groups[key]), key
    r = torch.linspace(-1, 1, len(pairs["input_ids"]))
    cfg = TrainConfig(margin_scale=0.5)
    assert batch_loss(r, groups, cfg).item() == pytest.approx(batch_loss(r, pairs, cfg).item())


def test_a_rankings_loss_is_the_mean_over_its_implied_pairs_by_hand(bert_path):
    _, tokenizer = load_backbone(bert_path)
    rows = [{"prompt": "w1", "ranking": [["w2"], ["w3", "w4"], ["w5"]]}]
    items, batch = _group_batch(rows, tokenizer)
    assert len(items[0]["sequences"]) == len(batch["input_ids"]) == 4
    r = torch.tensor([3.0, 2.0, 1.0, 0.0])

    def nll(d, t=1.0):
        return -(t * math.log(1 / (1 + math.exp(-d))) + (1 - t) * math.log(1 / (1 + math.exp(d))))

    decided = [nll(1), nll(2), nll(3), nll(1), nll(2)]  # a>b, a>c, a>d, b>d, c>d
    soft = (sum(decided) + nll(1, 0.5)) / 6  # and b~c at target 0.5
    assert group_loss(r, batch).item() == pytest.approx(soft)
    _, dropped = _group_batch(rows, tokenizer, tie_loss="drop")
    assert group_loss(r, dropped).item() == pytest.approx(sum(decided) / 5)
    # Two groups: the mean of each group's own mean (a pair weighs as much as a ranking).
    two = rows + [{"prompt": "w1", "chosen": "w6", "rejected": "w7"}]
    _, batch = _group_batch(two, tokenizer)
    # Rows by position: a, w6 (the firsts), b, w7 (the seconds), c, d.
    r = torch.tensor([3.0, 3.0, 2.0, 0.0, 1.0, 0.0])
    assert group_loss(r, batch).item() == pytest.approx((soft + nll(3)) / 2)


def test_training_on_k_2_rankings_is_training_on_the_pairs(bert_path):
    cfg = TrainConfig(
        backbone=bert_path, learning_rate=1e-3, epochs=2, max_length=64, device="cpu", refit=False
    )
    train_rows, val_rows = keyword_rows(64, 1), keyword_rows(16, 2)
    on_pairs = train(train_rows, val_rows, cfg)
    on_rankings = train(as_rankings(train_rows), as_rankings(val_rows), cfg)
    assert on_rankings.steps == on_pairs.steps
    for mine, theirs in zip(on_rankings.history, on_pairs.history, strict=True):
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert mine["val_accuracy"] == theirs["val_accuracy"]
    for a, b in zip(
        on_rankings.model.state_dict().values(), on_pairs.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_each_response_is_forwarded_once_per_step(bert_path):
    rows, val = keyword_rankings(24, 1), keyword_rankings(4, 2)
    cfg = TrainConfig(backbone=bert_path, epochs=1, batch_size=8, device="cpu", refit=False)
    forwarded: list[int] = []

    def count(module, args, output):
        # Every input row passes the embeddings once per forward; training steps only.
        if isinstance(module, BertEmbeddings) and module.training:
            forwarded.append(output.shape[0])

    handle = register_module_forward_hook(count)
    try:
        result = train(rows, val, cfg)
    finally:
        handle.remove()
    # 24 rankings of 4 in 3 steps of 8: 32 rows per step, one per response (not 6 x 2 = 12
    # rows per ranking, as its implied pairs (4 decided, 2 ties) batched as pairs would take).
    assert result.steps == 3
    assert forwarded == [32, 32, 32]
    _, tokenizer = load_backbone(bert_path)
    _, batch = _group_batch(rows[:8], tokenizer)
    assert len(batch["input_ids"]) == 32 and len(batch["winners"]) == 8 * 6


def test_rankings_and_pairs_train_together(bert_path):
    cfg = TrainConfig(
        backbone=bert_path, learning_rate=1e-3, epochs=3, max_length=64, device="cpu", refit=False
    )
    rows = keyword_rankings(100, 1) + keyword_rows(150, 3)
    val = keyword_rankings(10, 2) + keyword_rows(10, 4)
    result = train(rows, val, cfg)
    test = keyword_rows(200, 5)
    r_c, r_r = RewardScorer(result.model, result.tokenizer, "cpu").score_pairs(test)
    assert evaluate(test, r_c, r_r, n_bootstrap=0)["accuracy"] >= 0.9
    # Validation accuracy is over the implied decided comparisons: 4 per ranking (its two
    # ties have no winner), 1 per pair.
    assert result.history[-1]["val_accuracy"] >= 0.9


def test_a_ranking_of_one_tie_group_is_dropped_and_counted_under_the_drop_rule(bert_path):
    rows = keyword_rankings(10, 1) + [{"prompt": "w1", "ranking": [["w2", "w3"]]}]
    val = keyword_rankings(2, 2)
    cfg = TrainConfig(backbone=bert_path, epochs=1, device="cpu", tie_loss="drop", refit=False)
    assert train(rows, val, cfg).dropped_ties == 1
    soft = TrainConfig(backbone=bert_path, epochs=1, device="cpu", refit=False)
    assert train(rows, val, soft).dropped_ties == 0
