"""One run over several processes: torchrun and DistributedDataParallel for core/engine/train.py.

    torchrun --standalone --nproc_per_node 2 -m core.engine.train --model resnet56   # 2 x 64, BN per rank
    torchrun --standalone --nproc_per_node 2 -m core.engine.train --model resnet56 --sync-bn

from_env() reads what torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
checks it before anything is loaded or trained (a global batch that the ranks cannot split evenly,
no rendezvous address, a GPU that is not there), joins the process group (NCCL on CUDA, gloo on
CPU) and proves the rendezvous with one all-reduce; each failure is one SetupError saying what to
do. Without WORLD_SIZE it is the ordinary single process: Dist() and nothing distributed at all.

What a run over W ranks is (tests/test_distributed.py holds each on CPU with gloo):
- rank r trains on rows [r*B/W, (r+1)*B/W) of global batch k, which is the single-process batch k
  (core.engine.data.TensorLoader, shard=(r, W)), so the sequence of global batches, their order and
  augmentation are the single-process run's; DDP averages the gradients over the ranks.
- BN: per rank by default (the paper: 128 images "on two GPUs", statistics over 64); rank 0's
  running statistics are the model's (DDP broadcasts its buffers before every forward). With
  sync_bn, BN statistics are over all B images: torch.nn.SyncBatchNorm on CUDA; on CPU, whose
  tensors torch's SyncBatchNorm refuses (its kernels are CUDA-only), CpuSyncBatchNorm, the same
  statistics summed over the ranks by blocking all_reduces, forward and backward (SumOverRanks).
  In float64 after 20 steps, 2 x 64 with SyncBN equals 1 x 128 to 1e-9, and 2 x 64 per rank
  equals 1 x 128 whose BN normalises each half on its own to 1e-9; in float32, one step agrees to
  1e-5 (20 steps at lr 0.1 amplify any rounding).
- rank 0 alone evaluates and writes the checkpoint folder (atomically, as always); every rank
  resumes from it, so on several machines --out must be a folder they all see (a rank that sees
  another iteration than rank 0 stops the run with that message, before training). A rank that
  dies ends the job: torchrun stops the others and lists the rank among the failures.
"""
from __future__ import annotations

import datetime
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

TIMEOUT_S = 1800  # rendezvous, and every collective: the other ranks wait while rank 0 evaluates


class SetupError(RuntimeError):
    """The launch cannot become a distributed run; the message says why and what to do."""


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    sync_bn: bool = False
    backend: str | None = None  # None: a single process, no process group

    @property
    def main(self) -> bool:
        """The rank that evaluates, writes checkpoints and prints."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world

    def device(self, kind: str) -> torch.device:
        """This rank's device: cuda:LOCAL_RANK, or the CPU."""
        return torch.device("cuda", self.local_rank) if kind == "cuda" and self.backend else torch.device(kind)

    def record(self, batch_size: int) -> dict:
        """What metrics.json keeps about the split: ranks, images per rank, what BN normalises over."""
        sync = self.sync_bn and self.world > 1
        return {"world_size": self.world, "per_rank_batch": batch_size // self.world,
                "bn": "sync" if sync else "per-rank", "bn_images": batch_size if sync else batch_size // self.world,
                "backend": self.backend}


def describe(parallel: dict | None, batch_size: int) -> str:
    """'1×128', '2×64, BN per rank' or '2×64, SyncBN' for a metrics.json "parallel" record (None: a
    run of the single-process trainer, from before the record existed)."""
    if not parallel or parallel["world_size"] == 1:
        return f"1×{parallel['per_rank_batch'] if parallel else batch_size}"
    bn = "SyncBN" if parallel["bn"] == "sync" else "BN per rank"
    return f"{parallel['world_size']}×{parallel['per_rank_batch']}, {bn}"


def launched(environ=None) -> bool:
    """Whether torchrun started this process as one rank of several (WORLD_SIZE over 1)."""
    env = os.environ if environ is None else environ
    return env.get("WORLD_SIZE", "1") != "1"


