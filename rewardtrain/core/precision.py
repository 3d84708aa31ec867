"""bf16 training with float32 master weights: the CPU's fast path where it has native bf16.

Autocast keeps float32 weights and casts each one to bf16 at every use, and casts activations
and gradients back and forth at every op it runs in float32 (LayerNorm, softmax, the residual
adds). On a CPU those casts are memory-bound copies: about a sixth of a MiniLM step. Here the
model itself runs in bf16 and the casts are gone, while the optimizer still updates float32
copies of the weights (the "master" weights): an AdamW update of lr 5e-5 on a weight of 0.05 is
below bf16's resolution (3 significant digits), so updating bf16 weights directly would lose
most of training. Gradients are collected into float32 after every backward (accumulation
happens there too) and the updated masters are copied into the bf16 weights after each step.

Embedding tables stay float32 and are updated in place, with no copy: their lookups are cast
to bf16 as they leave the table (a forward hook), so each step converts a few thousand rows
instead of a 30k-row table twice. Validation and the returned model use the float32 weights
(`float32()`), so what is validated is what is saved.

Below it, the choice a training step makes: bf16 or not, master weights or autocast, and on a
bf16 CPU plain attention for narrow batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from rewardtrain.core.config import TrainConfig

if TYPE_CHECKING:
    from rewardtrain.core.distributed import Ranks
    from rewardtrain.core.prepare import Prepared


class MasterWeights:
    """Puts `model` in bf16 (embedding tables excepted) and keeps float32 masters of it."""

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        self.dtype = dtype
        embedding_weights = {
            id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)
        }
        # (name, the model's parameter, its float32 master or None for an embedding table)
        self._entries: list[tuple[str, nn.Parameter, torch.Tensor | None]] = []
        for name, param in model.named_parameters():
            if not param.requires_grad or not param.is_floating_point():
                continue
            if id(param) in embedding_weights:
                self._entries.append((name, param, None))
                continue
            master = param.detach().float().clone().requires_grad_(True)
            param.data = master.to(dtype)
            self._entries.append((name, param, master))
        self._low = [p for _, p, m in self._entries if m is not None]
        self._masters = [m for _, _, m in self._entries if m is not None]
        self._cast = True
        self._hooks = [
            module.register_forward_hook(self._cast_lookup)
            for module in model.modules()
            if isinstance(module, nn.Embedding)
        ]

    def _cast_lookup(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output.to(self.dtype) if self._cast else output

    def named_parameters(self) -> list[tuple[str, torch.Tensor]]:
        """What the optimizer updates: float32 masters, and the embedding tables themselves."""
        return [(name, param if m is None else m) for name, param, m in self._entries]

    def collect_grads(self) -> None:
        """Move the bf16 gradients of the last backward into the masters' (float32) grads."""
        for low, master in zip(self._low, self._masters, strict=True):
            if low.grad is None:
                continue
            if master.grad is None:
                master.grad = low.grad.float()
            else:
                master.grad.add_(low.grad)
            low.grad = None

    @torch.no_grad()
    def push(self) -> None:
        """Copy the masters (just updated by the optimizer) into the bf16 weights."""
        torch._foreach_copy_(self._low, self._masters)

    @contextmanager
    def float32(self) -> Iterator[None]:
        """The model with its float32 weights for the duration (validation, a snapshot)."""
        self._swap_in_masters()
        try:
            yield
        finally:
            for low, master in zip(self._low, self._masters, strict=True):
                low.data = master.to(self.dtype)
            self._cast = True

    def finish(self) -> None:
        """Leave the model float32 for good (the masters' values), with the hooks removed."""
        self._swap_in_masters()
        for hook in self._hooks:
            hook.remove()

    def _swap_in_masters(self) -> None:
        self._cast = False
        for low, master in zip(self._low, self._masters, strict=True):
            # The model's weight shares the master's storage while in float32: the optimizer
            # never runs meanwhile, and float32() replaces it with a bf16 copy afterwards.
            low.data = master


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
    """bf16 weights with float32 masters (MasterWeights) instead of autocast."""
    if not bf16:
        return False
    if cfg.bf16_master_weights is not None:
        return cfg.bf16_master_weights
    return device == "cpu"


def autocast(device: str, bf16: bool):
    if not bf16:
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


@dataclass
class StepPrecision:
    """How the step computes: bf16 or not, CPU master weights, CPU attention switching (which
    model.RewardForward does)."""

    bf16: bool
    masters: MasterWeights | None
    eager_up_to: int  # CPU bf16: batches up to this width use plain attention (0 = never)


def step_precision(
    cfg: TrainConfig, device: str, prepared: Prepared, ranks: Ranks
) -> StepPrecision:
    bf16 = use_bf16(cfg, device)
    model = prepared.model
    # One process, full fine-tuning: bf16 model, float32 masters (MasterWeights).
    single_full = not ranks.distributed and prepared.lora is None
    masters = (
        MasterWeights(model) if single_full and use_master_weights(cfg, device, bf16) else None
    )
    attention = model.config._attn_implementation
    eager_up_to = 0
    if device == "cpu" and bf16 and attention == "sdpa" and model._can_set_attn_implementation():
        eager_up_to = cfg.cpu_eager_attention_max_tokens
    return StepPrecision(bf16, masters, eager_up_to)
