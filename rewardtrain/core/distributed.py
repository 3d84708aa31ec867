"""The training loop's view of torch.distributed: which rank this is, each rank's share of a
batch, the step's few collectives, and DDP or FSDP2 wrapping. With one rank every function
here is a plain local computation, so the single-process path needs no process group.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes that train one model together."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        """Rank 0 validates, reports progress and writes the model."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = Ranks()


def init_from_env(device: str) -> Ranks:
    """Join the process group that torchrun described in RANK, WORLD_SIZE and LOCAL_RANK:
    NCCL between GPUs, gloo on CPU (the same code then runs on a laptop and in the tests)."""
    ranks = Ranks(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return ranks


def rank_device(device: str, ranks: Ranks) -> str:
    """Each rank of a node on its own GPU; CPU ranks share the CPU."""
    if ranks.distributed and device == "cuda":
        return f"cuda:{ranks.local_rank}"
    return device


def my_share(indices: list[int], ranks: Ranks) -> list[int]:
    """This rank's contiguous slice of a global batch: the slices are disjoint and cover it,
    and differ in size by at most one."""
    size, extra = divmod(len(indices), ranks.world_size)
    start = ranks.rank * size + min(ranks.rank, extra)
    return indices[start : start + size + (1 if ranks.rank < extra else 0)]


def sum_over_ranks(values: list[float], ranks: Ranks) -> list[float]:
    """Element-wise sum of every rank's values (a copy of them with one rank)."""
    if not ranks.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.tolist()


def leader_says(flag: bool, ranks: Ranks) -> bool:
    """Rank 0's decision (cancel, stop early), known to every rank after this call."""
    if not ranks.distributed:
        return flag
    return sum_over_ranks([1.0 if flag and ranks.leader else 0.0], ranks)[0] > 0


def gather_to_leader(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's value, on every rank (small objects: per-device figures)."""
    if not ranks.distributed:
        return [value]
    out: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(out, value)
    return out


def broadcast_from_leader(value: Any, ranks: Ranks) -> Any:
    if not ranks.distributed:
        return value
    box = [value if ranks.leader else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(
    module: nn.Module, *, sharding: str, ranks: Ranks, device: str, bf16: bool, blocks: list[str]
) -> nn.Module:
    """DDP (every rank holds the whole model, gradients all-reduced) or FSDP2 (each
    transformer block and the rest sharded over the ranks, gathered for its forward and
    backward only). Either way the module's forward is what the loop calls."""
    if not ranks.distributed:
        return module
    if sharding == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        # float32 weights sharded (the masters), bf16 compute, float32 gradient reduction.
        policy = MixedPrecisionPolicy(
            param_dtype=torch.bfloat16 if bf16 else None,
            reduce_dtype=torch.float32 if bf16 else None,
        )
        for block in [m for m in module.modules() if type(m).__name__ in blocks]:
            fully_shard(block, mp_policy=policy)
        fully_shard(module, mp_policy=policy)
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [ranks.local_rank] if device.startswith("cuda") else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrapped(module: nn.Module) -> nn.Module:
    """The module inside DDP (FSDP2 keeps the module itself)."""
    return getattr(module, "module", module)


def full_state_dict(net: nn.Module, ranks: Ranks, *, only_trainable: bool) -> dict:
    """The model's weights (all, or the trained ones) in CPU memory on rank 0, empty
    elsewhere. Under FSDP every rank takes part in gathering the shards; otherwise rank 0
    copies its own."""
    inner = unwrapped(net)
    keep = {n for n, p in inner.named_parameters() if p.requires_grad or not only_trainable}
    if ranks.distributed and inner is net:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(
            net, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        return {k: v for k, v in state.items() if k in keep} if ranks.leader else {}
    if not ranks.leader:
        return {}
    return {n: p.detach().to("cpu", copy=True) for n, p in inner.named_parameters() if n in keep}


@contextmanager
def gradient_sync(net: nn.Module, sync: bool):
    """Gradients meet across ranks on the last micro-batch of a step only."""
    if sync or not isinstance(net, nn.Module):
        yield
    elif hasattr(net, "no_sync"):  # DDP
        with net.no_sync():
            yield
    elif hasattr(net, "set_requires_gradient_sync"):  # FSDP2
        net.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            net.set_requires_gradient_sync(True)
    else:
        yield
