"""torchrun / DistributedDataParallel on CPU with gloo (core/engine/distributed.py), against the
single-process trainer: 2 ranks x 64 with --sync-bn equal 1 process x 128 (weights, BN statistics
and history after 20 steps within 1e-5); 2 x 64 with BN per rank equal 1 x 128 whose BN normalises
each half of the batch on its own (and differ from SyncBN); a 2-rank run whose ranks are SIGKILLed
at random moments resumes to exactly the uninterrupted 2-rank run; a bad world size, a launch
without rendezvous, and ranks that never meet each fail with a clear error before training; the
CLI under torchrun writes one folder, from rank 0, recording the split."""
import os
import random
import re
import signal
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from core.engine import checkpoints as ck
from core.engine import distributed, models
from core.engine.train import Options, Recipe, RunSpec, train
from tests.ddp_job import synthetic
from tests.support import ROOT, free_port, kill_after_saves, run_group, torchrun_rank, wait_for

pytestmark = pytest.mark.slow

JOB = str(ROOT / "tests" / "ddp_job.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1",  # one core per rank; a rank that
       "PYTHONPATH": str(ROOT)}  # aborts prints where each of its threads stood; JOB imports core without an install


def torchrun(*args, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]


def run(cmd, env=ENV, timeout=300) -> subprocess.CompletedProcess:
    return run_group(cmd, timeout, cwd=ROOT, env=env)


def why(r: subprocess.CompletedProcess) -> str:
    """What the ranks printed (first) and torchrun's report (last) of a failed run."""
    return r.stderr if len(r.stderr) < 6000 else f"{r.stderr[:3000]}\n[...]\n{r.stderr[-3000:]}"


def killed(err: str, rank: int) -> bool:
    """torchrun's report lists `rank` as ended by SIGKILL (its 'Root Cause' is the earliest failure
    to the whole second, so when the survivor failed in the same second it may name either)."""
    return re.search(rf"rank\s*: {rank} \(local_rank: {rank}\)\s*exitcode\s*: -9 ", err) is not None


def max_diff(a, b) -> float:
    sa, sb = (ck.load(f, dtype=torch.float64).model.state_dict() for f in (a, b))
    return max((sa[k] - sb[k]).abs().max().item() for k in sa)


