"""The training loop, saving and scoring (rewardtrain.core.training, rewardtrain.core.scoring)."""

import hashlib
import json
import math
import random
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardtrain.core.config import ConfigError, TrainConfig
from rewardtrain.core.evaluation import evaluate
from rewardtrain.core.loop_state import linear_schedule
from rewardtrain.core.losses import pair_loss
from rewardtrain.core.model import (
    BackboneError,
    RewardForward,
    format_input,
    length_chunks,
    load_backbone,
    rewards,
    set_attention,
)
from rewardtrain.core.precision import use_bf16
from rewardtrain.core.result import save_model, training_figures
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.core.training import NotEnoughData, TrainingCancelled, train
from rewardtrain.core.validation import validate
from tests.rewardtrain.tiny import make_bert, make_gpt2, make_llama


def keyword_rows(n, seed, keyword="good", flip=False):
    """Chosen responses contain `keyword`, rejected ones do not (swapped when flip)."""
    rng = random.Random(seed)

    def words(k):
        return [f"w{rng.randrange(60)}" for _ in range(k)]

    rows = []
    for i in range(n):
        good = words(rng.randint(3, 9))
        good.insert(rng.randrange(len(good) + 1), keyword)
        plain = " ".join(words(rng.randint(4, 10)))
        chosen, rejected = (plain, " ".join(good)) if flip else (" ".join(good), plain)
        rows.append(
            {
                "prompt": [{"role": "user", "content": " ".join(words(rng.randint(2, 8)))}],
                "chosen": chosen,
                "rejected": rejected,
                "tie": False,
                "p_chosen": 1.0,
                "strength": None,
                "prompt_key": f"p{seed}-{i}",
            }
        )
    return rows


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    return str(make_bert(tmp_path_factory.mktemp("bert")))


@pytest.fixture(scope="module")
def trained(bert_path):
    # No refit: the loop's own steps, validations and best weights (refit: test_refit_*).
    cfg = TrainConfig(
        backbone=bert_path, learning_rate=1e-3, epochs=3, max_length=64, device="cpu", refit=False
    )
    steps = []
    result = train(keyword_rows(400, 1), keyword_rows(50, 2), cfg, on_step=steps.append)
    return result, steps


def test_tiny_model_learns_a_separable_rule(trained):
    result, _ = trained
    test = keyword_rows(200, 3)
    r_c, r_r = RewardScorer(result.model, result.tokenizer, "cpu").score_pairs(test)
    metrics = evaluate(test, r_c, r_r, n_bootstrap=0)
    assert metrics["accuracy"] >= 0.9
    assert result.history[-1]["val_accuracy"] >= 0.9


def test_progress_is_reported_every_step(trained):
    result, steps = trained
    assert [p.step for p in steps] == list(range(1, result.steps + 1))
    assert result.steps == 3 * math.ceil(400 / 16) == steps[-1].total
    assert steps[-1].epoch == pytest.approx(3.0)
    assert all(p.pairs_per_second > 0 and p.loss >= 0 for p in steps)
    # One validation per epoch, also shown in the progress of that step.
    assert [h["step"] for h in result.history] == [25, 50, 75]
    assert steps[24].val_loss == result.history[0]["val_loss"]
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)
    assert result.truncated == 0 and result.device == "cpu" and not result.stopped_early


def test_save_then_load_gives_identical_rewards(trained, tmp_path):
    result, _ = trained
    path = tmp_path / "v1"
    save_model(result, path, metrics={"accuracy": 1.0}, extra={"run": 7})
    rows = keyword_rows(20, 5)
    before = RewardScorer(result.model, result.tokenizer, "cpu").score_pairs(rows)
    loaded = RewardScorer.load(path, device="cpu")
    assert loaded.score_pairs(rows) == before
    meta = json.loads((path / "prefloop.json").read_text())
    assert meta["metrics"] == {"accuracy": 1.0} and meta["extra"] == {"run": 7}
    assert meta["config"]["learning_rate"] == 1e-3 and "input_format" in meta
    assert (path / "model.safetensors").exists()
    # Plain transformers, with the documented input, gives the same rewards.
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    for row, want in zip(rows, before[0], strict=True):
        ids = tok(format_input(tok, row["prompt"], row["chosen"]), return_tensors="pt")
        with torch.no_grad():
            assert model(**ids).logits[0, 0].item() == pytest.approx(want, abs=1e-5)


