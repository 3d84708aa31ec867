"""What a training run returns (TrainResult), the figures a run records about its training, and
saving the trained model as a folder that plain transformers loads."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from rewardtrain.core.aspects import aspect_dicts, parse_aspects
from rewardtrain.core.config import TrainConfig
from rewardtrain.core.lora import lora_save_and_merge
from rewardtrain.core.model import PLAIN_FORMAT_NOTE, default_backbone


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
    # The step of the lowest validation loss; with config.refit, the steps of the second run
    # on train + validation whose weights `model` holds (`steps` counts both runs').
    selected_step: int = 0
    refit_steps: int = 0
    lora_r: int | None = None
    trainable_params: int = 0
    total_params: int = 0
    gradient_checkpointing: bool = False
    # CUDA only: model FLOPs utilisation per device, and each device's peak memory.
    mfu: float | None = None
    peak_memory_gb: list[float] | None = None
    # With LoRA: the peft model around `model` until save_model merges it.
    lora: Any = None


def training_figures(result: TrainResult) -> dict[str, Any]:
    """What a run records about its training (the run's metrics and prefloop.json)."""
    return {
        "steps": result.steps,
        "device": str(result.device),
        "pairs_per_second": result.pairs_per_second,
        "train_seconds": result.train_seconds,
        "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
        "selected_step": result.selected_step,
        "refit_steps": result.refit_steps,
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
    if cfg.aspects:
        # One output per aspect; the reward is sum(weight * output) (rewardtrain.core.aspects).
        meta["aspects"] = aspect_dicts(parse_aspects(cfg.aspects))
    with open(os.path.join(path, "prefloop.json"), "w") as f:
        json.dump(meta, f, indent=2, default=str)