class HalvesBN(torch.nn.BatchNorm2d):
    """What 2 ranks with BN per rank compute, in one process: each half of the batch normalised with
    its own statistics; running statistics from the first half only (rank 0's: DDP broadcasts them)."""

    def forward(self, x):
        first, second = x.chunk(2)
        return torch.cat([super().forward(first),
                          F.batch_norm(second, None, None, self.weight, self.bias, True, 0.0, self.eps)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Folders of resnet20 trained on the same data, batch 128, in float64 for 20 steps: 2 ranks with
    --sync-bn, 2 ranks with BN per rank, 1 process, 1 process with HalvesBN; and in float32 for 1
    step: 2 ranks with --sync-bn, 1 process."""
    root = tmp_path_factory.mktemp("ddp")
    x, y = synthetic()
    jobs = {"sync": ("20", "--sync-bn", "--float64"), "per-rank": ("20", "--float64"), "sync32": ("1", "--sync-bn")}
    for mode, (iters, *flags) in jobs.items():
        r = run(torchrun(JOB, str(root / mode), iters, "128", str(min(int(iters), 10)), *flags))
        assert r.returncode == 0, why(r)
    build = models.build

    def halves(name):
        model = build(name)
        for m in model.modules():
            if type(m) is torch.nn.BatchNorm2d:
                m.__class__ = HalvesBN
        return model
    with pytest.MonkeyPatch.context() as mp:
        for mode, iters, dtype, patch in (("single", 20, torch.float64, False), ("single32", 1, torch.float32, False),
                                          ("halves", 20, torch.float64, True)):  # the patch stays: last
            if patch:
                mp.setattr(models, "build", halves)
            train(RunSpec("resnet20", seed=1), Recipe(iters=iters, batch_size=128, eval_every=min(iters, 10)), (x, y),
                  {"test": (x[:64], y[:64])}, root / mode, Options(train_eval=False, bar=False, dtype=dtype))
    return {k: root / k / "resnet20" for k in (*jobs, "single", "halves", "single32")}


def test_sync_bn_two_ranks_equal_one_process(runs):
    """float64, 20 steps: to 1e-9. float32: one step to 1e-5; over 20 steps float32 training at lr 0.1
    amplifies any change in summation order (even 1 vs 2 threads of the single-process trainer
    differ by about 0.03 there), so the 20-step comparison is made in float64."""
    assert max_diff(runs["sync"], runs["single"]) < 1e-9
    assert max_diff(runs["sync32"], runs["single32"]) < 1e-5
    a, b = ck.read_history(runs["sync"]), ck.read_history(runs["single"])
    assert [r["iter"] for r in a] == [10, 20]
    for ra, rb in zip(a, b):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-9)
        assert (ra["train_err"], ra["test_err"], ra["lr"]) == (rb["train_err"], rb["test_err"], rb["lr"])


def test_bn_per_rank_equals_halves_and_differs_from_sync(runs):
    assert max_diff(runs["per-rank"], runs["halves"]) < 1e-9
    assert max_diff(runs["per-rank"], runs["sync"]) > 1e-3  # the BN statistics are what differ


def test_metrics_record_the_split(runs):
    got = {k: ck.load(runs[k]).metrics["parallel"] for k in ("sync", "per-rank", "single")}
    assert got["sync"] == {"world_size": 2, "per_rank_batch": 64, "bn": "sync", "bn_images": 128, "backend": "gloo"}
    assert got["per-rank"] == {"world_size": 2, "per_rank_batch": 64, "bn": "per-rank", "bn_images": 64,
                               "backend": "gloo"}
    assert got["single"] == {"world_size": 1, "per_rank_batch": 128, "bn": "per-rank", "bn_images": 128,
                             "backend": None}
    assert [distributed.describe(got[k], 128) for k in ("sync", "per-rank", "single")] == \
        ["2×64, SyncBN", "2×64, BN per rank", "1×128"]
    assert distributed.describe(None, 128) == "1×128"


def test_rank_killed_then_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    """SIGKILL rank 1, then rank 0 (the writer), each at a random moment after 3 more saves; torchrun
    ends the job, listing the dead rank as killed; the folder loads; resuming finishes it exactly as
    a 2-rank run that was never killed (tolerance 0: CPU training with gloo is deterministic)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # JOB is a script: it imports this tree's core, installed or not
    job = lambda out, *extra: torchrun(JOB, str(out), "60", "16", "3", *extra)  # noqa: E731
    folder, seen = tmp_path / "killed" / "resnet20", []
    random.seed(0)
    for rank in (1, 0):
        err = kill_after_saves(job(tmp_path / "killed", "--resume"), folder, victim=lambda p: torchrun_rank(p, rank))
        assert "Root Cause" in err and killed(err, rank), err[-3000:]
        got = ck.load(folder)
        assert not got.metrics["finished"]
        seen.append(got.metrics["iterations"])
    assert seen == sorted(seen) and seen[0] >= 9
    r = run(job(tmp_path / "killed", "--resume", "--sync-bn"))  # BN over 16 images now, not 8: refused
    assert r.returncode != 0 and "bn_images" in r.stderr
    for out in (tmp_path / "killed", tmp_path / "clean"):
        r = run(job(out, "--resume"))
        assert r.returncode == 0, why(r)
    resumed, clean = ck.load(folder), ck.load(tmp_path / "clean" / "resnet20")
    assert resumed.metrics["finished"] and resumed.metrics["iterations"] == 60
    for key, value in clean.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert strip(ck.read_history(folder)) == strip(ck.read_history(tmp_path / "clean" / "resnet20"))


def test_ranks_that_see_different_folders_stop_before_training(tmp_path):
    """Several machines without a shared --out: rank 0 finds the run at iteration 6, rank 1 none."""
    x, y = synthetic()
    train(RunSpec("resnet20", seed=1), Recipe(iters=60, batch_size=16, eval_every=3), (x, y), {"test": (x[:64], y[:64])},
          tmp_path / "0", Options(stop_at=6, train_eval=False, bar=False))
    r = run(torchrun(JOB, str(tmp_path), "60", "16", "3", "--sync-bn", "--resume", "--out-per-rank"))
    assert r.returncode != 0
    assert "the ranks disagree on where the run stands: [6, 0] (by rank)" in r.stderr, why(r)
    assert ck.load(tmp_path / "0" / "resnet20").metrics["iterations"] == 6
    assert not (tmp_path / "1").exists()


def _cli(out, *extra) -> list[str]:
    return ["-m", "core.engine.train", "--model", "resnet20", "--device", "cpu", "--out", str(out), *extra]


def test_bad_world_size_fails_before_training(tmp_path):
    r = run(torchrun(*_cli(tmp_path / "o"), nproc=3), timeout=120)
    assert r.returncode != 0
    assert "a global batch of 128 images does not split evenly over 3 ranks" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("rank", [0, 1])
def test_missing_rendezvous_fails_before_training(tmp_path, rank):
    """No MASTER_ADDR/PORT: refused at once. A rendezvous nobody else joins: refused after
    --dist-timeout (rank 0 hosts it and waits for rank 1; rank 1 finds no host)."""
    base = {**ENV, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": "0"}
    r = run([sys.executable, *_cli(tmp_path / "o")], env=base, timeout=120)
    assert r.returncode != 0 and "no rendezvous: MASTER_ADDR and MASTER_PORT not set" in r.stderr
    port = free_port()
    r = run([sys.executable, *_cli(tmp_path / "o", "--dist-timeout", "3")], timeout=120,
            env={**base, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    assert r.returncode != 0, r.stderr[-2000:]
    assert f"rank {rank} of 2: no rendezvous with the other ranks at 127.0.0.1:{port} within 3 s" in r.stderr
    assert not (tmp_path / "o").exists()


def test_pack_and_jobs_refused_under_torchrun(tmp_path):
    env = {**ENV, "WORLD_SIZE": "2", "RANK": "0"}
    for flag in (["--pack"], ["--jobs", "2"]):
        r = run([sys.executable, *_cli(tmp_path / "o", *flag)], env=env, timeout=120)
        assert r.returncode != 0 and "do not compose with several torchrun ranks" in r.stderr


def test_rank_that_loses_its_peer_says_so(cifar_dir, tmp_path):
    """Two ranks started by hand (as on two machines, with no torchrun agent to stop the survivor):
    SIGKILL rank 1 after rank 0's first save; rank 0 exits with an error naming what happened and
    how to resume, and its folder loads."""
    port, out, procs = free_port(), tmp_path / "o", []
    cmd = [sys.executable, *_cli(out, "--iters", "400", "--batch-size", "16", "--eval-every", "2",
                                 "--no-train-eval", "--data-dir", str(cifar_dir))]
    logs = [open(tmp_path / f"rank{r}.log", "w+") for r in (0, 1)]
    try:
        for r in (0, 1):
            env = {**ENV, "WORLD_SIZE": "2", "RANK": str(r), "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                   "MASTER_PORT": str(port)}
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=logs[r]))
        wait_for(lambda: ck.read_history(ck.readable(out / "resnet20")) or procs[0].poll() is not None, 180,
                 "rank 0's first save")
        procs[1].send_signal(signal.SIGKILL)
        procs[0].wait(120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    logs[0].seek(0)
    err = logs[0].read()
    assert procs[0].returncode == 1, err[-3000:]
    assert "error: rank 0 of 2 stopped (" in err and "the same command with --resume continues" in err, err[-3000:]
    assert not ck.load(out / "resnet20").metrics["finished"]


def test_cli_under_torchrun(cifar_dir, tmp_path):
    """`torchrun -m core.engine.train` on CIFAR-10: one folder, written by rank 0, one summary line, the
    split in metrics.json and in the evaluator's table."""
    out = tmp_path / "ck"
    r = run(torchrun(*_cli(out, "--iters", "4", "--batch-size", "32", "--eval-every", "4", "--no-train-eval",
                           "--data-dir", str(cifar_dir))))
    assert r.returncode == 0, why(r)
    assert r.stdout.count("resnet20: 4 iterations") == 1, r.stdout
    got = ck.load(out / "resnet20")
    assert got.metrics["parallel"]["world_size"] == 2 and got.metrics["parallel"]["per_rank_batch"] == 16
    assert sorted(p.name for p in out.iterdir()) == ["resnet20"]
    from core.engine.evaluate import evaluate_folder
    assert evaluate_folder(out / "resnet20")["setup"] == "2×16, BN per rank"