def test_decoder_trains_saves_and_loads(tmp_path):
    path = str(make_gpt2(tmp_path / "gpt2"))
    cfg = TrainConfig(backbone=path, learning_rate=1e-3, epochs=1, max_length=64, device="cpu")
    result = train(keyword_rows(64, 1), keyword_rows(16, 2), cfg)
    save_model(result, tmp_path / "out", metrics={})
    rows = keyword_rows(8, 4)
    before = RewardScorer(result.model, result.tokenizer, "cpu").score_pairs(rows)
    assert RewardScorer.load(tmp_path / "out", "cpu").score_pairs(rows) == before
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    ids = tok(format_input(tok, rows[0]["prompt"], rows[0]["chosen"]), return_tensors="pt")
    with torch.no_grad():
        assert model(**ids).logits[0, 0].item() == pytest.approx(before[0][0], abs=1e-5)


def test_warm_start_begins_from_the_saved_weights(trained, bert_path, tmp_path):
    result, _ = trained
    save_model(result, tmp_path / "v1", metrics={})
    cfg = TrainConfig(backbone=bert_path, epochs=1, learning_rate=1e-9, device="cpu")
    again = train(keyword_rows(8, 1), keyword_rows(50, 2), cfg, init_from=str(tmp_path / "v1"))
    assert again.history[0]["val_accuracy"] >= 0.9


def test_cancellation_between_steps(bert_path):
    cfg = TrainConfig(backbone=bert_path, batch_size=4, device="cpu")
    calls, steps = [], []

    def should_stop():
        calls.append(1)
        return len(calls) == 3

    with pytest.raises(TrainingCancelled):
        train(
            keyword_rows(40, 1),
            keyword_rows(4, 2),
            cfg,
            on_step=steps.append,
            should_stop=should_stop,
        )
    assert [p.step for p in steps] == [1, 2]


def test_early_stopping_restores_the_best_weights(bert_path):
    # Validation wants the opposite of training: its loss rises after the first evaluation.
    cfg = TrainConfig(
        backbone=bert_path,
        learning_rate=2e-3,
        warmup_ratio=0.0,
        epochs=5,
        eval_every_steps=2,
        early_stopping_patience=2,
        device="cpu",
        refit=False,
    )
    val = keyword_rows(32, 2, flip=True)
    result = train(keyword_rows(160, 1), val, cfg)
    assert result.stopped_early and result.steps == 6
    losses = [h["val_loss"] for h in result.history]
    assert losses[0] < losses[1] < losses[2]
    assert result.best_val_loss == losses[0]
    from rewardtrain.core.data import PairCollator, encode_rows

    encoded, _ = encode_rows(val, result.tokenizer, cfg.max_length)
    collate = PairCollator(result.tokenizer.pad_token_id)
    # Validated as training did (bf16 autocast where the CPU has native bf16).
    loss, _ = validate(result.model, encoded, collate, cfg, "cpu", use_bf16(cfg, "cpu"))
    assert loss == pytest.approx(losses[0], abs=1e-6)


def test_refit_is_a_run_on_train_and_validation_for_the_chosen_epochs(bert_path):
    # One epoch, one validation at its end: the chosen share is the whole epoch. The refit is
    # then exactly a fresh run on train + validation (64 pairs: 8 steps of 8, not 40's 5).
    cfg = TrainConfig(backbone=bert_path, learning_rate=1e-3, epochs=1, batch_size=8, device="cpu")
    rows, val = keyword_rows(40, 1), keyword_rows(24, 2)
    steps = []
    result = train(rows, val, cfg, on_step=steps.append)
    assert (result.selected_step, result.refit_steps, result.steps) == (5, 8, 13)
    assert [h["step"] for h in result.history] == [5]
    assert result.best_val_loss == result.history[0]["val_loss"]
    # Progress counts on through the refit, whose total is known once the choice is made.
    assert [(p.step, p.total) for p in steps] == [(k, 5) for k in range(1, 6)] + [
        (k, 13) for k in range(6, 14)
    ]
    assert steps[4].val_loss is not None and all(p.val_loss is None for p in steps[5:])
    fresh = train(rows + val, val, replace(cfg, refit=False))
    test = keyword_rows(30, 3)
    want = RewardScorer(fresh.model, fresh.tokenizer, "cpu").score_pairs(test)
    got = RewardScorer(result.model, result.tokenizer, "cpu").score_pairs(test)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_refit_after_early_stopping_trains_the_chosen_share_of_an_epoch(bert_path):
    # Validation wants the opposite of training: the first evaluation (step 2 of an epoch of
    # 10) is chosen; the refit's epoch has 12 steps (160 + 32 pairs), so it trains 2.4 -> 2.
    cfg = TrainConfig(
        backbone=bert_path,
        learning_rate=2e-3,
        warmup_ratio=0.0,
        epochs=5,
        eval_every_steps=2,
        early_stopping_patience=2,
        device="cpu",
    )
    result = train(keyword_rows(160, 1), keyword_rows(32, 2, flip=True), cfg)
    assert result.stopped_early and (result.selected_step, result.refit_steps) == (2, 2)
    assert result.steps == 6 + 2 and len(result.history) == 3
    assert training_figures(result)["refit_steps"] == 2


