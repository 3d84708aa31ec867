"""LoRA through peft: low-rank adapters on the body's linear layers, the score head trained in
full, and at the end one merged plain model (plus the adapter on its own, in `adapter/`).

The model the loop trains stays the transformers model itself: peft injects its layers into it
in place, so `rewards()` reads it as it reads any classifier.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.model import BackboneError

ADAPTER_DIR = "adapter"


def _peft() -> Any:
    try:
        import peft
    except ImportError as exc:  # a dependency, but a trimmed install may lack it
        raise BackboneError("lora_r > 0 needs the peft package (pip install peft)") from exc
    return peft


def _targets(cfg: TrainConfig) -> str | list[str]:
    if cfg.lora_target_modules.strip() == "all-linear":
        return "all-linear"
    return [name.strip() for name in cfg.lora_target_modules.split(",") if name.strip()]


def lora_wrap(model: nn.Module, cfg: TrainConfig) -> Any:
    """The peft model around `model` (changed in place): fresh adapters of rank cfg.lora_r,
    B = 0 so the start scores as the model did, and the head's trained copy in float32."""
    peft = _peft()
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=_targets(cfg),
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
        raise BackboneError(
            f"LoRA cannot wrap this {model.config.model_type!r} model "
            f"(lora_target_modules={cfg.lora_target_modules!r}): {exc}"
        ) from exc
    _trained_in_float32(wrapped)
    return wrapped


def adapter_matches(folder: str, cfg: TrainConfig) -> bool:
    """True when `folder` holds an adapter of the same rank, alpha and targets: training can
    go on with it. Another shape starts fresh adapters on the folder's merged weights."""
    path = os.path.join(folder, ADAPTER_DIR, "adapter_config.json")
    if not cfg.lora_r or not os.path.exists(path):
        return False
    with open(path) as f:
        saved = json.load(f)
    targets = _targets(cfg)
    saved_targets = saved.get("target_modules")
    same_targets = (
        saved_targets == targets
        if isinstance(targets, str)
        else sorted(saved_targets or []) == sorted(targets)
    )
    return (
        saved.get("r") == cfg.lora_r and saved.get("lora_alpha") == cfg.lora_alpha and same_targets
    )


def lora_resume(model: nn.Module, folder: str) -> Any:
    """The peft model around the backbone with a saved version's adapter, trainable: a warm
    start that keeps the adapter relative to the backbone."""
    peft = _peft()
    try:
        wrapped = peft.PeftModel.from_pretrained(
            model, os.path.join(folder, ADAPTER_DIR), is_trainable=True
        )
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise BackboneError(f"cannot load the LoRA adapter of {folder!r}: {exc}") from exc
    _trained_in_float32(wrapped)
    return wrapped


def _trained_in_float32(wrapped: nn.Module) -> None:
    # A bf16 backbone (CUDA) keeps its frozen weights in bf16; what the optimizer updates
    # stays float32, as AdamW's small steps vanish in bf16.
    for param in wrapped.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def inner_model(wrapped: Any) -> nn.Module:
    """The transformers model inside the peft model, with the adapters in its layers."""
    return wrapped.base_model.model


def lora_save_and_merge(wrapped: Any, folder: str | os.PathLike) -> nn.Module:
    """Save the adapter (and the head) to folder/adapter/, then fold the adapters into the
    weights: the plain transformers model that is returned scores as the adapted one did."""
    wrapped.save_pretrained(os.path.join(folder, ADAPTER_DIR))
    body = inner_model(wrapped).get_input_embeddings().weight
    dtype, on_cuda = body.dtype, body.is_cuda
    # Merged in float32, so the merged model scores as the adapted one did; a bf16 body on
    # CUDA (an LLM) goes back to bf16, which halves its folder.
    merged = wrapped.float().merge_and_unload()
    return merged.to(dtype) if on_cuda else merged
