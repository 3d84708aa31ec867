"""The reward model's training loop: Bradley-Terry on preference rows, one readable function.

Loss per pair, with delta = r_chosen - r_rejected - margin and target t:
    -(t * log sigma(delta) + (1 - t) * log sigma(-delta))
t = 1 is the plain Bradley-Terry loss -log sigma(r_c - r_r - m). Ties use a soft target of
0.5 (and no margin): the loss is smallest when both rewards are equal, it needs no extra
parameter (Rao-Kupper's theta or Davidson's nu would have to be fitted and would change the
decided pairs' probabilities too), and the evaluation's sigma(delta) keeps one meaning.
With soft labels t is the chosen response's vote share.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from rewardtrain.config import TrainConfig
from rewardtrain.data import PairCollator, encode_rows, length_grouped_batches, pair_length
from rewardtrain.model import (
    PLAIN_FORMAT_NOTE,
    default_backbone,
    disable_dropout,
    load_backbone,
    rewards,
    set_attention,
)
from rewardtrain.precision import MasterWeights

# Fewer than this and there is nothing to learn from or to stop early on.
MIN_TRAIN_PAIRS = 2
MIN_VALIDATION_PAIRS = 1


class NotEnoughData(ValueError):
    """Too few preference rows to train (train or validation split)."""


class TrainingCancelled(Exception):
    """should_stop() said so between two steps."""


@dataclass
class Progress:
    step: int
    total: int
    epoch: float
    loss: float
    pairs_per_second: float
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass
class TrainResult:
    model: Any
    tokenizer: Any
    config: TrainConfig
    history: list[dict]
    steps: int
    device: str
    pairs_per_second: float
    truncated: int
    stopped_early: bool
    best_val_loss: float | None
    train_seconds: float
    tokens_per_second: float = 0.0
    # Tie rows left out because config.tie_loss == "drop".
    dropped_ties: int = 0
    truncated_by_split: dict[str, int] = field(default_factory=dict)
    # Time in training steps alone (pairs_per_second's denominator: no validation, no loading).
    step_seconds: float = 0.0


def resolve_device(device: str) -> str:
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16: the CPUs where bf16 matmuls are faster than fp32 ones."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def use_bf16(cfg: TrainConfig, device: str) -> bool:
    if cfg.bf16 is not None:
        return cfg.bf16
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return device == "cpu" and cpu_has_native_bf16()


def use_master_weights(cfg: TrainConfig, device: str, bf16: bool) -> bool:
    """bf16 weights with float32 masters (rewardtrain.precision) instead of autocast."""
    if not bf16:
        return False
    if cfg.bf16_master_weights is not None:
        return cfg.bf16_master_weights
    return device == "cpu"


def pair_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margins: torch.Tensor,
    targets: torch.Tensor,
    center_coefficient: float = 0.0,
) -> torch.Tensor:
    """Mean loss of a batch of pairs (see the module docstring), in float32."""
    delta = r_chosen.float() - r_rejected.float() - margins
    losses = -(targets * F.logsigmoid(delta) + (1 - targets) * F.logsigmoid(-delta))
    loss = losses.mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((r_chosen.float() + r_rejected.float()) ** 2).mean()
    return loss


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _optimizer(
    named_parameters: list[tuple[str, torch.Tensor]], cfg: TrainConfig
) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in named_parameters:
        if param.requires_grad:
            # Biases and normalisation weights are not decayed (the usual BERT recipe).
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel updates every tensor in one pass (CPU and CUDA, float32 weights).
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=True)


def _schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.inference_mode()
def validate(model, encoded, collate, cfg, device, bf16) -> tuple[float, float | None]:
    """(loss, strict accuracy on decided pairs) over the whole set, not a mean of batch means."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: pair_length(encoded[i]))
    total_loss, correct, decided = 0.0, 0, 0
    for start in range(0, len(order), cfg.eval_batch_size):
        batch = collate([encoded[i] for i in order[start : start + cfg.eval_batch_size]])
        batch = {k: v.to(device) for k, v in batch.items()}
        with _autocast(device, bf16):
            r = rewards(model, batch["input_ids"], batch["attention_mask"])
        r_c, r_r = r.float().chunk(2)
        n = len(r_c)
        total_loss += n * pair_loss(r_c, r_r, batch["margins"], batch["targets"]).item()
        correct += int(((r_c > r_r) & ~batch["ties"]).sum())
        decided += int((~batch["ties"]).sum())
    model.train(was_training)
    return total_loss / len(encoded), (correct / decided if decided else None)