def test_a_cancelled_refit_raises(bert_path):
    cfg = TrainConfig(backbone=bert_path, epochs=1, batch_size=8, device="cpu")
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) == 7  # the refit's second step (the choosing run has 5)

    with pytest.raises(TrainingCancelled, match="at step 6 of 13"):
        train(keyword_rows(40, 1), keyword_rows(24, 2), cfg, should_stop=should_stop)


def test_plain_and_sdpa_attention_give_the_same_rewards(bert_path):
    model, tok = load_backbone(bert_path)
    model.eval()
    enc = tok(["w1 w2 w3 w4 w5 w6 w7", "w8"], padding=True, return_tensors="pt")
    with torch.no_grad():
        sdpa = rewards(model, enc["input_ids"], enc["attention_mask"])
        set_attention(model, "eager")
        eager = rewards(model, enc["input_ids"], enc["attention_mask"])
    assert model.config._attn_implementation == "eager"
    assert torch.allclose(sdpa, eager, atol=1e-5)


@pytest.mark.parametrize(
    ("bf16", "max_tokens", "narrow_uses"),
    [(True, 16, "eager"), (True, 0, "sdpa"), (False, 16, "sdpa")],
)
def test_cpu_bf16_trains_narrow_batches_with_plain_attention(
    bert_path, monkeypatch, bf16, max_tokens, narrow_uses
):
    import rewardtrain.core.model as model_module

    seen = []

    def spy(model, input_ids, attention_mask):
        seen.append((model.training, input_ids.shape[1], model.config._attn_implementation))
        return rewards(model, input_ids, attention_mask)

    monkeypatch.setattr(model_module, "rewards", spy)
    cfg = TrainConfig(
        backbone=bert_path,
        bf16=bf16,
        cpu_eager_attention_max_tokens=max_tokens,
        batch_size=4,
        epochs=1,
        device="cpu",
    )
    result = train(keyword_rows(40, 1), keyword_rows(8, 2), cfg)
    steps = [(width, attn) for is_training, width, attn in seen if is_training]
    assert {attn for width, attn in steps if width <= 16} == {narrow_uses}
    assert {attn for width, attn in steps if width > 16} == {"sdpa"}
    # Validation and the returned model use the backbone's own attention.
    assert {attn for is_training, _, attn in seen if not is_training} == {"sdpa"}
    assert result.model.config._attn_implementation == "sdpa"


def test_not_enough_data(bert_path):
    cfg = TrainConfig(backbone=bert_path, device="cpu")
    with pytest.raises(NotEnoughData, match="got 1 and 1"):
        train(keyword_rows(1, 1), keyword_rows(1, 2), cfg)
    with pytest.raises(NotEnoughData, match="got 5 and 0"):
        train(keyword_rows(5, 1), [], cfg)
    ties = [dict(r, tie=True, p_chosen=0.5) for r in keyword_rows(5, 1)]
    with pytest.raises(NotEnoughData, match="got 0 and 1"):
        train(ties, keyword_rows(1, 2), TrainConfig(backbone=bert_path, tie_loss="drop"))


def test_missing_backbone_fails_before_training(tmp_path):
    cfg = TrainConfig(backbone=str(tmp_path / "missing"), device="cpu")
    with pytest.raises(BackboneError):
        train(keyword_rows(4, 1), keyword_rows(2, 2), cfg)


def test_ties_are_kept_with_the_soft_loss_and_counted_when_dropped(bert_path):
    rows = keyword_rows(20, 1) + [dict(r, tie=True, p_chosen=0.5) for r in keyword_rows(12, 9)]
    val = keyword_rows(4, 2)
    kept = train(rows, val, TrainConfig(backbone=bert_path, epochs=1, device="cpu", refit=False))
    assert kept.dropped_ties == 0 and kept.steps == 2  # 32 pairs in batches of 16
    cfg = TrainConfig(backbone=bert_path, epochs=1, tie_loss="drop", device="cpu", refit=False)
    dropped = train(rows, val, cfg)
    assert dropped.dropped_ties == 12 and dropped.steps == 2  # 20 pairs


