"""A training run's state as its loop reads it: LoopState, made once by start_run() (the model ready
on its device, the step's precision, the encoded pairs, the ranks, the wrapped forward, the
optimizer and its schedule) with a Tally of what the loop has done so far."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.data import EncodedData, encode_for_training
from rewardtrain.core.distributed import Ranks, wrap
from rewardtrain.core.model import RewardForward, reads_last_token
from rewardtrain.core.precision import StepPrecision, step_precision, use_bf16
from rewardtrain.core.prepare import Prepared, prepare_model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def adamw(
    named_parameters: list[tuple[str, torch.Tensor]], cfg: TrainConfig, *, fused: bool = True
) -> torch.optim.Optimizer:
    decay, no_decay, lora_b = [], [], []
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        # LoRA+'s group by hand: peft's create_loraplus_optimizer takes the PeftModel, while
        # this optimizer updates the float32 masters (or the DDP/FSDP wrapper's parameters).
        if ".lora_B." in name:
            lora_b.append(param)
        # Biases and normalisation weights are not decayed (the usual BERT recipe).
        elif param.ndim < 2 or "norm" in name.lower():
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if lora_b:
        lr_b = cfg.learning_rate * cfg.loraplus_lr_ratio
        groups.append({"params": lora_b, "weight_decay": cfg.weight_decay, "lr": lr_b})
    # The fused kernel updates every tensor in one pass (CPU and CUDA, float32 weights); FSDP's
    # sharded weights take the default one.
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused or None)


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_ratio: float, total: int):
    """transformers' linear warmup and decay, with warmup steps rounded up as its Trainer
    does: 0.1 of 8 steps is one step at learning rate 0 (it fills Adam's moments), not none."""
    warmup = math.ceil(warmup_ratio * total)
    return get_linear_schedule_with_warmup(optimizer, warmup, total)


@dataclass
class Tally:
    """What the loop has done so far; the history and best weights live on rank 0."""

    step: int = 0
    pairs: int = 0
    tokens: int = 0
    seconds: float = 0.0
    since_eval: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    last_eval_step: int = -1
    best_loss: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    # The step of the lowest validation loss (every rank): what a refit trains up to.
    best_step: int = 0
    bad_evals: int = 0
    stopped_early: bool = False


@dataclass
class LoopState:
    """One training run as its loop sees it, made once by start_run(): the loop's helpers take this
    one object."""

    cfg: TrainConfig
    ranks: Ranks
    device: str
    init_from: str | None
    prepared: Prepared
    precision: StepPrecision
    data: EncodedData
    net: nn.Module  # model.RewardForward, inside DDP or FSDP when distributed
    decoder: bool
    optimizer: torch.optim.Optimizer
    scheduler: Any
    trained: list[torch.Tensor]  # what the optimizer updates, and clipping reads
    global_batch: int
    steps_per_epoch: int
    total: int
    tally: Tally = field(default_factory=Tally)
    # A refit run's: the tally of the run that chose its length (history, best loss).
    selection: Tally | None = None

    @property
    def fsdp(self) -> bool:
        return self.ranks.distributed and self.cfg.sharding == "fsdp"


def start_run(
    train_rows: list[dict],
    validation_rows: list[dict],
    cfg: TrainConfig,
    device: str,
    ranks: Ranks,
    init_from: str | None,
) -> LoopState:
    """Prepare the model, its precision and the encoded data; wrap the forward; make the
    optimizer and its schedule."""
    prepared = prepare_model(cfg, device, bf16=use_bf16(cfg, device), init_from=init_from)
    precision = step_precision(cfg, device, prepared, ranks)
    data = encode_for_training(train_rows, validation_rows, prepared.tokenizer, cfg, device)
    fsdp = ranks.distributed and cfg.sharding == "fsdp"
    decoder = reads_last_token(prepared.model)
    forward = RewardForward(
        prepared.model,
        bf16=precision.bf16,
        # FSDP gathers each block's weights per forward call: one call per batch there.
        split=decoder and not fsdp,
        eager_up_to=precision.eager_up_to,
    )
    net = wrap(
        forward,
        sharding=cfg.sharding,
        ranks=ranks,
        device=device,
        bf16=precision.bf16,
        blocks=list(getattr(prepared.model, "_no_split_modules", None) or []),
    )
    global_batch = cfg.batch_size * ranks.world_size
    micro_batches = math.ceil(len(data.train) / global_batch)
    steps_per_epoch = math.ceil(micro_batches / cfg.gradient_accumulation_steps)
    total = steps_per_epoch * cfg.epochs
    # What the optimizer updates: the float32 masters, or the model's own weights.
    masters = precision.masters
    named = masters.named_parameters() if masters else list(net.named_parameters())
    optimizer = adamw(named, cfg, fused=not fsdp)
    return LoopState(
        cfg=cfg,
        ranks=ranks,
        device=device,
        init_from=init_from,
        prepared=prepared,
        precision=precision,
        data=data,
        net=net,
        decoder=decoder,
        optimizer=optimizer,
        scheduler=linear_schedule(optimizer, cfg.warmup_ratio, total),
        trained=[tensor for _, tensor in named if tensor.requires_grad],
        global_batch=global_batch,
        steps_per_epoch=steps_per_epoch,
        total=total,
    )