def _autocast(device: str, bf16: bool):
    if not bf16:
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def train(
    train_rows: list[dict],
    validation_rows: list[dict],
    cfg: TrainConfig,
    *,
    on_step: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_from: str | None = None,
) -> TrainResult:
    """Train a reward model on preference rows; the returned model holds the weights of the
    evaluation with the lowest validation loss.

    Raises NotEnoughData (fewer than 2 training pairs or no validation pair: early stopping
    needs one), BackboneError, TrainingCancelled.
    """
    started = time.perf_counter()
    dropped_ties = 0
    if cfg.tie_loss == "drop":
        kept = [r for r in train_rows if not r.get("tie")]
        dropped_ties = len(train_rows) - len(kept)
        train_rows = kept
    if len(train_rows) < MIN_TRAIN_PAIRS or len(validation_rows) < MIN_VALIDATION_PAIRS:
        raise NotEnoughData(
            f"need at least {MIN_TRAIN_PAIRS} training and {MIN_VALIDATION_PAIRS} validation "
            f"pairs, got {len(train_rows)} and {len(validation_rows)}"
        )
    _seed(cfg.seed)
    device = resolve_device(cfg.device)
    threads_before = torch.get_num_threads()
    if cfg.cpu_threads and device == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _train(
            train_rows,
            validation_rows,
            cfg,
            device=device,
            dropped_ties=dropped_ties,
            started=started,
            on_step=on_step,
            should_stop=should_stop,
            init_from=init_from,
        )
    finally:
        torch.set_num_threads(threads_before)


