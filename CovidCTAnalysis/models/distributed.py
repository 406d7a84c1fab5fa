"""Data-parallel training under ``torchrun`` (DistributedDataParallel), for any of the project's trainers.

A trainer calls ``from_environment(device)`` once: outside torchrun (or with one process) it returns None and the
trainer runs as before; under ``torchrun --nproc_per_node N`` it joins the process group (NCCL on CUDA, one GPU per
process picked by LOCAL_RANK; gloo on the CPU) and returns a ``Distributed`` that

- ``wrap``s the network in DDP (gradients averaged over the processes at every step; BatchNorm synchronised over
  them on CUDA so its statistics are those of the global batch; gloo has no SyncBatchNorm, so on the CPU each
  process normalises over its own share);
- ``shard``s each global batch deterministically: every process draws the same global batch (same seed, same
  order) and takes every N-th image of it, so the recipe (global batch size, steps per epoch, learning-rate schedule)
  stays that of one process and only the work is split. This is what DistributedSampler does per epoch, applied per
  batch, so a trainer's own sampling and schedule need no change.
- says which process writes (``is_main``: rank 0 alone writes outputs and logs).

Results are not bit-identical to one process (other augmentation draws per process, BatchNorm on the CPU per share).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    device: object  # torch.device of this process
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This process's share of a global batch: every ``world_size``-th index from ``rank`` on."""
        return np.asarray(indices)[self.rank::self.world_size]

    def wrap(self, net):
        """``net`` on this process's device inside DistributedDataParallel (SyncBatchNorm on CUDA)."""
        import torch

        net = net.to(self.device)
        if self.device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
            return torch.nn.parallel.DistributedDataParallel(net, device_ids=[self.device.index])
        return torch.nn.parallel.DistributedDataParallel(net)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes (e.g. an epoch's loss, for the log)."""
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. builds a data cache), the others after it, so they find it built."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher setting RANK, WORLD_SIZE, LOCAL_RANK) started more than one process."""
    return all(k in os.environ for k in ENV) and int(os.environ["WORLD_SIZE"]) > 1


def from_environment(device: str = "auto") -> Distributed | None:
    """Join torchrun's process group, or None when not launched by torchrun with several processes.

    ``device``: 'auto' (CUDA when there is one), 'cpu' or 'cuda'; on CUDA each process takes GPU LOCAL_RANK.
    """
    if not launched_by_torchrun():
        return None
    import torch
    import torch.distributed as dist

    from .device import select_device

    rank, world, local = (int(os.environ[k]) for k in ENV)
    chosen = select_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(chosen)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Distributed(rank, world, local, chosen, backend)
