"""Multi-process training under `torchrun` (DistributedDataParallel).

Started by torchrun (which sets RANK, WORLD_SIZE, LOCAL_RANK), every process trains
one slice of a global batch and DDP averages the gradients. One process per GPU with
NCCL; on CPUs the gloo backend is used (how the tests run it). A plain
`streamnst train` sees no torchrun variables and stays single-process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from streamnst.core.errors import DeviceError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """The process's place in a torchrun job (a single process when not under torchrun)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise DeviceError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by "
                          "torchrun)") from None
    return DistInfo(rank, world, local)


def setup(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group; returns the device this process trains on."""
    if not info.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return device


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