def _train(
    train_rows: list[dict],
    validation_rows: list[dict],
    cfg: TrainConfig,
    *,
    device: str,
    dropped_ties: int,
    started: float,
    on_step: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    init_from: str | None,
) -> TrainResult:
    """train() once the rows are checked and the device chosen."""
    bf16 = use_bf16(cfg, device)
    model, tokenizer = load_backbone(cfg.backbone or default_backbone(), init_from=init_from)
    if cfg.disable_dropout:
        disable_dropout(model)
    model.to(device).train()
    # CPU bf16: the model in bf16, the optimizer on float32 copies (see rewardtrain.precision).
    masters = MasterWeights(model) if use_master_weights(cfg, device, bf16) else None
    # CPU bf16: narrow batches train faster with plain attention (see TrainConfig).
    attention = model.config._attn_implementation
    eager_up_to = 0
    if device == "cpu" and bf16 and attention == "sdpa" and model._can_set_attn_implementation():
        eager_up_to = cfg.cpu_eager_attention_max_tokens

    train_enc, train_truncated = encode_rows(train_rows, tokenizer, cfg.max_length)
    val_enc, val_truncated = encode_rows(validation_rows, tokenizer, cfg.max_length)
    lengths = [pair_length(e) for e in train_enc]
    collate = PairCollator(
        tokenizer.pad_token_id,
        margin_scale=cfg.margin_scale,
        use_soft_labels=cfg.use_soft_labels,
        pad_to_multiple_of=8 if device.startswith("cuda") else None,
    )
    accum = cfg.gradient_accumulation_steps
    micro_per_epoch = math.ceil(len(train_enc) / cfg.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / accum)
    total = steps_per_epoch * cfg.epochs
    # What the optimizer updates (and clipping reads): the masters, or the model's own weights.
    named = masters.named_parameters() if masters else list(model.named_parameters())
    trained = [tensor for _, tensor in named]
    optimizer = _optimizer(named, cfg)
    scheduler = _schedule(optimizer, int(cfg.warmup_ratio * total), total)

    history: list[dict] = []
    best_loss, best_state, bad_evals = None, None, 0
    step, pairs_done, tokens_done, step_seconds = 0, 0, 0, 0.0
    since_eval: list[float] = []
    stopped_early = False

    def evaluate_now() -> bool:
        """Validate, keep the best weights; True when patience has run out."""
        nonlocal best_loss, best_state, bad_evals
        set_attention(model, attention)
        with masters.float32() if masters else nullcontext():
            val_loss, val_acc = validate(model, val_enc, collate, cfg, device, bf16)
            improved = best_loss is None or val_loss < best_loss
            if improved:
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
        history.append(
            {
                "step": step,
                "epoch": round(step / steps_per_epoch, 4),
                "train_loss": sum(since_eval) / len(since_eval) if since_eval else None,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "learning_rate": scheduler.get_last_lr()[0],
                "pairs_per_second": pairs_done / step_seconds if step_seconds else 0.0,
            }
        )
        since_eval.clear()
        if improved:
            best_loss, bad_evals = val_loss, 0
            return False
        bad_evals += 1
        return bad_evals >= cfg.early_stopping_patience

    for epoch in range(cfg.epochs):
        batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed + epoch)
        for first in range(0, len(batches), accum):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"cancelled at step {step} of {total}")
            tick = time.perf_counter()
            step_loss = 0.0
            group = batches[first : first + accum]
            for indices in group:
                batch = collate([train_enc[i] for i in indices])
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                if eager_up_to:
                    narrow = batch["input_ids"].shape[1] <= eager_up_to
                    set_attention(model, "eager" if narrow else attention)
                with _autocast(device, bf16):
                    r = rewards(model, batch["input_ids"], batch["attention_mask"])
                r_chosen, r_rejected = r.float().chunk(2)
                loss = pair_loss(
                    r_chosen,
                    r_rejected,
                    batch["margins"],
                    batch["targets"],
                    cfg.center_rewards_coefficient,
                )
                (loss / len(group)).backward()
                if masters:
                    masters.collect_grads()
                step_loss += loss.item() / len(group)
                pairs_done += len(indices)
                tokens_done += int(batch["attention_mask"].sum())
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(trained, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if masters:
                masters.push()
            step += 1
            step_seconds += time.perf_counter() - tick
            since_eval.append(step_loss)
            due = (cfg.eval_every_steps and step % cfg.eval_every_steps == 0) or (
                not cfg.eval_every_steps and first + accum >= len(batches)
            )
            stop = evaluate_now() if due else False
            if on_step is not None:
                last = history[-1] if due else {}
                on_step(
                    Progress(
                        step=step,
                        total=total,
                        epoch=step / steps_per_epoch,
                        loss=step_loss,
                        pairs_per_second=pairs_done / step_seconds,
                        val_loss=last.get("val_loss"),
                        val_accuracy=last.get("val_accuracy"),
                    )
                )
            if stop:
                stopped_early = True
                break
        if stopped_early:
            break
    if not history or history[-1]["step"] != step:
        evaluate_now()
    set_attention(model, attention)
    if masters:
        masters.finish()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        config=cfg,
        history=history,
        steps=step,
        device=device,
        pairs_per_second=pairs_done / step_seconds if step_seconds else 0.0,
        truncated=train_truncated + val_truncated,
        stopped_early=stopped_early,
        best_val_loss=best_loss,
        train_seconds=time.perf_counter() - started,
        tokens_per_second=tokens_done / step_seconds if step_seconds else 0.0,
        dropped_ties=dropped_ties,
        truncated_by_split={"train": train_truncated, "validation": val_truncated},
        step_seconds=step_seconds,
    )


def save_model(
    result: TrainResult, path: str | os.PathLike, *, metrics: dict, extra: dict | None = None
) -> None:
    """Model (safetensors) + tokenizer + prefloop.json; the folder loads with plain
    AutoModelForSequenceClassification.from_pretrained."""
    os.makedirs(path, exist_ok=True)
    result.model.save_pretrained(path)
    result.tokenizer.save_pretrained(path)
    cfg = result.config
    meta = {
        "format": 1,
        "backbone": cfg.backbone or default_backbone(),
        "config": cfg.to_dict(),
        "metrics": metrics,
        "input_format": PLAIN_FORMAT_NOTE,
        "max_length": cfg.max_length,
        "extra": extra or {},
    }
    with open(os.path.join(path, "prefloop.json"), "w") as f:
        json.dump(meta, f, indent=2, default=str)
