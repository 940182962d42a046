"""Distributed set-up: torchrun's environment -> process group, device, DDP or FSDP wrapper.

Without torchrun (no WORLD_SIZE) everything is a single process on one device.
gloo on CPU, NCCL on GPU.

``ddp`` (the default) replicates the model, so the LM must fit on one GPU.
``fsdp`` shards it with FSDP2 (``fully_shard``): every decoder layer of the LM
(a FlamingoLayer: its gated cross-attention block and the original layer) is
one unit, the rest (embeddings, head, vision encoder, resampler) the root
unit. The model is told to run the same modules on every rank in every step
(``FlamingoModel.uniform_compute``), since a rank whose batch has no image
would otherwise skip the vision encoder / resampler and the ranks'
collectives would no longer match. Checkpoints hold the full (gathered)
trainable weights and optimiser state in the same format as DDP's.
"""
from __future__ import annotations

import contextlib
import gc
import os
import time
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
    """Barrier first: gloo's worker thread frees a finished collective's tensors
    (which needs the GIL) just after running it; destroying the group while it
    is still doing so deadlocks (the main thread joins it holding the GIL). The
    barrier's own work holds no Python tensors, so once it completes the worker
    is idle. The sleep then releases the GIL for a moment: a worker thread still
    freeing an earlier collective's tensors (gloo runs several) gets it and
    finishes before the main thread enters the shutdown, which joins those
    threads without releasing the GIL (a rare hang of one rank at exit, seen in CI)."""
    if d.enabled and dist.is_initialized():
        gc.collect()
        dist.barrier()
        time.sleep(0.2)
        dist.destroy_process_group()


MODES = ("ddp", "fsdp")


def wrap(model: nn.Module, d: Dist, mode: str, find_unused_parameters: bool,
         param_dtype: torch.dtype | None = None) -> nn.Module:
    """DDP wrapper, or the model sharded in place by FSDP2 (``param_dtype``: FSDP's
    mixed-precision compute dtype, None = the parameters' own)."""
    if mode not in MODES:
        raise ValueError(f"distributed must be one of {MODES}, got {mode!r}")
    if not d.enabled:
        return model
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [d.local_rank] if d.device.type == "cuda" else None
        return DDP(model, device_ids=ids, find_unused_parameters=find_unused_parameters)
    return shard(model, d, param_dtype)


def shard(model: nn.Module, d: Dist, param_dtype: torch.dtype | None = None) -> nn.Module:
    """FSDP2: each decoder layer of the LM, then the root (in place; returns the model)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from model.lm import find_decoder_layers

    mesh = init_device_mesh(d.device.type, (d.world,))
    mp = (MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
          if param_dtype is not None else MixedPrecisionPolicy())
    model.uniform_compute = True
    for layer in find_decoder_layers(model.lm):
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def unwrap(model: nn.Module) -> nn.Module:
    """The FlamingoModel inside a DDP wrapper (FSDP2 shards it in place: the model itself)."""
    return getattr(model, "module", model)


@contextlib.contextmanager
def _fsdp_no_sync(model):
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def no_sync(model: nn.Module, d: Dist):
    """A context for a backward whose gradients must not be reduced yet."""
    if not d.enabled:
        return contextlib.nullcontext()
    return _fsdp_no_sync(model) if is_fsdp(model) else model.no_sync()


def gate_values(model: nn.Module) -> dict[str, float]:
    """FlamingoModel.gate_values(); under FSDP the gates are gathered first (every rank must call it)."""
    base = unwrap(model)
    if not is_fsdp(base):
        return base.gate_values()
    out = {}
    for i, layer in base.xattn_layers.items():
        out[f"{i}.attn"] = float(layer.gated.attn_gate.detach().full_tensor().tanh())
        out[f"{i}.ff"] = float(layer.gated.ff_gate.detach().full_tensor().tanh())
    return out


def _param_order(base: nn.Module, optimizer) -> list[str]:
    """Names of the optimiser's parameters, in the order its state_dict() numbers them."""
    names = {id(p): n for n, p in base.named_parameters()}
    return [names[id(p)] for g in optimizer.param_groups for p in g["params"]]


