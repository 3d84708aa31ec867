"""The reward model's training loop: Bradley-Terry on preference rows (the losses in
rewardtrain.core.losses, validation in rewardtrain.core.validation), one readable function.

The same loop runs in one process or in each of several (torchrun, rewardtrain.core.launch): every
rank takes a disjoint share of each global batch (batch_size x ranks pairs), gradients meet
in DDP's all-reduce or FSDP's reduce-scatter, and rank 0 alone keeps the history, reports and
returns the model.

train() checks the rows, loop_state.start_run() makes the run's state once (a LoopState: model,
precision, data, ranks, device, optimizer), and _loop() reads top to bottom: step, validate
when due, report, stop early. The forward itself (autocast, attention kernel, length chunks)
is model.RewardForward's; TrainResult and save_model live in rewardtrain.core.result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.data import epoch_steps
from rewardtrain.core.device import resolve_device
from rewardtrain.core.distributed import (
    SINGLE,
    Ranks,
    full_state_dict,
    gradient_sync,
    leader_says,
    my_share,
    rank_device,
    sum_over_ranks,
    unwrapped,
)
from rewardtrain.core.loop_state import LoopState, seed_everything, start_run
from rewardtrain.core.losses import batch_loss
from rewardtrain.core.model import RewardForward
from rewardtrain.core.prepare import device_figures, prepare_model
from rewardtrain.core.rankings import is_tie
from rewardtrain.core.result import TrainResult
from rewardtrain.core.validation import to_device, validation_sums

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
    """Train a reward model on preference rows; the returned model (on rank 0; other ranks
    return none) holds the weights of the evaluation with the lowest validation loss, or with
    cfg.refit those of the refit on train + validation for as many epochs.

    `ranks`: this process's place in an initialised process group (rewardtrain.core.rank); every
    rank calls train() with the same rows and config. on_step and should_stop are rank 0's.
    Raises NotEnoughData (fewer than 2 training pairs or no validation pair: early stopping
    needs one), BackboneError, TrainingCancelled.
    """
    started = time.perf_counter()
    train_rows, dropped_ties = _kept_rows(train_rows, validation_rows, cfg)
    seed_everything(cfg.seed)
    device = rank_device(resolve_device(cfg.device), ranks)
    threads_before = torch.get_num_threads()
    if cfg.cpu_threads and device == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    try:
        callbacks = (on_step, should_stop) if ranks.leader else (None, None)
        where = (device, ranks, init_from)
        run = _choose_and_refit(train_rows, validation_rows, cfg, where, *callbacks)
        result = _result(run)
    finally:
        torch.set_num_threads(threads_before)
    result.dropped_ties = dropped_ties
    result.train_seconds = time.perf_counter() - started
    return result


def _choose_and_refit(
    train_rows: list[dict],
    validation_rows: list[dict],
    cfg: TrainConfig,
    where: tuple[str, Ranks, str | None],
    on_step: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> LoopState:
    """The run that early stopping chooses on validation; with cfg.refit, then a second run
    from the same start on train + validation, for the share of the epochs the first one
    chose (the same schedule, cut there), which becomes the model. `where`: (device, ranks,
    init_from)."""
    run = start_run(train_rows, validation_rows, cfg, *where)
    _loop(run, on_step, should_stop)
    if not cfg.refit:
        return run
    chosen, offset, truncated = run.tally, run.tally.step, run.data.truncated
    epochs = chosen.best_step / run.steps_per_epoch
    # The choosing run's model and optimizer go before the refit's are made.
    del run
    chosen.best_state = None
    seed_everything(cfg.seed)
    kept = [r for r in validation_rows if cfg.tie_loss != "drop" or not is_tie(r)]
    refit = start_run(train_rows + kept, validation_rows, cfg, *where)
    # Cut pairs counted per split once (the refit's train holds the validation pairs too).
    refit.selection, refit.data.truncated = chosen, truncated
    steps = max(1, round(epochs * refit.steps_per_epoch))
    _refit_loop(refit, steps, offset, on_step, should_stop)
    return refit


def _refit_loop(
    run: LoopState,
    steps: int,
    offset: int,
    on_step: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """The refit's first `steps` steps, without validation (nothing but the test split is held
    out now); its progress counts on from the choosing run's `offset` steps."""
    tally = run.tally
    for group in islice(_all_steps(run), steps):
        wants_stop = should_stop is not None and should_stop()
        if leader_says(wants_stop, run.ranks):
            raise TrainingCancelled(f"cancelled at step {offset + tally.step} of {offset + steps}")
        loss = _step(run, group)
        if on_step is not None:
            rate, epoch = tally.pairs / tally.seconds, tally.step / run.steps_per_epoch
            on_step(Progress(offset + tally.step, offset + steps, epoch, loss, rate))
    if run.fsdp:  # rank 0 builds the model from gathered weights (_best_model): the last ones
        with run.precision.masters.float32() if run.precision.masters else nullcontext():
            tally.best_state = full_state_dict(run.net, run.ranks, only_trainable=True)


