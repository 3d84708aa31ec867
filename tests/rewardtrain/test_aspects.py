"""Ratings train a multi-objective head (rewardtrain.core.aspects): normalised targets, the
masked mean-squared error, the scalar as the weighted sum, evaluation per aspect, and a saved
model that records its aspects and scores them back."""

import json
import math
import random

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from rewardtrain.core.aspects import (
    HELPSTEER2_ASPECTS,
    RatingError,
    evaluate_ratings,
    parse_aspects,
    rating_targets,
)
from rewardtrain.core.config import ConfigError, TrainConfig
from rewardtrain.core.evaluation import evaluate
from rewardtrain.core.model import load_backbone
from rewardtrain.core.rankings import GroupCollator, encode_groups, group_loss
from rewardtrain.core.result import save_model
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.core.training import train
from tests.rewardtrain.test_training import keyword_rows
from tests.rewardtrain.tiny import make_bert

ASPECTS = [
    {"name": "helpfulness", "min": 0, "max": 4, "weight": 1.0},
    {"name": "verbosity", "min": 1, "max": 3, "weight": -0.25, "description": "length"},
]


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    return str(make_bert(tmp_path_factory.mktemp("bert")))


def rated_rows(n, seed, missing_every=0):
    """Helpfulness 4 with the keyword "good", else 0; verbosity 1-3 by word count; every
    `missing_every`-th response not rated on verbosity."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [f"w{rng.randrange(60)}" for _ in range(rng.randint(2, 9))]
        good = rng.random() < 0.5
        if good:
            words.insert(rng.randrange(len(words) + 1), "good")
        ratings = {"helpfulness": 4 if good else 0, "verbosity": 1 + min(2, len(words) // 4)}
        if missing_every and i % missing_every == 0:
            del ratings["verbosity"]
        prompt = [{"role": "user", "content": f"w{rng.randrange(60)} w{rng.randrange(60)}"}]
        rows.append({"prompt": prompt, "response": " ".join(words), "ratings": ratings})
    return rows


def test_helpsteer2_defaults_are_the_published_weights():
    aspects = parse_aspects(HELPSTEER2_ASPECTS)
    assert [a.name for a in aspects] == [
        "helpfulness",
        "correctness",
        "coherence",
        "complexity",
        "verbosity",
    ]
    assert [a.weight for a in aspects] == [0.65, 0.8, 0.45, 0.55, -0.4]
    assert all((a.min, a.max) == (0, 4) for a in aspects)
    TrainConfig(aspects=HELPSTEER2_ASPECTS)  # a valid config


def test_ratings_are_normalised_and_bad_ones_refused():
    aspects = parse_aspects(ASPECTS)
    assert rating_targets({"helpfulness": 3, "verbosity": 3}, aspects) == [0.75, 1.0]
    missing = rating_targets({"helpfulness": 1}, aspects)
    assert missing[0] == 0.25 and math.isnan(missing[1])
    with pytest.raises(RatingError, match="no aspect named 'tone'"):
        rating_targets({"tone": 2}, aspects)
    with pytest.raises(RatingError, match=r"verbosity rating 0 is outside its scale 1\.\.3"):
        rating_targets({"verbosity": 0}, aspects)
    with pytest.raises(RatingError, match="rates no aspect"):
        rating_targets({}, aspects)


@pytest.mark.parametrize(
    ("aspects", "message"),
    [
        ([{"name": "a", "min": 4, "max": 0, "weight": 1}], "min must be below max"),
        ([{"name": "a", "min": 0, "max": 4}], "needs numbers"),
        ([{"name": "a", "min": 0, "max": 4, "weight": 1}] * 2, "named twice"),
        ([{"name": "a", "min": 0, "max": 4, "weight": 1, "scale": 5}], "unknown key"),
    ],
)
def test_a_config_with_bad_aspects_is_refused(aspects, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(aspects=aspects)


def test_the_masked_squared_error_and_the_weighted_scalar_by_hand(bert_path):
    _, tokenizer = load_backbone(bert_path)
    aspects = parse_aspects(ASPECTS)
    rows = [
        {"prompt": "w1", "response": "w2", "ratings": {"helpfulness": 2, "verbosity": 3}},
        {"prompt": "w1", "response": "w3", "ratings": {"helpfulness": 4}},
        {"prompt": "w1", "chosen": "w4", "rejected": "w5"},
    ]
    items, _ = encode_groups(rows, tokenizer, 64, tie_loss="soft", aspects=aspects)
    batch = GroupCollator(tokenizer.pad_token_id, aspects=aspects)(items)
    # Rows: w2, w3, w4 (the firsts), then w5. Outputs per row: (helpfulness, verbosity).
    r = torch.tensor([[0.5, 0.0], [0.0, 9.0], [1.0, 0.0], [0.0, 0.0]])
    first = ((0.5 - 0.5) ** 2 + (0.0 - 1.0) ** 2) / 2
    second = (0.0 - 1.0) ** 2  # verbosity not rated: its 9.0 is masked out
    # The pair on the scalar: 1.0 * 1.0 - 0.25 * 0 against 0: -log sigma(1).
    pair = math.log(1 + math.exp(-1))
    assert group_loss(r, batch).item() == pytest.approx((first + second + pair) / 3)


@pytest.fixture(scope="module")
def rated(bert_path):
    cfg = TrainConfig(
        backbone=bert_path,
        learning_rate=2e-3,
        epochs=6,
        max_length=64,
        device="cpu",
        refit=False,
        aspects=ASPECTS,
    )
    return train(rated_rows(300, 1, missing_every=3), rated_rows(40, 2), cfg)


def test_ratings_train_each_aspect_and_the_scalar_ranks_pairs(rated):
    scorer = RewardScorer(rated.model, rated.tokenizer, "cpu", 64, parse_aspects(ASPECTS))
    test = rated_rows(200, 3)
    scored = scorer.score_aspects([r["prompt"] for r in test], [r["response"] for r in test])
    outputs = [
        [(s["aspects"][a["name"]] - a["min"]) / (a["max"] - a["min"]) for a in ASPECTS]
        for s in scored
    ]
    metrics = evaluate_ratings(test, outputs, parse_aspects(ASPECTS))
    assert metrics["helpfulness"]["count"] == 200
    assert metrics["helpfulness"]["spearman"] >= 0.8
    assert metrics["helpfulness"]["rmse"] <= 1.0  # on the 0-4 scale
    assert metrics["verbosity"]["spearman"] >= 0.5
    # The scalar is the weighted sum of the normalised outputs.
    for s, o in zip(scored, outputs, strict=True):
        assert s["reward"] == pytest.approx(1.0 * o[0] - 0.25 * o[1], abs=1e-5)
    # Its pairwise accuracy on held-out pairs (the keyword decides).
    pairs = keyword_rows(200, 4)
    r_c, r_r = scorer.score_pairs(pairs)
    assert evaluate(pairs, r_c, r_r, n_bootstrap=0)["accuracy"] >= 0.9


def test_evaluate_ratings_by_hand():
    aspects = parse_aspects(ASPECTS)
    rows = [
        {"ratings": {"helpfulness": 0, "verbosity": 1}},
        {"ratings": {"helpfulness": 4}},
        {"ratings": {"helpfulness": 2, "verbosity": 3}},
    ]
    outputs = [[0.25, 0.0], [1.0, 0.5], [0.5, 0.5]]  # helpfulness 1, 4, 2; verbosity 1, -, 2
    metrics = evaluate_ratings(rows, outputs, aspects)
    assert metrics["helpfulness"]["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert metrics["helpfulness"]["spearman"] == pytest.approx(1.0)
    assert metrics["verbosity"] == {
        "count": 2,
        "rmse": pytest.approx(math.sqrt(0.5)),
        "spearman": pytest.approx(1.0),
    }


def test_the_saved_model_records_its_aspects_and_scores_them_back(rated, tmp_path):
    path = tmp_path / "v1"
    save_model(rated, path, metrics={})
    meta = json.loads((path / "prefloop.json").read_text())
    assert [(a["name"], a["weight"]) for a in meta["aspects"]] == [
        ("helpfulness", 1.0),
        ("verbosity", -0.25),
    ]
    assert meta["aspects"][1]["description"] == "length"
    rows = rated_rows(10, 5)
    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    before = RewardScorer(
        rated.model, rated.tokenizer, "cpu", 64, parse_aspects(ASPECTS)
    ).score_aspects(prompts, responses)
    loaded = RewardScorer.load(path, device="cpu")
    assert loaded.score_aspects(prompts, responses) == before
    assert loaded.score(prompts, responses) == [b["reward"] for b in before]
    pair = {"prompt": prompts[0], "chosen": responses[0], "rejected": responses[1]}
    (chosen,), (rejected,) = loaded.score_pairs_aspects([pair])
    both = loaded.score_aspects([prompts[0], prompts[0]], responses[:2])
    # Scored in another batch (other padding): equal up to float rounding.
    for got, want in ((chosen, both[0]), (rejected, both[1])):
        assert got["reward"] == pytest.approx(want["reward"], abs=1e-5)
        assert got["aspects"] == pytest.approx(want["aspects"], abs=1e-5)
    # Plain transformers reads one output per aspect.
    assert AutoModelForSequenceClassification.from_pretrained(path).config.num_labels == 2


def test_a_model_without_aspects_answers_no_aspects(bert_path):
    model, tokenizer = load_backbone(bert_path)
    scored = RewardScorer(model, tokenizer, "cpu").score_aspects(["w1"], ["w2"])
    assert scored[0]["aspects"] == {} and isinstance(scored[0]["reward"], float)


def test_a_decoder_trains_on_ratings_rankings_and_pairs_together(tmp_path):
    # A decoder reads its aspects through its score head at each row's last token: [N, A]
    # outputs for the groups' row indices, as the encoder's classifier gives them.
    from tests.rewardtrain.test_rankings import keyword_rankings
    from tests.rewardtrain.tiny import make_gpt2

    path = str(make_gpt2(tmp_path / "gpt2"))
    cfg = TrainConfig(
        backbone=path, epochs=1, max_length=64, device="cpu", refit=False, aspects=ASPECTS
    )
    rows = rated_rows(16, 1) + keyword_rankings(8, 1) + keyword_rows(8, 1)
    result = train(rows, rated_rows(4, 2) + keyword_rankings(2, 2), cfg)
    assert result.steps == 2 and result.history[-1]["val_accuracy"] is not None
    scorer = RewardScorer(result.model, result.tokenizer, "cpu", 64, parse_aspects(ASPECTS))
    scored = scorer.score_aspects(["w1"], ["w2 good"])
    assert set(scored[0]["aspects"]) == {"helpfulness", "verbosity"}
