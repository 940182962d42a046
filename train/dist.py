"""Distributed set-up: torchrun's environment -> process group, device, DDP wrapper.

Without torchrun (no WORLD_SIZE) everything is a single process on one device.
gloo on CPU, NCCL on GPU. DDP replicates the model, so the LM must fit on one
GPU. (FSDP for larger LMs is not wired yet: FSDP2 cannot shard the model's 0-d
gate parameters, and a rank whose batch has no image skips the resampler, so
the ranks' collectives would not match.)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    return Dist(rank, world, local_rank, dev)


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, d: Dist, mode: str, find_unused_parameters: bool) -> nn.Module:
    if not d.enabled:
        return model
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [d.local_rank] if d.device.type == "cuda" else None
        return DDP(model, device_ids=ids, find_unused_parameters=find_unused_parameters)
    raise ValueError(f"distributed must be ddp, got {mode!r} (FSDP is not wired yet; see above)")


def unwrap(model: nn.Module) -> nn.Module:
    """The FlamingoModel inside a DDP wrapper."""
    return getattr(model, "module", model)


def no_sync(model: nn.Module, d: Dist):
    """A context for a backward whose gradients must not be reduced yet."""
    import contextlib
    return model.no_sync() if d.enabled else contextlib.nullcontext()


def trainable_state(model: nn.Module, optimizer) -> tuple[dict, dict]:
    """(trainable weights by name, optimiser state) on CPU."""
    base = unwrap(model)
    names = [n for n, _ in base.named_trainable_parameters()]
    params = dict(base.named_parameters())
    return {n: params[n].detach().cpu().clone() for n in names}, optimizer.state_dict()


def load_trainable_state(model: nn.Module, optimizer, weights: dict, optim_state: dict) -> None:
    base = unwrap(model)
    params = dict(base.named_trainable_parameters())
    if set(params) != set(weights):
        raise ValueError(f"checkpoint weights do not match the model's trainable parameters: "
                         f"missing {sorted(set(params) - set(weights))[:5]}, "
                         f"unexpected {sorted(set(weights) - set(params))[:5]}")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(weights[n])
    optimizer.load_state_dict(optim_state)


def all_mean(values: list[float], d: Dist) -> list[float]:
    """Mean over ranks of a few floats (for logging)."""
    if not d.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=d.device if d.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return (t / d.world).tolist()