def _kept_rows(
    train_rows: list[dict], validation_rows: list[dict], cfg: TrainConfig
) -> tuple[list[dict], int]:
    """(the training rows to train on, tie rows dropped), or NotEnoughData."""
    dropped_ties = 0
    if cfg.tie_loss == "drop":
        kept = [r for r in train_rows if not is_tie(r)]
        dropped_ties = len(train_rows) - len(kept)
        train_rows = kept
    if len(train_rows) < MIN_TRAIN_PAIRS or len(validation_rows) < MIN_VALIDATION_PAIRS:
        raise NotEnoughData(
            f"need at least {MIN_TRAIN_PAIRS} training and {MIN_VALIDATION_PAIRS} validation "
            f"pairs, got {len(train_rows)} and {len(validation_rows)}"
        )
    return train_rows, dropped_ties


def _loop(
    run: LoopState,
    on_step: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Every step of every epoch, validating when due, until the last step or early stopping;
    the final weights are validated too when the last step was not."""
    tally = run.tally
    for group in _all_steps(run):
        wants_stop = should_stop is not None and should_stop()
        if leader_says(wants_stop, run.ranks):
            raise TrainingCancelled(f"cancelled at step {tally.step} of {run.total}")
        loss = _step(run, group)
        due = _validation_due(run)
        out_of_patience = _evaluate(run) if due else False
        if on_step is not None:
            on_step(_progress(run, loss, due))
        if leader_says(out_of_patience, run.ranks):
            tally.stopped_early = True
            break
    if tally.last_eval_step != tally.step:
        _evaluate(run)


def _all_steps(run: LoopState) -> Iterator[list[list[int]]]:
    """The run's optimizer steps, epoch after epoch (each step a list of micro-batches)."""
    for epoch in range(run.cfg.epochs):
        # A decoder's batches are drawn at random (its forward chunks each by length; see
        # data.epoch_steps), under DDP and FSDP alike, so that both reach the same weights.
        yield from epoch_steps(
            run.data.lengths, run.cfg, run.global_batch, epoch, grouped=not run.decoder
        )


def _validation_due(run: LoopState) -> bool:
    """Every eval_every_steps steps, or (0) at each epoch's last step."""
    every = run.cfg.eval_every_steps or run.steps_per_epoch
    return run.tally.step % every == 0


def _step(run: LoopState, group: list[list[int]]) -> float:
    """One optimizer step over the group's micro-batches; the step's loss (all ranks')."""
    tick = time.perf_counter()
    mine = _forward_backward(run, group)
    _optimizer_step(run)
    seconds = time.perf_counter() - tick
    loss, pairs, tokens = sum_over_ranks(mine, run.ranks)
    tally = run.tally
    tally.step += 1
    tally.pairs, tally.tokens = tally.pairs + int(pairs), tally.tokens + int(tokens)
    tally.seconds += seconds
    tally.since_eval.append(loss)
    return loss


def _forward_backward(run: LoopState, group: list[list[int]]) -> list[float]:
    """This rank's forward and backward over the step's micro-batches; returns its
    [share of the step's loss, pairs, tokens] (summed over ranks by the caller).

    Each micro-batch's loss is the mean over its pairs, whichever rank holds them: a rank's
    own mean is weighted by its share of the pairs times the ranks (DDP and FSDP average
    gradients), so N ranks reach the weights that one process reaches with the same global
    batch."""
    ranks, data, masters = run.ranks, run.data, run.precision.masters
    loss_share, pairs, tokens = 0.0, 0, 0
    for k, indices in enumerate(group):
        mine = my_share(indices, ranks)
        weight = len(mine) * ranks.world_size / len(indices) / len(group)
        # A rank with no pair in a short last batch runs one with weight 0: every rank must
        # join the gradient reduction.
        batch = to_device(data.collate([data.train[i] for i in mine or indices[:1]]), run.device)
        with gradient_sync(run.net, k == len(group) - 1):
            r = run.net(batch["input_ids"], batch["attention_mask"])
            loss = batch_loss(r, batch, run.cfg)
            (loss * weight).backward()
        if masters:
            masters.collect_grads()
        if mine:
            loss_share += loss.item() * weight / ranks.world_size
            pairs += len(mine)
            tokens += int(batch["attention_mask"].sum())
    return [loss_share, pairs, tokens]


def _optimizer_step(run: LoopState) -> None:
    if run.cfg.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(run.trained, run.cfg.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.precision.masters:
        run.precision.masters.push()


def _evaluate(run: LoopState) -> bool:
    """Validate, record and keep the best weights; True (on rank 0) when patience has run out."""
    tally, ranks, masters = run.tally, run.ranks, run.precision.masters
    tally.last_eval_step = tally.step
    with masters.float32() if masters else nullcontext():
        sums = _validation_sums_of_run(run)
        improved = False
        if ranks.leader:
            val_loss = sums[0] / len(run.data.validation)
            improved = tally.best_loss is None or val_loss < tally.best_loss
        if leader_says(improved, ranks):
            tally.best_state = full_state_dict(run.net, ranks, only_trainable=True)
            tally.best_step = tally.step
    if not ranks.leader:
        return False
    _record(run, val_loss, sums)
    if improved:
        tally.best_loss, tally.bad_evals = val_loss, 0
        return False
    tally.bad_evals += 1
    return tally.bad_evals >= run.cfg.early_stopping_patience


def _validation_sums_of_run(run: LoopState) -> list[float] | None:
    """The validation's [loss sum, correct, decided] on rank 0 (None elsewhere). One process
    and DDP: rank 0 alone, on its whole copy. FSDP: the weights exist only as shards, so every
    rank validates its share and the sums meet on rank 0."""
    data, size, device = run.data, run.cfg.eval_batch_size, run.device
    if run.fsdp:
        mine = validation_sums(
            run.net, data.validation, data.collate, batch_size=size, device=device, ranks=run.ranks
        )
        return sum_over_ranks(mine, run.ranks)
    if not run.ranks.leader:
        return None
    return validation_sums(
        unwrapped(run.net),
        data.validation,
        data.collate,
        batch_size=size,
        device=device,
        ranks=SINGLE,
    )


def _record(run: LoopState, val_loss: float, sums: list[float]) -> None:
    """One evaluation's line of the history (rank 0)."""
    tally = run.tally
    _, correct, decided = sums
    since = tally.since_eval
    tally.history.append(
        {
            "step": tally.step,
            "epoch": round(tally.step / run.steps_per_epoch, 4),
            "train_loss": sum(since) / len(since) if since else None,
            "val_loss": val_loss,
            "val_accuracy": correct / decided if decided else None,
            "learning_rate": run.scheduler.get_last_lr()[0],
            "pairs_per_second": tally.pairs / tally.seconds if tally.seconds else 0.0,
        }
    )
    since.clear()


def _progress(run: LoopState, loss: float, due: bool) -> Progress:
    tally = run.tally
    last = tally.history[-1] if due else {}
    return Progress(
        step=tally.step,
        total=run.total,
        epoch=tally.step / run.steps_per_epoch,
        loss=loss,
        pairs_per_second=tally.pairs / tally.seconds,
        val_loss=last.get("val_loss"),
        val_accuracy=last.get("val_accuracy"),
    )


def _best_model(run: LoopState) -> tuple[Any, Any]:
    """(model, peft model or None) with the best weights, on rank 0. Under FSDP rank 0
    builds the model again on the CPU and loads the gathered weights into it."""
    # Eval mode gives the model its own attention kernel back (model.RewardForward).
    run.net.eval()
    if run.precision.masters:
        run.precision.masters.finish()
    model, lora = run.prepared.model, run.prepared.lora
    if not run.ranks.leader:
        return None, None
    if run.fsdp:
        cpu = prepare_model(run.cfg, "cpu", bf16=False, init_from=run.init_from)
        model, lora = cpu.model, cpu.lora
    if run.tally.best_state is not None:
        loaded = RewardForward(model).load_state_dict(run.tally.best_state, strict=False)
        if loaded.unexpected_keys:
            raise RuntimeError(f"best weights do not fit the model: {loaded.unexpected_keys[:5]}")
    if lora is not None and not run.device.startswith("cuda"):
        # LoRA's bf16 body back to float32 on a CPU: the model then scores without autocast.
        lora.float()
    return model.eval(), lora


def _result(run: LoopState) -> TrainResult:
    """The result of a run, or of a refit and the run that chose its length: throughput over
    both, the history and best loss of the choosing one."""
    prepared, refit = run.prepared, run.selection is not None
    chosen = run.selection or run.tally
    phases = [chosen, run.tally] if refit else [run.tally]
    pairs, tokens = sum(t.pairs for t in phases), sum(t.tokens for t in phases)
    seconds = sum(t.seconds for t in phases)
    tokens_per_second = tokens / seconds if seconds else 0.0
    mfu, peaks = device_figures(run.device, prepared.model, run.ranks, tokens_per_second)
    model, lora = _best_model(run)
    return TrainResult(
        model=model,
        tokenizer=prepared.tokenizer,
        config=run.cfg,
        history=chosen.history,
        steps=sum(t.step for t in phases),
        device=run.device,
        pairs_per_second=pairs / seconds if seconds else 0.0,
        truncated=sum(run.data.truncated.values()),
        stopped_early=chosen.stopped_early,
        best_val_loss=chosen.best_loss,
        train_seconds=0.0,
        tokens_per_second=tokens_per_second,
        truncated_by_split=run.data.truncated,
        step_seconds=seconds,
        selected_step=chosen.best_step,
        refit_steps=run.tally.step if refit else 0,
        world_size=run.ranks.world_size,
        lora_r=run.cfg.lora_r or None,
        trainable_params=prepared.trainable_params,
        total_params=prepared.total_params,
        gradient_checkpointing=prepared.checkpointing,
        mfu=mfu,
        peak_memory_gb=peaks,
        lora=lora,
    )