def test_pair_loss_by_hand():
    one, zero = torch.tensor([1.0]), torch.tensor([0.0])
    # -log sigma(1) = log(1 + e^-1)
    assert pair_loss(one, zero, zero, one).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # A margin of 1 moves delta to 0: log 2.
    assert pair_loss(one, zero, one, one).item() == pytest.approx(math.log(2))
    # A tie (target 0.5) at delta = 1: 0.5 log(1 + e^-1) + 0.5 log(1 + e).
    tie = 0.5 * math.log(1 + math.exp(-1)) + 0.5 * math.log(1 + math.e)
    assert pair_loss(one, zero, zero, torch.tensor([0.5])).item() == pytest.approx(tie)
    # Centring adds coefficient * (r_c + r_r)^2 = 0.01 * 4.
    assert pair_loss(one, one, zero, one, 0.01).item() == pytest.approx(math.log(2) + 0.04)


def test_warmup_rounds_up_and_starts_from_zero_as_transformers_trainer_does():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = linear_schedule(optimizer, 0.1, 8)  # 0.8 warmup steps: one
    factors = []
    for _ in range(8):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert factors == pytest.approx([0.0, 1.0, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7])
    optimizer = torch.optim.SGD([weight], lr=1.0)
    linear_schedule(optimizer, 0.0, 8)
    assert optimizer.param_groups[0]["lr"] == 1.0  # no warmup: the first step trains


def test_config_round_trip_and_unknown_keys():
    cfg = TrainConfig(epochs=2, margin_scale=0.5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="lr, nonsense"):
        TrainConfig.from_dict({"lr": 1, "nonsense": 2})
    with pytest.raises(ConfigError):
        TrainConfig(tie_loss="davidson")


def test_length_chunks_cut_where_padding_costs_more_than_a_chunk():
    # Two length clusters far apart: two chunks; close lengths: one.
    assert length_chunks([300, 20, 310, 25, 305, 22], chunk_cost=64) == [[1, 5, 3], [0, 4, 2]]
    assert length_chunks([30, 32, 31, 29], chunk_cost=64) == [[3, 0, 2, 1]]


def test_decoder_rows_in_length_chunks_give_the_unsplit_rewards_and_grads(tmp_path):
    model, _ = load_backbone(str(make_gpt2(tmp_path / "gpt2")))
    assert len(length_chunks([40, 3, 38, 5, 7, 41], chunk_cost=16)) == 2
    torch.manual_seed(0)
    lengths = [40, 3, 38, 5, 7, 41]
    ids = torch.randint(1, 50, (len(lengths), max(lengths)))
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    results = []
    for split in (False, True):
        model.zero_grad()
        r = RewardForward(model, split=split, chunk_cost=16)(ids, mask)
        r.pow(2).sum().backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((r.detach(), grads))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-5, rtol=1e-4)


def _reference_rows(n, seed, long_every=0):
    """Rows with ties, vote shares and strengths; with `long_every`, every such row has a long
    prompt, so that a decoder's batches mix lengths far enough apart to be cut into chunks."""
    rng = random.Random(seed)

    def words(k):
        return " ".join(f"w{rng.randrange(60)}" for _ in range(k))

    rows = []
    for i in range(n):
        long = long_every and i % long_every == 0
        tie = i % 7 == 3
        chosen = words(rng.randint(3, 9)) + " good"
        rejected = words(rng.randint(4, 10))
        rows.append(
            {
                "prompt": words(rng.randint(60, 90) if long else rng.randint(2, 8)),
                "chosen": chosen,
                "rejected": rejected,
                "tie": tie,
                "p_chosen": 0.5 if tie else (0.75 if i % 5 == 0 else 1.0),
                "strength": None if tie else float(i % 3),
            }
        )
    return rows


def _weights_digest(model):
    """sha256 of the state_dict's names and bytes in name order, and the sum of its floats."""
    digest, total = hashlib.sha256(), 0.0
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
        if tensor.is_floating_point():
            total += float(tensor.double().sum())
    return digest.hexdigest(), total


