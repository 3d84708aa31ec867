"""LoRA, decoder backbones and gradient checkpointing in the training loop (rewardtrain.core.lora,
rewardtrain.core.prepare), on a tiny random Llama."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, ViTConfig, ViTModel

from rewardtrain.core.config import ConfigError, TrainConfig
from rewardtrain.core.lora import ADAPTER_DIR
from rewardtrain.core.model import BackboneError, load_backbone
from rewardtrain.core.result import save_model
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.core.training import train
from tests.rewardtrain.test_training import keyword_rows
from tests.rewardtrain.tiny import gpt2_tokenizer, make_llama


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return str(make_llama(tmp_path_factory.mktemp("llama"), hidden=64))


def lora_cfg(backbone, **kw):
    values = dict(
        backbone=backbone,
        lora_r=4,
        epochs=3,
        batch_size=8,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        device="cpu",
        bf16=False,
    )
    return TrainConfig(**{**values, **kw})


def test_lora_trains_a_small_share_and_the_merged_folder_scores_as_the_scorer(llama, tmp_path):
    rows = keyword_rows(48, seed=1)
    result = train(rows[:40], rows[40:], lora_cfg(llama))
    assert result.lora_r == 4
    assert 0 < result.trainable_params <= 0.10 * result.total_params
    # Learned: validation accuracy above chance after 3 epochs on the keyword rule.
    assert result.history[-1]["val_accuracy"] >= 0.75

    before = RewardScorer(result.model, result.tokenizer, "cpu").score_pairs(rows[40:])
    save_model(result, tmp_path / "v1", metrics={})
    # A plain transformers folder: no peft needed to load it, no adapter keys in it.
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "v1")
    assert not any("lora" in name for name, _ in plain.named_parameters())
    after = RewardScorer.load(tmp_path / "v1", device="cpu").score_pairs(rows[40:])
    for b, a in zip(before[0] + before[1], after[0] + after[1], strict=True):
        assert abs(a - b) <= 1e-4
    adapter = json.loads((tmp_path / "v1" / ADAPTER_DIR / "adapter_config.json").read_text())
    assert adapter["r"] == 4
    assert (tmp_path / "v1" / ADAPTER_DIR / "adapter_model.safetensors").exists()


def test_lora_warm_start_goes_on_from_the_saved_adapter(llama, tmp_path):
    rows = keyword_rows(48, seed=2)
    first = train(rows[:40], rows[40:], lora_cfg(llama, epochs=1))
    save_model(first, tmp_path / "v1", metrics={})
    v1_scores = RewardScorer.load(tmp_path / "v1", device="cpu").score_pairs(rows[40:])

    # No step at all: the warm-started model must score as v1 does (adapter + head restored).
    resumed = train(
        rows[:40],
        rows[40:],
        lora_cfg(llama, epochs=1, learning_rate=0.0),
        init_from=str(tmp_path / "v1"),
    )
    save_model(resumed, tmp_path / "v2", metrics={})
    v2_scores = RewardScorer.load(tmp_path / "v2", device="cpu").score_pairs(rows[40:])
    for a, b in zip(v1_scores[0] + v1_scores[1], v2_scores[0] + v2_scores[1], strict=True):
        assert abs(a - b) <= 1e-4
    # A different rank starts fresh adapters on v1's merged weights: same start, too.
    other = train(
        rows[:40],
        rows[40:],
        lora_cfg(llama, lora_r=2, epochs=1, learning_rate=0.0),
        init_from=str(tmp_path / "v1"),
    )
    scores = RewardScorer(other.model, other.tokenizer, "cpu").score_pairs(rows[40:])
    for a, b in zip(v1_scores[0], scores[0], strict=True):
        assert abs(a - b) <= 1e-4


def test_lora_on_modules_the_model_lacks_is_a_clear_error(llama):
    rows = keyword_rows(12, seed=3)
    with pytest.raises(BackboneError, match="LoRA cannot wrap this 'llama' model"):
        train(rows[:10], rows[10:], lora_cfg(llama, lora_target_modules="no_such_proj"))


def test_an_architecture_without_a_classifier_is_named(tmp_path):
    config = ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=8)
    ViTModel(config).save_pretrained(tmp_path)
    gpt2_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(BackboneError, match="'vit' model .*no sequence-classification class"):
        load_backbone(str(tmp_path))


def test_gradient_checkpointing_gives_the_same_weights(llama):
    rows = keyword_rows(24, seed=4)
    plain = train(rows[:20], rows[20:], lora_cfg(llama, lora_r=0, epochs=1, learning_rate=1e-3))
    checkpointed = train(
        rows[:20],
        rows[20:],
        lora_cfg(llama, lora_r=0, epochs=1, learning_rate=1e-3, gradient_checkpointing=True),
    )
    assert checkpointed.gradient_checkpointing and not plain.gradient_checkpointing
    a, b = plain.model.state_dict(), checkpointed.model.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


def test_attention_kernel_setting_reaches_the_model(llama):
    model, _ = load_backbone(llama, attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    with pytest.raises(ConfigError, match="attn_implementation"):
        TrainConfig(attn_implementation="fast")


def test_full_fine_tuning_records_every_parameter_as_trained(llama):
    rows = keyword_rows(12, seed=5)
    result = train(rows[:10], rows[10:], lora_cfg(llama, lora_r=0, epochs=1))
    assert result.lora_r is None and result.world_size == 1
    assert result.trainable_params == result.total_params > 0
    assert result.tokens_per_second > 0
    assert torch.isfinite(torch.tensor(result.best_val_loss))


@pytest.mark.parametrize("ratio", [1.0, 4.0])
def test_loraplus_steps_the_b_matrices_ratio_times_as_far(llama, ratio):
    # One step from B = 0: A gets no gradient yet (it reaches the loss only through B), and
    # Adam's first step moves every other weight by the learning rate, whatever its gradient.
    rows = keyword_rows(10, seed=6)
    cfg = lora_cfg(
        llama, epochs=1, learning_rate=1e-3, weight_decay=0.0, refit=False, loraplus_lr_ratio=ratio
    )
    result = train(rows[:8], rows[8:], cfg)
    assert result.steps == 1
    b_moves = [p.abs().max().item() for n, p in result.model.named_parameters() if "lora_B" in n]
    assert b_moves and max(b_moves) == pytest.approx(1e-3 * ratio, rel=1e-3)
    head = [p for n, p in result.model.named_parameters() if "score" in n and p.requires_grad]
    start = AutoModelForSequenceClassification.from_pretrained(llama).score.weight
    assert (head[0] - start).abs().max().item() == pytest.approx(1e-3, rel=1e-3)


def test_loraplus_ratio_below_one_is_refused():
    with pytest.raises(ConfigError, match="loraplus_lr_ratio must be at least 1"):
        TrainConfig(loraplus_lr_ratio=0.5)
