"""Data-parallel training: `torchrun --nproc-per-node N -m nerlstm train ...`.

torchrun starts N processes with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set; each runs
the same training. Every rank draws the same epoch order (from the seed and the epoch
number) and takes every N-th batch of it; DistributedDataParallel averages the gradients
over the ranks in each step (gloo on the CPU, nccl on GPUs), so that the weights stay the
same everywhere. Rank 0 alone scores dev, logs and writes the model and checkpoint, and
tells the others the dev scores, so that every rank stops early at the same epoch. Before
each step the ranks agree on whether a signal arrived at any of them, so that all stop after
the same step.

One step trains N batches at once: the global batch is N times ``--batch-size``.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# What gloo says when the rank at the other end of a connection has ended.
PEER_GONE = ("closed by peer", "reset by peer", "Broken pipe")


@dataclass
class Shard:
    """This process's place among the ranks of a data-parallel run."""

    rank: int
    world: int
    local_rank: int
    local_world: int
    flags_on: str = "cpu"  # where the ranks sum their stop flags: nccl sums on the GPU only

    @property
    def writes(self) -> bool:
        """Whether this rank scores dev, logs and writes files (rank 0)."""
        return self.rank == 0

    def device(self, device: str) -> str:
        """Each rank's own GPU where the run is on GPUs."""
        return f"cuda:{self.local_rank}" if device.startswith("cuda") else device

    def start(self, device: str) -> None:
        """Join the other ranks (torchrun's rendezvous gives the address)."""
        if device.startswith("cuda"):
            torch.cuda.set_device(self.local_rank)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        self.flags_on = device

    def default_threads(self) -> int:
        """CPU threads per rank when none are given: the cores shared among the local ranks."""
        return max(1, (os.cpu_count() or 1) // self.local_world)

    def epoch_order(self, batches: Callable[[random.Random], list[list[int]]], seed: int,
                    epoch: int) -> list[list[int]]:
        """This rank's batches of an epoch: every rank draws the same order from the seed and
        the epoch, and takes every ``world``-th batch from its ``rank``-th on; the last
        batches that would leave some rank without one are left out (a different few each
        epoch)."""
        order = batches(random.Random(seed * 1_000_003 + epoch))
        steps = len(order) // self.world
        if steps == 0:
            from nerlstm.errors import NerlstmError

            raise NerlstmError(f"{len(order)} batches an epoch are too few for {self.world} "
                               f"processes: use a smaller --batch-size or fewer processes",
                               exit_code=2)
        return order[self.rank::self.world][:steps]

    def agreed(self, caught: list[int]) -> AgreedStop:
        return AgreedStop(caught, self.flags_on)

    def from_first(self, compute: Callable[[], Any]) -> Any:
        """``compute()``'s value on rank 0, given to every rank (the others wait for it)."""
        box = [compute() if self.writes else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def replicate(self, model: torch.nn.Module) -> Replica:
        return Replica(model)

    def close(self) -> None:
        """Leave the run, once every rank is done (one leaving early aborts the others). A
        rank found gone (killed: out of memory?) is one line, not the traceback of the
        collective that found it; torchrun reports which rank and how it ended."""
        if not dist.is_initialized():
            return
        try:
            dist.barrier()
        except RuntimeError as error:
            if not any(gone in str(error) for gone in PEER_GONE):
                raise
            from nerlstm.errors import NerlstmError

            raise NerlstmError(f"rank {self.rank}: another rank of the run is gone (killed, out "
                               f"of memory?); the best model and the last checkpoint are kept"
                               ) from None
        finally:
            dist.destroy_process_group()


def from_environment() -> Shard | None:
    """The shard torchrun's variables describe, or None outside a run of several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return Shard(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))


class AgreedStop:
    """A stop request as every rank sees it: true at all of them once a signal reached any,
    checked at the same point of each rank's run (one all-reduce each time it is asked)."""

    def __init__(self, caught: list[int], device: str = "cpu") -> None:
        self.caught, self.device = caught, device
        self.number = 0

    def __bool__(self) -> bool:
        found = torch.tensor([self.caught[0] if self.caught else 0], device=self.device)
        dist.all_reduce(found, op=dist.ReduceOp.MAX)
        self.number = int(found.item())
        return self.number != 0

    def __getitem__(self, index: int) -> int:
        return self.number


class _Loss(torch.nn.Module):
    """The model's training loss as a module's forward, which DDP wraps."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch) -> torch.Tensor:
        return self.model.loss(batch)


class Replica:
    """The model as a training step uses it (``loss`` and ``parameters``), its gradients
    averaged over the ranks by DistributedDataParallel during the backward pass."""

    def __init__(self, model: torch.nn.Module) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.model = model
        self.wrapped = DistributedDataParallel(_Loss(model))

    def loss(self, batch) -> torch.Tensor:
        return self.wrapped(batch)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.model.parameters()


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """As :func:`nerlstm.signals.stop_requests`, except that a repeated signal only asks
    again: torchrun passes a Ctrl-C on to ranks that the terminal already gave it to, and a
    rank must not die in the middle of a step that the others wait on."""
    caught: list[int] = []
    numbers = [number for number in (signal.SIGINT, signal.SIGTERM)
               if signal.getsignal(number) is not signal.SIG_IGN]
    previous = {number: signal.signal(number, lambda number, frame: caught.append(number))
                for number in numbers}
    try:
        yield caught
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
