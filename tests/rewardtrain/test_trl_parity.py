"""The training loop is TRL's RewardTrainer step for step: given the same input text and the same
pairs in each step, float32, both reach the same weights. What is left to tell the two apart on
the decoder bench (bench/train_vs_trl.py --decoder) is the input text (prefloop's role names
against TRL's prompt + response + EOS), the batch order each draws from its seed, and bf16's
rounding: not the schedule, warm-up, weight decay, AdamW's settings, clipping, the loss's
reduction, the effective batch or the token the reward is read at."""

import pytest
import torch

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.training import train
from tests.rewardtrain.tiny import gpt2_tokenizer, one_thread

# TRL's text for a non-conversational row is prompt + response + EOS; this template makes
# prefloop's input (format_input) the same string.
PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    "{% if not add_generation_prompt %}{{ eos_token }}{% endif %}"
)
STEPS = 3


def _rows(n: int, seed: int) -> list[dict]:
    rng = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        words = [f"w{int(i)}" for i in torch.randint(0, 60, (8,), generator=rng)]
        cut = int(torch.randint(2, 6, (1,), generator=rng))
        # The prompt ends with a space: TRL joins prompt and response with nothing between.
        prompt = " ".join(words[:cut]) + " "
        rows.append(
            {
                "prompt": prompt,
                "chosen": "good " + " ".join(words[cut:]),
                "rejected": "bad " + " ".join(words[cut : cut + 1]),
            }
        )
    return rows


def _llama(path) -> str:
    """A tiny random Llama with a pad token of its own: TRL's classifier reads the last token
    that is not the pad token, which would skip an EOS that doubles as pad."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = gpt2_tokenizer()
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    tokenizer.chat_template = PLAIN_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _trl(backbone: str, rows: list[dict], lora_r: int, tmp_path) -> tuple[list[float], dict]:
    """TRL's per-step training losses and final weights: every pair in each step, so that no
    batch order is involved."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    args = RewardConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=len(rows),
        num_train_epochs=STEPS,
        learning_rate=3e-3,
        weight_decay=0.01,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=True,
        seed=0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    peft_config = None
    if lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(
            task_type="SEQ_CLS",
            r=lora_r,
            lora_alpha=2 * lora_r,
            lora_dropout=0.0,
            target_modules="all-linear",
        )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    # peft's wrapper adds a prefix to the names of the model it wraps.
    return losses, {
        name.removeprefix("base_model.model."): p.detach().clone()
        for name, p in trainer.model.named_parameters()
    }


@pytest.mark.slow
@pytest.mark.parametrize("lora_r", [0, 4], ids=["full", "lora"])
def test_with_the_same_text_and_pairs_the_loop_reaches_trls_weights(lora_r, tmp_path):
    backbone = _llama(tmp_path / "llama")
    rows = _rows(12, 1)
    with one_thread():
        trl_losses, trl_weights = _trl(backbone, rows, lora_r, tmp_path)
        losses = []
        cfg = TrainConfig(
            backbone=backbone,
            batch_size=len(rows),
            epochs=STEPS,
            learning_rate=3e-3,
            # float32: the loops' arithmetic, without bf16's rounding. (Length chunks give the
            # unsplit rewards and gradients: test_training's own test.)
            bf16=False,
            device="cpu",
            refit=False,
            early_stopping_patience=STEPS,
            # The same adapters as TRL's (LoRA draws its A matrices after the same seeding).
            lora_r=lora_r,
            lora_alpha=2 * lora_r or 16,
            # TRL's optimizer gives B the learning rate of everything else: plain LoRA.
            loraplus_lr_ratio=1.0,
        )
        # Validated on its training pairs: the lowest validation loss is then the last step's,
        # and the returned weights are the last ones, as TRL's are.
        result = train(rows, rows, cfg, on_step=lambda p: losses.append(p.loss))
    assert result.selected_step == STEPS
    # TRL logs each step's loss rounded to 4 significant digits.
    assert losses == pytest.approx(trl_losses, rel=1e-3)
    assert len(losses) == STEPS
    ours = dict(result.model.named_parameters())
    start = _start(backbone)
    # LoRA's B matrices start at zero.
    moved = max(
        (w - start[n]).abs().max().item() if n in start else w.abs().max().item()
        for n, w in trl_weights.items()
        if n in start or "lora_B" in n
    )
    assert moved > 1e-3  # training moved the weights: the comparison below means something
    assert set(ours) == set(trl_weights)
    # The two sum a step's pairs in different orders; AdamW's first steps move a weight by
    # about the learning rate whatever its gradient's size, so a near-zero gradient's rounding
    # shows as ~1e-6 in a few weights (one of 20,000 here), a thousandth of the moves.
    for name, weight in trl_weights.items():
        assert torch.allclose(ours[name], weight, atol=2e-5, rtol=0), name


def _start(backbone: str) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    return dict(model.named_parameters())