# Produced by the code before the loop's refactor (commit 2839ff5), on one CPU thread, torch
# 2.13.0+cpu, transformers 5.25.0, on a CPU whose torch kernels are AVX2 ones
# (REFERENCE_CPU_CAPABILITY): (steps, stopped early, validation losses, sha256 of the returned
# weights, their sum). Two runs of that code gave the same bytes, so on such a CPU the weights
# are compared exactly: a refactor of the loop must leave every bit where it was. A CPU with
# other kernels (AVX512) rounds matrix products differently: measured on one, the fp32 runs'
# losses agreed to 1e-7 and their weight sums to 1e-8 (relative), while the bf16 run's losses
# moved by up to 1e-3 (relative) over its 12 steps. There the run must agree within those
# roundings (ROUNDING below), which a change of the loop's arithmetic still breaks.
#   bert: fp32, 2 micro-batches per step, margins, validation that disagrees with training
#         (early stopping after the second evaluation, the first one's weights restored);
#   gpt2: fp32 decoder whose batches are cut into length chunks;
#   llama: bf16 with float32 master weights, plain attention for batches up to 16 tokens.
REFERENCE_CPU_CAPABILITY = "AVX2"
# (validation losses, relative; weight sum, relative) on a CPU with other kernels.
ROUNDING = {"bert": (1e-6, 1e-6), "gpt2": (1e-6, 1e-6), "llama": (3e-3, 1e-4)}
REFERENCE_RUNS = {
    "bert": (
        4,
        True,
        [0.9518537521362305, 0.9519570469856262],
        "d5391490be12a9dd2c3667d4255fab97b04926faee74bc082ca6cc37327fdee0",
        315.3077906452329,
    ),
    "gpt2": (
        12,
        False,
        [0.7107692360877991, 0.651871919631958, 0.5987623929977417, 0.5541115403175354]
        + [0.5274755954742432, 0.5178720355033875],
        "533845f3509040968d29f193f4637c7c5a311aa3c61e171fe0e4d2fcfd21b9a6",
        160.72644533870158,
    ),
    "llama": (
        12,
        False,
        [0.6553946137428284, 0.5911908745765686, 0.5480541586875916, 0.5243871212005615]
        + [0.5120253562927246, 0.5060258507728577],
        "71e19f5a9e4d7c6498e9bfefa55d99bee32ebd47cfecb1c2732c7fdacad142d2",
        157.78316088788324,
    ),
}


@pytest.mark.parametrize("kind", sorted(REFERENCE_RUNS))
def test_a_fixed_seed_run_gives_the_reference_weights(kind, tmp_path):
    make = {"bert": make_bert, "gpt2": make_gpt2, "llama": make_llama}[kind]
    options = {
        "bert": {"gradient_accumulation_steps": 2, "margin_scale": 0.5},
        "gpt2": {"max_length": 128},
        "llama": {"bf16": True, "cpu_eager_attention_max_tokens": 16},
    }[kind]
    cfg = TrainConfig(
        backbone=str(make(tmp_path / kind)),
        # bf16 named in full: left to None it would follow this CPU's bf16 support.
        bf16=options.pop("bf16", False),
        batch_size=4,
        epochs=2,
        learning_rate=1e-3,
        eval_every_steps=2,
        early_stopping_patience=1 if kind == "bert" else 2,
        device="cpu",
        # The loop these weights were made by; a refit (the default since) is a second run.
        refit=False,
        **options,
    )
    long_every = 0 if kind == "bert" else 2
    validation = _reference_rows(6, 2, long_every)
    if kind == "bert":
        validation = [dict(r, chosen=r["rejected"], rejected=r["chosen"]) for r in validation]
    result = train(_reference_rows(24, 1, long_every), validation, cfg)
    steps, stopped_early, val_losses, sha256, weight_sum = REFERENCE_RUNS[kind]
    assert (result.steps, result.stopped_early) == (steps, stopped_early)
    got_sha256, got_sum = _weights_digest(result.model)
    got_losses = [h["val_loss"] for h in result.history]
    if torch.backends.cpu.get_cpu_capability() == REFERENCE_CPU_CAPABILITY:
        assert got_losses == pytest.approx(val_losses, abs=1e-7)
        assert got_sum == pytest.approx(weight_sum, rel=1e-9)
        assert got_sha256 == sha256
    else:
        loss_rel, sum_rel = ROUNDING[kind]
        assert got_losses == pytest.approx(val_losses, rel=loss_rel)
        assert got_sum == pytest.approx(weight_sum, rel=sum_rel)
