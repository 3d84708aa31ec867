"""The model as the training loop takes it: loaded in its precision and attention kernel,
dropout off, gradient checkpointing on where it pays, LoRA adapters where asked for, and the
figures that describe it (parameters, FLOPs per token, the device's peak; a run's MFU and
peak memory)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rewardtrain.core.config import TrainConfig
from rewardtrain.core.distributed import Ranks, gather_to_leader
from rewardtrain.core.lora import adapter_matches, inner_model, lora_resume, lora_wrap
from rewardtrain.core.model import (
    BackboneError,
    count_parameters,
    default_backbone,
    disable_dropout,
    load_backbone,
)

# Over this many parameters on CUDA, activations bound the batch: recompute them instead.
CHECKPOINTING_FROM_PARAMS = 300_000_000
# Dense bf16 tensor-core peaks, TFLOP/s, by a piece of torch.cuda.get_device_name(): MFU's
# denominator. A GPU not listed gets no MFU rather than a made-up one.
GPU_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0}


@dataclass
class Prepared:
    model: nn.Module  # the transformers model the loop trains (with LoRA's layers injected)
    tokenizer: Any
    lora: Any  # the peft model around `model`, or None
    checkpointing: bool
    trainable_params: int
    total_params: int


def attention_kernel(cfg: TrainConfig, device: str) -> str:
    """cfg's choice, else flash_attention_2 on CUDA where flash-attn is installed, else the
    model's own default ("")."""
    if cfg.attn_implementation:
        return cfg.attn_implementation
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return ""


def _use_checkpointing(cfg: TrainConfig, device: str, model: nn.Module) -> bool:
    supported = bool(getattr(model, "supports_gradient_checkpointing", False))
    if cfg.gradient_checkpointing is not None:
        if cfg.gradient_checkpointing and not supported:
            raise BackboneError(
                f"gradient_checkpointing is on, but this {model.config.model_type!r} model "
                "does not support it in transformers"
            )
        return cfg.gradient_checkpointing
    total = sum(p.numel() for p in model.parameters())
    return device.startswith("cuda") and supported and total > CHECKPOINTING_FROM_PARAMS


def prepare_model(
    cfg: TrainConfig, device: str, *, bf16: bool, init_from: str | None = None
) -> Prepared:
    """Load and ready the model on `device` (see the module docstring).

    With bf16 the weights load in bf16 on CUDA, and with LoRA anywhere: LoRA's frozen body
    stays so and what trains is float32; in full fine-tuning the weights become float32
    (autocast, FSDP or CPU master weights then compute in bf16). A warm start from a LoRA
    version with the same adapter shape goes on training that adapter on the backbone; any
    other warm start loads the version's merged weights (and, with LoRA, puts fresh adapters
    on them).
    """
    resume_adapter = bool(init_from) and adapter_matches(str(init_from), cfg)
    model, tokenizer = load_backbone(
        cfg.backbone or default_backbone(),
        init_from=None if resume_adapter else init_from,
        # bf16 weights: on CUDA always (half the memory), and for LoRA's frozen body anywhere
        # (autocast would otherwise cast every frozen weight to bf16 at each use).
        dtype=torch.bfloat16 if bf16 and (device.startswith("cuda") or cfg.lora_r) else None,
        attn_implementation=attention_kernel(cfg, device),
        num_labels=len(cfg.aspects) or 1,
    )
    # Before LoRA, whose own dropout is lora_dropout.
    if cfg.disable_dropout:
        disable_dropout(model)
    checkpointing = _use_checkpointing(cfg, device, model)
    if checkpointing:
        # Non-reentrant: works with frozen inputs (LoRA) and with DDP and FSDP.
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers 5's name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    lora = None
    if cfg.lora_r:
        lora = lora_resume(model, str(init_from)) if resume_adapter else lora_wrap(model, cfg)
        model = inner_model(lora)
    elif model.dtype != torch.float32:
        model.float()
    model.to(device).train()
    trainable, total = count_parameters(model)
    return Prepared(model, tokenizer, lora, checkpointing, trainable, total)


def flops_per_token(model: nn.Module) -> float:
    """Training FLOPs per token: 2 per weight for the forward, 2 for the backward's activation
    gradients, 2 more per trained weight for its own gradient (6N in full fine-tuning, about
    4N with LoRA). Embedding tables only look up; attention's own FLOPs are left out."""
    tables = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    matmul = trained = 0
    for param in model.parameters():
        if param.ndim >= 2 and id(param) not in tables:
            matmul += param.numel()
            trained += param.numel() if param.requires_grad else 0
    return 4.0 * matmul + 2.0 * trained


def gpu_peak_flops(device: str) -> float | None:
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    for key, tflops in GPU_PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def device_figures(
    device: str, model: nn.Module, ranks: Ranks, tokens_per_second: float
) -> tuple[float | None, list[float] | None]:
    """(MFU, peak memory per device in GB) of a run on CUDA; (None, None) elsewhere. Every rank
    calls it (the peaks are gathered)."""
    if not device.startswith("cuda"):
        return None, None
    peaks = gather_to_leader(torch.cuda.max_memory_allocated(device) / 1e9, ranks)
    peak = gpu_peak_flops(device)
    mfu = None
    if peak:
        mfu = flops_per_token(model) * tokens_per_second / (peak * ranks.world_size)
    return mfu, [round(p, 3) for p in peaks]