def trainable_state(model: nn.Module, optimizer) -> tuple[dict, dict]:
    """(trainable weights by name, optimiser state) on CPU, as optimizer.state_dict() numbers them.

    Under FSDP the full tensors are gathered onto rank 0 (every rank must call
    this; the others get empty dicts), in the same format, so a checkpoint
    written under FSDP loads under DDP or in one process and vice versa.
    """
    base = unwrap(model)
    names = [n for n, _ in base.named_trainable_parameters()]
    if not is_fsdp(base):
        params = dict(base.named_parameters())
        return {n: params[n].detach().cpu().clone() for n in names}, optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    full = get_model_state_dict(base, options=opts)
    full_optim = get_optimizer_state_dict(base, optimizer, options=opts)
    if not full:  # not rank 0
        return {}, {}
    weights = {n: full[n] for n in names}
    indexed = optimizer.state_dict()  # param_groups (hyper-parameters, param numbers) as one process has them
    order = _param_order(base, optimizer)
    indexed["state"] = {i: full_optim["state"][n] for i, n in enumerate(order) if n in full_optim["state"]}
    return weights, indexed


def _fix_old_gate_state(params_in_order: list[nn.Parameter], optim_state: dict) -> dict:
    """Adam moments of 0-d gates (checkpoints from before gates were shape [1]) -> shape [1]."""
    state = {}
    for k, st in optim_state["state"].items():
        p = params_in_order[int(k)]
        st = {key: (v.reshape(1) if isinstance(v, torch.Tensor) and key != "step" and v.dim() == 0
                    and tuple(p.shape) == (1,) else v) for key, v in st.items()}
        state[k] = st
    return dict(optim_state, state=state)


def load_trainable_state(model: nn.Module, optimizer, weights: dict, optim_state: dict) -> None:
    """Inverse of trainable_state (every rank passes the full state it read from the checkpoint)."""
    base = unwrap(model)
    params = dict(base.named_trainable_parameters())
    if set(params) != set(weights):
        raise ValueError(f"checkpoint weights do not match the model's trainable parameters: "
                         f"missing {sorted(set(params) - set(weights))[:5]}, "
                         f"unexpected {sorted(set(weights) - set(params))[:5]}")
    weights = {n: (t.reshape(1) if t.dim() == 0 and tuple(params[n].shape) == (1,) else t)
               for n, t in weights.items()}
    optim_state = _fix_old_gate_state([p for g in optimizer.param_groups for p in g["params"]], optim_state)
    if not is_fsdp(base):
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(weights[n])
        optimizer.load_state_dict(optim_state)
        return
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)
    opts = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(base, weights, options=opts)
    order = _param_order(base, optimizer)
    by_name = {"state": {order[int(k)]: v for k, v in optim_state["state"].items()},
               "param_groups": [dict(g, params=[order[int(i)] for i in g["params"]])
                                for g in optim_state["param_groups"]]}
    set_optimizer_state_dict(base, optimizer, by_name, options=opts)


class _Weights:
    """What model.state.save_trainable reads from a model: its config and trainable weights."""

    def __init__(self, cfg, weights: dict):
        self.cfg, self._weights = cfg, weights

    def named_trainable_parameters(self):
        return list(self._weights.items())


def save_final(model: nn.Module, path: str, d: Dist, weights: dict | None = None) -> None:
    """model.save_trainable(path) on rank 0; under FSDP from the gathered weights (all ranks call it)."""
    from model.state import save_trainable
    base = unwrap(model)
    if is_fsdp(base):
        if weights is None:
            raise ValueError("under FSDP pass the gathered weights (trainable_state)")
        if d.main:
            save_trainable(_Weights(base.cfg, weights), path)
    elif d.main:
        save_trainable(base, path)


def all_mean(values: list[float], d: Dist) -> list[float]:
    """Mean over ranks of a few floats (for logging)."""
    if not d.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=d.device if d.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return (t / d.world).tolist()