def from_env(environ=None, batch_size: int = 128, device: str = "cpu", sync_bn: bool = False,
             timeout_s: float = TIMEOUT_S) -> Dist:
    """Dist for this process, after joining the process group if torchrun started it."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return Dist(sync_bn=sync_bn)
    try:
        rank, world = int(env.get("RANK", "0")), int(env["WORLD_SIZE"])
        local_rank = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise SetupError(f"RANK={env.get('RANK')!r}, WORLD_SIZE={env['WORLD_SIZE']!r}, LOCAL_RANK="
                         f"{env.get('LOCAL_RANK')!r}: not integers; start with torchrun") from None
    if world < 1 or not 0 <= rank < world:
        raise SetupError(f"RANK={rank} and WORLD_SIZE={world} do not make a rank of a world; start with torchrun")
    if batch_size % world:
        raise SetupError(f"a global batch of {batch_size} images does not split evenly over {world} ranks; use "
                         f"--nproc_per_node (x --nnodes) dividing {batch_size}, or --batch-size divisible by {world}")
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
    if missing:
        raise SetupError(f"WORLD_SIZE={world} but no rendezvous: {' and '.join(missing)} not set. Start every rank "
                         "with torchrun (it sets them): torchrun --standalone --nproc_per_node N -m core.engine.train ...")
    backend = "nccl" if device == "cuda" else "gloo"
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise SetupError(f"rank {rank} has LOCAL_RANK {local_rank} but this machine shows "
                             f"{torch.cuda.device_count()} GPU(s); --nproc_per_node must not exceed them "
                             "(NCCL cannot run two ranks on one GPU)")
        torch.cuda.set_device(local_rank)
    d = Dist(rank, world, local_rank, sync_bn, backend)
    where = f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    try:
        dist.init_process_group(backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s),
                                device_id=d.device(device) if backend == "nccl" else None)
        dist.all_reduce(torch.zeros(1, device=d.device(device)))  # NCCL connects lazily: meet here
    except Exception as e:  # DistStoreError, DistNetworkError, a timeout...
        close()
        raise SetupError(f"rank {rank} of {world}: no rendezvous with the other ranks at {where} within "
                         f"{timeout_s:g} s ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                         "Start all ranks, with the same rendezvous address; --dist-timeout sets the wait") from None
    return d


def close(finished: bool = False):
    """Leave the process group. finished: every rank got here normally, so wait for the others first
    (rank 0 may still be saving), so that no rank tears its connections down while another still
    uses them."""
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    """The module to train with: the model itself, or DistributedDataParallel around it."""
    if d.backend is None:
        return model
    ids = [d.local_rank] if d.backend == "nccl" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)  # buffers: rank 0's, each step


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Every BatchNorm of `model` made synchronous over the ranks (same parameters, same buffers)."""
    if device.type != "cpu":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is torch.nn.BatchNorm2d:
            m.__class__ = CpuSyncBatchNorm  # a subclass that adds no state: the module stays as it was
    return model


class CpuSyncBatchNorm(torch.nn.BatchNorm2d):
    """SyncBatchNorm for CPU tensors (torch.nn.SyncBatchNorm refuses them, and DDP refuses it on
    CPU): batch mean and variance over every rank's images (two passes, each summed by
    SumOverRanks, whose backward sums the gradients of the statistics over the ranks, as torch's
    SyncBatchNorm does), running statistics updated with the unbiased variance over all
    of them. Every rank's batch has the same size, as TensorLoader's shards do. Eval mode, or no
    process group: plain BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or not self.training or not dist.is_initialized():
            return super().forward(x)
        count = x.numel() // x.shape[1] * dist.get_world_size()  # every rank holds an equal share (shard)
        mean = SumOverRanks.apply(x.sum((0, 2, 3))) / count
        centred = x - mean[None, :, None, None]
        var = SumOverRanks.apply(centred.square().sum((0, 2, 3))) / count
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked.item()
                self.running_mean.mul_(1 - f).add_(mean, alpha=f)
                self.running_var.mul_(1 - f).add_(var * count / (count - 1), alpha=f)
        return y


class SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over the ranks, differentiable: the gradient of each rank's input is the
    sum of the ranks' output gradients. Blocking all_reduces in both directions, as torch's own
    SyncBatchNorm exchanges its statistics (torch.nn.modules._functions), rather than the async
    functional collectives, whose pending work must not outlive the process group."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def total(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """The sum of `t` over the ranks (a new tensor; `t` itself when single)."""
    return t if d.backend is None else SumOverRanks.apply(t)


def gather_to_main(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sums of `t` over the ranks on rank 0, zeros elsewhere: accumulators in this form sum to the
    same total whether the run was resumed (rank 0 reads the saved sums) or not."""
    t = total(t, d)
    return t if d.main else torch.zeros_like(t)


def agree(d: Dist, what: str, value, hint: str):
    """Raise ValueError (on every rank) unless every rank passes an equal `value`."""
    if d.backend is None:
        return
    values = [None] * d.world
    dist.all_gather_object(values, value)
    if any(v != values[0] for v in values):
        raise ValueError(f"the ranks disagree on {what}: {values} (by rank); {hint}")


@contextmanager
def main_first(d: Dist):
    """Rank 0 runs the block first (it may finish an interrupted save's renames), then the others."""
    if d.backend is not None and not d.main:
        dist.barrier()
    try:
        yield
    finally:
        if d.backend is not None and d.main:
            dist.barrier()
