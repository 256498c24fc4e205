"""Data parallel through ``torch.distributed`` (gloo on CPU, nccl on GPU) with a manual gradient all-reduce."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Dist", "setup", "allreduce_grads", "allreduce_scalars"]


@dataclass
class Dist:
    """This process's place in the run (rank 0 of 1 without torchrun); ``owned``: we started the group."""

    rank: int = 0
    world: int = 1
    backend: str | None = None
    owned: bool = False

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def setup(device: str | None) -> tuple[Dist, torch.device]:
    from ..device import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return Dist(), dev
    import torch.distributed as dist

    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    owned = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owned = True
    return Dist(dist.get_rank(), dist.get_world_size(), dist.get_backend(), owned), dev


def allreduce_grads(params: list[nn.Parameter], world: int) -> None:
    """Average gradients over ranks with one flat all-reduce (every rank holds the same parameters)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat.div_(world)
    off = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[off : off + n].view_as(p).clone()
        off += n


def allreduce_scalars(d: dict[str, float], world: int) -> dict[str, float]:
    if world <= 1 or not d:
        return d
    keys = sorted(d)
    t = torch.tensor([d[k] for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return {k: float(v) / world for k, v in zip(keys, t.tolist(), strict=True)}
