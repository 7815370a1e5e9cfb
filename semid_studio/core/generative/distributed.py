"""Data-parallel training with ``torch.distributed`` (DDP) under ``torchrun``.

``torchrun --nproc-per-node N -m semid_studio.cli train PROJECT ...`` (or ``semid train
--nproc N``, which starts exactly that) trains ONE model with N processes:

- every process builds the same global batches (the same seeded order as one process) and
  takes its share of each batch's rows (:meth:`Dist.rows`); DDP averages the gradients, and
  each share's loss is weighted by its share of the batch's targets, so a step is the step one
  process would take on the whole batch (the global batch is the spec's ``batch_targets``);
- rank 0 alone writes to the project (checkpoints, metrics, leases); the others open it
  read-only and learn the model id from rank 0;
- validation is sharded across the ranks and gathered, so every rank sees the same figures,
  and rank 0's stop decisions (time budget, cancel, early stop) are broadcast each step so all
  ranks stop together;
- checkpoints count steps and data position in global batches, so a run can resume with
  another N (or with one process).

Backend gloo on the CPU, nccl on CUDA (one GPU per process: ``cuda:LOCAL_RANK``).
:data:`SINGLE` is the one-process case: every method is then a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import SemidError

#: how long a rank waits for the others at a collective (rank 0's set-up, a long validation)
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class Dist:
    """This process's place in a data-parallel run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # None: the caller's own --device (one process)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- splitting work

    def rows(self, n: int) -> np.ndarray:
        """This rank's share of ``n`` rows: every ``world``-th one from ``rank`` (DistributedSampler's split)."""
        return np.arange(self.rank, n, self.world)

    def gather_rows(self, local: np.ndarray, n: int) -> np.ndarray:
        """Put every rank's :meth:`rows` results back in row order (the same array on every rank)."""
        if not self.active:
            return local
        size = -(-n // self.world)  # shares differ by at most one row: pad to the largest
        padded = np.zeros((size, *local.shape[1:]), dtype=local.dtype)
        padded[: len(local)] = local
        tensor = torch.from_numpy(padded).to(self._comm_device)
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        torch.distributed.all_gather(parts, tensor)
        out = np.zeros((n, *local.shape[1:]), dtype=local.dtype)
        for rank, part in enumerate(parts):
            count = len(range(rank, n, self.world))
            out[rank::self.world] = part[:count].cpu().numpy()
        return out

    # -- agreeing

    def from_main(self, *values: float) -> list[float]:
        """Rank 0's values on every rank (decisions only rank 0 may take: time, cancel, model id)."""
        if not self.active:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._comm_device)
        torch.distributed.broadcast(tensor, src=0)
        return tensor.cpu().tolist()

    def total(self, value: float) -> float:
        """The sum of ``value`` over the ranks."""
        if not self.active:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def barrier(self) -> None:
        """Wait until every rank is here (the end of a successful run: see :func:`stop`)."""
        if self.active:
            torch.distributed.barrier()

    def wrap(self, module: torch.nn.Module, *, unused: bool = False) -> torch.nn.Module:
        """The module under DDP (it averages the gradients of what its forward computed).
        ``unused``: some steps leave parameters without a gradient (DDP must then look for them)."""
        if not self.active:
            return module
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        # the catalogue buffers are the same on every rank: synced once at the start, not per step
        sync = ({"forward_sync_buffers": False}
                if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                else {"broadcast_buffers": False})
        return DistributedDataParallel(module, find_unused_parameters=unused, **sync)

    @property
    def _comm_device(self) -> torch.device:
        # nccl moves CUDA tensors only; gloo CPU tensors
        return self.device if self.device is not None and self.device.type == "cuda" else torch.device("cpu")


SINGLE = Dist()


def launched_by_torchrun() -> bool:
    """Whether this process is a worker of ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def start(device: str | None) -> Dist:
    """Join the process group ``torchrun`` set up (its env variables); one device per rank.

    ``device``: ``cpu``, ``cuda`` or ``auto`` (CUDA when every local rank can have a GPU of its
    own); ``cuda:N`` pins one GPU and so cannot serve several processes.
    """
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    dev = pick_device(device, local_world)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)  # "cuda" then means this rank's GPU for every library (MiniLM too)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=TIMEOUT)
    return Dist(rank, world, dev)


def pick_device(device: str | None, nproc: int) -> torch.device:
    """The device type for ``nproc`` processes on this machine, or one clear line why not."""
    text = (device or "auto").strip().lower()
    if text.startswith("cuda:"):
        raise SemidError(f"--device {device} pins one GPU; with several processes use --device cuda "
                         "(process i takes cuda:i)")
    if text == "auto":
        # a GPU each, or the CPU for all: mixing would make the slowest rank set the pace
        if torch.cuda.is_available() and torch.cuda.device_count() >= nproc:
            return torch.device("cuda")
        return torch.device("cpu")
    dev = resolve_device(text)
    if dev.type == "cuda" and torch.cuda.device_count() < nproc:
        raise SemidError(f"--nproc {nproc} with --device cuda needs {nproc} GPUs; torch sees "
                         f"{torch.cuda.device_count()} (use --nproc {torch.cuda.device_count()}, or --device cpu)")
    return dev


def stop() -> None:
    """Leave the process group. After a successful run the caller first waits for every rank
    (:meth:`Dist.barrier`): rank 0 still writes the last checkpoint when the others are done,
    and a rank that tears its gloo connections down while another is still running leaves that
    one to notice the closed connection on its own (an abort of rank 1 was seen once in ten
    runs and not reproduced since: the barrier closes that window at least)."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def launch(argv: list[str], nproc: int, device: str | None) -> int:
    """``semid train --nproc N``: run this same command (``argv``, without ``--nproc``) as N
    processes on this machine, through torchrun's own launcher (``torch.distributed.run``)
    in this process, so that its failures and Ctrl+C end in one line, not a traceback."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise SemidError(f"--nproc must be at least 1, got {nproc}")
    dev = pick_device(device, nproc)  # a bad combination fails here, before N processes start
    cores = cpu_cores()
    if dev.type == "cpu" and nproc > cores:
        # more CPU processes than cores only adds communication: each step waits for the slowest
        raise SemidError(f"--nproc {nproc} on the CPU: this machine has {cores} core(s); "
                         f"use --nproc {cores} or fewer")
    # each process its share of the cores (torchrun alone would give each one thread)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    # no --master-port: torchrun then finds a free port itself (one machine)
    args = parse_args(["--nproc-per-node", str(nproc), "-m", "semid_studio.cli", *argv])
    try:
        run(args)
    except SignalException:
        return 130  # Ctrl+C reached the workers too: rank 0 has saved the last completed step
    except ChildFailedError as exc:
        codes = sorted({int(f.exitcode) for f in exc.failures.values()})
        if set(codes) <= {130, -2}:
            return 130
        raise SemidError(f"{len(exc.failures)} of the {nproc} training processes failed (exit code "
                         f"{', '.join(map(str, codes))}); their own message is above") from None
    return 0
