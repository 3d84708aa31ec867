"""bf16 training with float32 master weights (rewardtrain.core.precision) and its use in train()."""

import torch
from torch import nn

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.evaluation import evaluate
from rewardtrain.core.model import load_backbone, rewards
from rewardtrain.core.precision import MasterWeights, use_master_weights
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.core.training import train
from tests.rewardtrain.test_training import keyword_rows


def _batch(tokenizer):
    enc = tokenizer(["w1 w2 good w3", "w4 w5"], padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def test_model_runs_in_bf16_while_masters_and_tables_stay_float32(backbone):
    model, tok = load_backbone(backbone)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    masters = MasterWeights(model)
    tables = {n for n, m in model.named_modules() if isinstance(m, nn.Embedding)}
    for name, param in model.named_parameters():
        in_table = name.rsplit(".", 1)[0] in tables
        assert param.dtype == (torch.float32 if in_table else torch.bfloat16), name
    # The optimizer's tensors: float32, the same values the model started from.
    for name, tensor in masters.named_parameters():
        assert tensor.dtype == torch.float32 and tensor.requires_grad
        assert torch.equal(tensor, start[name])

    rewards(model, *_batch(tok)).sum().backward()
    masters.collect_grads()
    for (name, param), (_, tensor) in zip(
        model.named_parameters(), masters.named_parameters(), strict=True
    ):
        assert tensor.grad is not None and tensor.grad.dtype == torch.float32, name
        if param is not tensor:  # a bf16 weight: its gradient moved to the master
            assert param.grad is None
    # A second backward accumulates (in float32) onto the first.
    first = {name: t.grad.clone() for name, t in masters.named_parameters()}
    rewards(model, *_batch(tok)).sum().backward()
    masters.collect_grads()
    for name, tensor in masters.named_parameters():
        assert torch.allclose(tensor.grad, 2 * first[name], rtol=1e-2, atol=1e-6), name


def test_updates_below_bf16_resolution_are_kept(backbone):
    model, _ = load_backbone(backbone)
    masters = MasterWeights(model)
    weight = model.bert.encoder.layer[0].attention.self.query.weight
    master = dict(masters.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"]
    before = master.detach().clone()
    with torch.no_grad():
        for _ in range(100):
            master.add_(1e-6)  # each far below bf16's step near these weights
            masters.push()
    assert torch.allclose(master, before + 1e-4, atol=1e-6)
    assert torch.equal(weight, master.to(torch.bfloat16))
    with masters.float32():
        assert weight.dtype == torch.float32 and torch.equal(weight, master)
    assert weight.dtype == torch.bfloat16
    masters.finish()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.equal(weight, master)
    # The embedding hooks are gone: lookups are float32 again.
    assert model.bert.embeddings.word_embeddings(torch.tensor([1])).dtype == torch.float32


def test_default_is_master_weights_on_cpu_and_autocast_on_cuda():
    cfg = TrainConfig()
    assert use_master_weights(cfg, "cpu", bf16=True)
    assert not use_master_weights(cfg, "cuda", bf16=True)
    assert not use_master_weights(cfg, "cpu", bf16=False)
    assert not use_master_weights(TrainConfig(bf16_master_weights=False), "cpu", bf16=True)
    assert use_master_weights(TrainConfig(bf16_master_weights=True), "cuda", bf16=True)


def test_training_with_master_weights_learns_and_returns_a_float32_model(backbone):
    cfg = TrainConfig(
        backbone=backbone,
        learning_rate=1e-3,
        epochs=3,
        max_length=64,
        device="cpu",
        bf16=True,
        bf16_master_weights=True,
    )
    result = train(keyword_rows(400, 1), keyword_rows(50, 2), cfg)
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    test = keyword_rows(200, 3)
    r_c, r_r = RewardScorer(result.model, result.tokenizer, "cpu").score_pairs(test)
    assert evaluate(test, r_c, r_r, n_bootstrap=0)["accuracy"] >= 0.9


def test_training_steps_smaller_than_bf16_resolution_still_move_the_weights(backbone):
    # lr 1e-7: AdamW's first steps move each weight by about lr, which bf16 weights (a step of
    # ~1e-4 near 0.05) would round away; the float32 masters keep them.
    initial, _ = load_backbone(backbone)
    cfg = TrainConfig(
        backbone=backbone,
        learning_rate=1e-7,
        warmup_ratio=0.0,
        weight_decay=0.0,
        epochs=1,
        batch_size=8,
        device="cpu",
        bf16=True,
        bf16_master_weights=True,
    )
    result = train(keyword_rows(16, 1), keyword_rows(4, 2), cfg)
    name = "bert.encoder.layer.0.output.dense.weight"
    before = dict(initial.named_parameters())[name].detach()
    after = dict(result.model.named_parameters())[name].detach()
    moved = (after - before).abs()
    assert after.dtype == torch.float32
    assert moved.max() > 0 and moved.max() < 1e-6
    # Rounded to bf16 the weights are (nearly all) the ones they started from.
    same = (after.to(torch.bfloat16) == before.to(torch.bfloat16)).float().mean()
    assert same > 0.99
