"""The reward model's training loop: Bradley-Terry on preference rows, one readable function.

Loss per pair, with delta = r_chosen - r_rejected - margin and target t:
    -(t * log sigma(delta) + (1 - t) * log sigma(-delta))
t = 1 is the plain Bradley-Terry loss -log sigma(r_c - r_r - m). Ties use a soft target of
0.5 (and no margin): the loss is smallest when both rewards are equal, it needs no extra
parameter (Rao-Kupper's theta or Davidson's nu would have to be fitted and would change the
decided pairs' probabilities too), and the evaluation's sigma(delta) keeps one meaning.
With soft labels t is the chosen response's vote share.

The same loop runs in one process or in each of several (torchrun, rewardtrain.core.launch): every
rank takes a disjoint share of each global batch (batch_size x ranks pairs), gradients meet
in DDP's all-reduce or FSDP's reduce-scatter, and rank 0 alone keeps the history, reports and
returns the model.
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
from torch import nn
from transformers import get_linear_schedule_with_warmup

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.data import encode_for_training, epoch_steps, pair_length
from rewardtrain.core.distributed import (
    SINGLE,
    Ranks,
    full_state_dict,
    gather_to_leader,
    gradient_sync,
    leader_says,
    my_share,
    rank_device,
    sum_over_ranks,
    unwrapped,
    wrap,
)
from rewardtrain.core.lora import lora_save_and_merge
from rewardtrain.core.model import (
    PLAIN_FORMAT_NOTE,
    default_backbone,
    reads_last_token,
    rewards,
    set_attention,
)
from rewardtrain.core.precision import autocast, step_precision, use_bf16
from rewardtrain.core.prepare import Prepared, flops_per_token, gpu_peak_flops, prepare_model

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
    world_size: int = 1
    lora_r: int | None = None
    trainable_params: int = 0
    total_params: int = 0
    gradient_checkpointing: bool = False
    # CUDA only: model FLOPs utilisation per device, and each device's peak memory.
    mfu: float | None = None
    peak_memory_gb: list[float] | None = None
    # With LoRA: the peft model around `model` until save_model merges it.
    lora: Any = None


def resolve_device(device: str) -> str:
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def batch_loss(r: torch.Tensor, batch: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """The training loss of one collated batch from its rewards (chosen rows first)."""
    r_chosen, r_rejected = r.float().chunk(2)
    return pair_loss(
        r_chosen, r_rejected, batch["margins"], batch["targets"], cfg.center_rewards_coefficient
    )


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
    named_parameters: list[tuple[str, torch.Tensor]], cfg: TrainConfig, *, fused: bool = True
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
    # The fused kernel updates every tensor in one pass (CPU and CUDA, float32 weights); FSDP's
    # sharded weights take the default one.
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused or None)


def _schedule(optimizer: torch.optim.Optimizer, warmup_ratio: float, total: int):
    """transformers' linear warmup and decay, with warmup steps rounded up as its Trainer
    does: 0.1 of 8 steps is one step at learning rate 0 (it fills Adam's moments), not none."""
    warmup = math.ceil(warmup_ratio * total)
    return get_linear_schedule_with_warmup(optimizer, warmup, total)


class RewardForward(nn.Module):
    """rewards() as a module's forward: what DDP and FSDP wrap, so that their hooks run on
    every call (the loop never calls the transformers model's own forward).

    `split`: a decoder's rows go through in chunks of similar length (length_chunks), each
    padded to its own longest row. A batch is padded to the longest of its chosen and rejected
    inputs, which differ a lot in real preference data: on the decoder bench half of a batch's
    tokens were padding, and a CPU spends its time in matmuls over every one of them. Each row's
    reward is the same either way (rewards() reads each row's own last token)."""

    def __init__(
        self, model: nn.Module, *, split: bool = False, chunk_cost: int | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.split = split
        self.chunk_cost = CHUNK_COST_TOKENS if chunk_cost is None else chunk_cost

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.split:
            return rewards(self.model, input_ids, attention_mask)
        lengths = attention_mask.sum(-1)
        chunks = length_chunks(lengths.tolist(), self.chunk_cost)
        if len(chunks) == 1:
            return rewards(self.model, input_ids, attention_mask)
        parts, order = [], []
        for rows in chunks:
            index = torch.tensor(rows, device=input_ids.device)
            width = int(lengths[index].max())
            # Right padding (the collator's): a chunk's real tokens sit in its first columns.
            parts.append(
                rewards(self.model, input_ids[index, :width], attention_mask[index, :width])
            )
            order += rows
        out = torch.empty_like(torch.cat(parts))
        out[torch.tensor(order, device=out.device)] = torch.cat(parts)
        return out


# A chunk's fixed cost, in padded-token equivalents: below ~this many wasted tokens another
# forward (its kernel launches, smaller matmuls) costs more than the padding it saves.
CHUNK_COST_TOKENS = 256


def length_chunks(lengths: list[int], chunk_cost: int = CHUNK_COST_TOKENS) -> list[list[int]]:
    """Row indices cut into chunks of similar length that minimise the padded tokens plus
    `chunk_cost` per chunk (an exact split of the length-sorted rows, by dynamic programming)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0.0] + [math.inf] * n  # best[j]: the cost of the first j sorted rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        width = lengths[order[j - 1]]
        for i in range(j):
            cost = best[i] + (j - i) * width + chunk_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    chunks, j = [], n
    while j > 0:
        chunks.append(order[cut[j] : j])
        j = cut[j]
    return chunks[::-1]


def _to(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _validation_sums(forward, module, encoded, collate, cfg, device, bf16, ranks) -> list[float]:
    """[loss sum, correct, decided] of this rank's share of each global validation batch.
    A rank left without a pair still runs one (uncounted): FSDP needs every rank in every
    forward."""
    was_training = module.training
    module.eval()
    order = sorted(range(len(encoded)), key=lambda i: pair_length(encoded[i]))
    total_loss, correct, decided = 0.0, 0, 0
    size = cfg.eval_batch_size * ranks.world_size
    with torch.inference_mode():
        for start in range(0, len(order), size):
            mine = my_share(order[start : start + size], ranks)
            counted = bool(mine)
            batch = _to(collate([encoded[i] for i in mine or order[start : start + 1]]), device)
            with autocast(device, bf16):
                r = forward(batch["input_ids"], batch["attention_mask"])
            if not counted:
                continue
            r_c, r_r = r.float().chunk(2)
            total_loss += len(r_c) * pair_loss(r_c, r_r, batch["margins"], batch["targets"]).item()
            correct += int(((r_c > r_r) & ~batch["ties"]).sum())
            decided += int((~batch["ties"]).sum())
    module.train(was_training)
    return [total_loss, correct, decided]


def validate(model, encoded, collate, cfg, device, bf16) -> tuple[float, float | None]:
    """(loss, strict accuracy on decided pairs) over the whole set, not a mean of batch means."""
    loss, correct, decided = _validation_sums(
        lambda ids, mask: rewards(model, ids, mask),
        model,
        encoded,
        collate,
        cfg,
        device,
        bf16,
        SINGLE,
    )
    return loss / len(encoded), (correct / decided if decided else None)


def train(
    train_rows: list[dict],
    validation_rows: list[dict],
    cfg: TrainConfig,
    *,
    on_step: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_from: str | None = None,
    ranks: Ranks = SINGLE,
) -> TrainResult:
    """Train a reward model on preference rows; the returned model holds the weights of the
    evaluation with the lowest validation loss (on rank 0; other ranks return no model).

    `ranks`: this process's place in an initialised process group (rewardtrain.core.rank); every
    rank calls train() with the same rows and config. on_step and should_stop are rank 0's.
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
    device = rank_device(resolve_device(cfg.device), ranks)
    threads_before = torch.get_num_threads()
    if cfg.cpu_threads and device == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    try:
        result = _train(
            train_rows,
            validation_rows,
            cfg,
            device=device,
            ranks=ranks,
            init_from=init_from,
            on_step=on_step if ranks.leader else None,
            should_stop=should_stop if ranks.leader else None,
        )
    finally:
        torch.set_num_threads(threads_before)
    result.dropped_ties = dropped_ties
    result.train_seconds = time.perf_counter() - started
    return result


@dataclass
class _Tally:
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
    bad_evals: int = 0


def _train(
    train_rows: list[dict],
    validation_rows: list[dict],
    cfg: TrainConfig,
    *,
    device: str,
    ranks: Ranks,
    init_from: str | None,
    on_step: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> TrainResult:
    """train() once the rows are checked and the device chosen: prepare, loop, finish."""
    prepared = prepare_model(cfg, device, bf16=use_bf16(cfg, device), init_from=init_from)
    precision = step_precision(cfg, device, prepared, ranks)
    data = encode_for_training(train_rows, validation_rows, prepared.tokenizer, cfg, device)
    fsdp = ranks.distributed and cfg.sharding == "fsdp"
    decoder = reads_last_token(prepared.model)
    net = wrap(
        # FSDP gathers each block's weights per forward call: one call per batch there.
        RewardForward(prepared.model, split=decoder and not fsdp),
        sharding=cfg.sharding,
        ranks=ranks,
        device=device,
        bf16=precision.bf16,
        blocks=list(getattr(prepared.model, "_no_split_modules", None) or []),
    )
    global_batch = cfg.batch_size * ranks.world_size
    steps_per_epoch = math.ceil(
        math.ceil(len(data.train) / global_batch) / cfg.gradient_accumulation_steps
    )
    total = steps_per_epoch * cfg.epochs
    # What the optimizer updates (and clipping reads): the masters, or the model's weights.
    masters = precision.masters
    named = masters.named_parameters() if masters else list(net.named_parameters())
    trained = [tensor for _, tensor in named if tensor.requires_grad]
    optimizer = _optimizer(named, cfg, fused=not fsdp)
    scheduler = _schedule(optimizer, cfg.warmup_ratio, total)

    tally = _Tally()
    stopped_early = False
    for epoch in range(cfg.epochs):
        # A decoder's batches are drawn at random (its forward chunks each by length; see
        # data.epoch_steps), under DDP and FSDP alike, so that both reach the same weights.
        for group in epoch_steps(data.lengths, cfg, global_batch, epoch, grouped=not decoder):
            wants_stop = should_stop is not None and should_stop()
            if leader_says(wants_stop, ranks):
                raise TrainingCancelled(f"cancelled at step {tally.step} of {total}")
            tick = time.perf_counter()
            mine = _forward_backward(net, prepared, precision, data, group, cfg, ranks, device)
            _optimizer_step(trained, optimizer, scheduler, masters, cfg)
            seconds = time.perf_counter() - tick
            loss, pairs, tokens = sum_over_ranks(mine, ranks)
            tally.step += 1
            tally.pairs, tally.tokens = tally.pairs + int(pairs), tally.tokens + int(tokens)
            tally.seconds += seconds
            tally.since_eval.append(loss)
            last_of_epoch = tally.step % steps_per_epoch == 0
            due = (cfg.eval_every_steps and tally.step % cfg.eval_every_steps == 0) or (
                not cfg.eval_every_steps and last_of_epoch
            )
            out_of_patience = False
            if due:
                out_of_patience = _evaluate(
                    net,
                    prepared,
                    precision,
                    data,
                    cfg,
                    ranks,
                    device,
                    tally,
                    scheduler,
                    steps_per_epoch,
                )
            if on_step is not None:
                on_step(_progress(tally, total, steps_per_epoch, loss, due))
            if leader_says(out_of_patience, ranks):
                stopped_early = True
                break
        if stopped_early:
            break
    if tally.last_eval_step != tally.step:
        _evaluate(
            net, prepared, precision, data, cfg, ranks, device, tally, scheduler, steps_per_epoch
        )
    return _result(
        net, prepared, precision, data, cfg, ranks, device, tally, stopped_early, init_from
    )


def _forward_backward(net, prepared, precision, data, group, cfg, ranks, device) -> list[float]:
    """This rank's forward and backward over the step's micro-batches; returns its
    [share of the step's loss, pairs, tokens] (summed over ranks by the caller).

    Each micro-batch's loss is the mean over its pairs, whichever rank holds them: a rank's
    own mean is weighted by its share of the pairs times the ranks (DDP and FSDP average
    gradients), so N ranks reach the weights that one process reaches with the same global
    batch."""
    loss_share, pairs, tokens = 0.0, 0, 0
    for k, indices in enumerate(group):
        mine = my_share(indices, ranks)
        weight = len(mine) * ranks.world_size / len(indices) / len(group)
        # A rank with no pair in a short last batch runs one with weight 0: every rank must
        # join the gradient reduction.
        batch = _to(data.collate([data.train[i] for i in mine or indices[:1]]), device)
        if precision.eager_up_to:
            narrow = batch["input_ids"].shape[1] <= precision.eager_up_to
            set_attention(prepared.model, "eager" if narrow else precision.attention)
        with gradient_sync(net, k == len(group) - 1):
            with autocast(device, precision.bf16):
                r = net(batch["input_ids"], batch["attention_mask"])
            loss = batch_loss(r, batch, cfg)
            (loss * weight).backward()
        if precision.masters:
            precision.masters.collect_grads()
        if mine:
            loss_share += loss.item() * weight / ranks.world_size
            pairs += len(mine)
            tokens += int(batch["attention_mask"].sum())
    return [loss_share, pairs, tokens]


def _optimizer_step(trained, optimizer, scheduler, masters, cfg: TrainConfig) -> None:
    if cfg.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(trained, cfg.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if masters:
        masters.push()


def _evaluate(
    net, prepared, precision, data, cfg, ranks, device, tally, scheduler, steps_per_epoch
) -> bool:
    """Validate and keep the best weights; True (on rank 0) when patience has run out.

    One process and DDP: rank 0 alone, on its whole copy. FSDP: the weights exist only as
    shards, so every rank validates its share and the sums meet on rank 0."""
    tally.last_eval_step = tally.step
    set_attention(prepared.model, precision.attention)
    fsdp = ranks.distributed and cfg.sharding == "fsdp"
    with precision.masters.float32() if precision.masters else nullcontext():
        sums = None
        if fsdp:
            sums = sum_over_ranks(
                _validation_sums(
                    net, net, data.validation, data.collate, cfg, device, precision.bf16, ranks
                ),
                ranks,
            )
        elif ranks.leader:
            inner = unwrapped(net)
            sums = _validation_sums(
                inner, inner, data.validation, data.collate, cfg, device, precision.bf16, SINGLE
            )
        improved = False
        if ranks.leader:
            val_loss = sums[0] / len(data.validation)
            improved = tally.best_loss is None or val_loss < tally.best_loss
        if leader_says(improved, ranks):
            tally.best_state = full_state_dict(net, ranks, only_trainable=True)
    if not ranks.leader:
        return False
    loss_sum, correct, decided = sums
    tally.history.append(
        {
            "step": tally.step,
            "epoch": round(tally.step / steps_per_epoch, 4),
            "train_loss": sum(tally.since_eval) / len(tally.since_eval)
            if tally.since_eval
            else None,
            "val_loss": val_loss,
            "val_accuracy": correct / decided if decided else None,
            "learning_rate": scheduler.get_last_lr()[0],
            "pairs_per_second": tally.pairs / tally.seconds if tally.seconds else 0.0,
        }
    )
    tally.since_eval.clear()
    if improved:
        tally.best_loss, tally.bad_evals = val_loss, 0
        return False
    tally.bad_evals += 1
    return tally.bad_evals >= cfg.early_stopping_patience


def _progress(tally: _Tally, total: int, steps_per_epoch: int, loss: float, due: bool):
    last = tally.history[-1] if due else {}
    return Progress(
        step=tally.step,
        total=total,
        epoch=tally.step / steps_per_epoch,
        loss=loss,
        pairs_per_second=tally.pairs / tally.seconds,
        val_loss=last.get("val_loss"),
        val_accuracy=last.get("val_accuracy"),
    )


def _best_model(net, prepared, precision, cfg, ranks, device, tally, init_from) -> tuple[Any, Any]:
    """(model, peft model or None) with the best weights, on rank 0. Under FSDP rank 0
    builds the model again on the CPU and loads the gathered weights into it."""
    set_attention(prepared.model, precision.attention)
    if precision.masters:
        precision.masters.finish()
    model, lora = prepared.model, prepared.lora
    if ranks.distributed and cfg.sharding == "fsdp":
        if not ranks.leader:
            return None, None
        cpu = prepare_model(cfg, "cpu", bf16=False, init_from=init_from)
        model, lora = cpu.model, cpu.lora
    if not ranks.leader:
        return None, None
    if tally.best_state is not None:
        loaded = RewardForward(model).load_state_dict(tally.best_state, strict=False)
        if loaded.unexpected_keys:
            raise RuntimeError(f"best weights do not fit the model: {loaded.unexpected_keys[:5]}")
    if lora is not None and not device.startswith("cuda"):
        # LoRA's bf16 body back to float32 on a CPU: the model then scores without autocast.
        lora.float()
    return model.eval(), lora


def _device_figures(device: str, prepared: Prepared, ranks: Ranks, tokens_per_second: float):
    """(MFU, peak memory per device in GB) on CUDA; (None, None) elsewhere."""
    if not device.startswith("cuda"):
        return None, None
    peaks = gather_to_leader(torch.cuda.max_memory_allocated(device) / 1e9, ranks)
    peak = gpu_peak_flops(device)
    mfu = None
    if peak:
        mfu = flops_per_token(prepared.model) * tokens_per_second / (peak * ranks.world_size)
    return mfu, [round(p, 3) for p in peaks]


def _result(
    net, prepared, precision, data, cfg, ranks, device, tally, stopped_early, init_from
) -> TrainResult:
    tokens_per_second = tally.tokens / tally.seconds if tally.seconds else 0.0
    mfu, peaks = _device_figures(device, prepared, ranks, tokens_per_second)
    model, lora = _best_model(net, prepared, precision, cfg, ranks, device, tally, init_from)
    return TrainResult(
        model=model,
        tokenizer=prepared.tokenizer,
        config=cfg,
        history=tally.history,
        steps=tally.step,
        device=device,
        pairs_per_second=tally.pairs / tally.seconds if tally.seconds else 0.0,
        truncated=sum(data.truncated.values()),
        stopped_early=stopped_early,
        best_val_loss=tally.best_loss,
        train_seconds=0.0,
        tokens_per_second=tokens_per_second,
        truncated_by_split=data.truncated,
        step_seconds=tally.seconds,
        world_size=ranks.world_size,
        lora_r=cfg.lora_r or None,
        trainable_params=prepared.trainable_params,
        total_params=prepared.total_params,
        gradient_checkpointing=prepared.checkpointing,
        mfu=mfu,
        peak_memory_gb=peaks,
        lora=lora,
    )


def training_figures(result: TrainResult) -> dict[str, Any]:
    """What a run records about its training (the run's metrics and prefloop.json)."""
    return {
        "steps": result.steps,
        "device": str(result.device),
        "pairs_per_second": result.pairs_per_second,
        "train_seconds": result.train_seconds,
        "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
        "truncated": result.truncated,
        "world_size": result.world_size,
        "lora_r": result.lora_r,
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "tokens_per_s": result.tokens_per_second,
        "gradient_checkpointing": result.gradient_checkpointing,
        "mfu": result.mfu,
        "peak_memory_gb": result.peak_memory_gb,
    }


def save_model(
    result: TrainResult, path: str | os.PathLike, *, metrics: dict, extra: dict | None = None
) -> None:
    """Model (safetensors) + tokenizer + prefloop.json; the folder loads with plain
    AutoModelForSequenceClassification.from_pretrained. With LoRA the adapter (and head) go to
    path/adapter/ and the saved model is the merged one (result.model becomes it too)."""
    os.makedirs(path, exist_ok=True)
    if result.lora is not None:
        result.model, result.lora = lora_save_and_merge(result.lora, path), None
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
