"""The lease scripts' logic on CPU: the probe's plan choice, the queue's units, one probe run, the skip reason,
and that nets already finished with the same seed (shipped, or in --resume-from) are not trained again."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.lease import units
from tools.probe import choose, members, r20_cost

ROOT = Path(__file__).resolve().parent.parent


def _run(depth, k, jobs, mode, rate, sec, impl="grouped", mps=False, startup=10.0):
    return {"depth": depth, "k": k, "jobs": jobs, "mode": mode, "impl": impl, "mps": mps,
            "r20_img_per_s": rate, "s_per_step": sec, "startup_s": startup}


def test_choose_takes_the_fastest_plan_at_depth_56_and_fits_depth():
    probe = {"runs": [_run(56, 1, 3, "reduce-overhead", 90_000, 0.022),
                      _run(56, 4, 1, "reduce-overhead", 200_000, 0.0077),
                      _run(110, 4, 1, "reduce-overhead", 180_000, 0.0155, startup=40.0),
                      _run(20, 8, 1, "reduce-overhead", 400_000, 0.0023),  # faster, but not at depth 56
                      {**_run(56, 8, 1, "reduce-overhead", 0, 0), "error": "OOM"},
                      {"model": "resnet56", "mode": "eager", "s_per_iter": 0.03}]}  # a pre-packing probe row
    plan = choose(probe)
    assert (plan["k"], plan["jobs"], plan["mode"], plan["impl"], plan["mps"]) == (4, 1, "reduce-overhead", "grouped", False)
    assert plan["sec"](56) == pytest.approx(0.0077) and plan["sec"](110) == pytest.approx(0.0155)
    assert plan["sec"](83) == pytest.approx((0.0077 + 0.0155) / 2)
    assert plan["startup_s"] == pytest.approx(60.0)
    assert choose(probe, max_k=2)["k"] == 1  # a queue of twins cannot fill packs of 4
    assert choose(probe, max_k={"grouped": 4})["k"] == 4 and choose(probe, max_k={"vmap": 4})["k"] == 1
    assert choose(None)["sec"] is None and choose({"runs": probe["runs"][-2:]})["k"] == 1


def test_units_pack_the_queue_by_depth_in_order():
    queue = ["resnet56", "plain56", "resnet110", "plain110", "resnet32", "plain32", "resnet20b", "resnet44"]
    assert units(queue, 2) == [["resnet56", "plain56"], ["resnet110", "plain110"], ["resnet32", "plain32"],
                               ["resnet20b"], ["resnet44"]]
    assert units(queue, 1) == [[m] for m in queue]
    assert units(queue, 2, "vmap")[:2] == [["resnet56"], ["plain56"]]


def test_members_and_cost():
    assert members(56, 4, "grouped") == [("resnet56", 0), ("plain56", 0), ("resnet56", 1), ("plain56", 1)]
    assert members(56, 3, "vmap") == [("resnet56", 0), ("resnet56", 1), ("resnet56", 2)]
    assert [r20_cost(d) for d in (20, 56, 110)] == [1.0, 3.0, 6.0]


@pytest.mark.slow
def test_probe_one_packed_run_on_cpu():
    r = subprocess.run([sys.executable, "-m", "tools.probe", "one", "--depth", "20", "--k", "2", "--steps", "8",
                        "--images", "512", "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert (got["depth"], got["k"], got["impl"], got["mode"]) == (20, 2, "grouped", "eager")
    assert got["s_per_step"] > 0 and got["r20_img_per_s"] == got["img_per_s"] > 0  # depth 20: resnet20 images


def test_probe_rates_come_from_the_steady_stretch_of_the_history(monkeypatch):
    """tools.probe.one's numbers, on a stand-in trainer whose history has known times: a slow start (as
    torch.compile gives), then 0.25 s per step. The rate is read between the middle and the last rows,
    so the start is left out: 0.25 s per step; 2 members x 128 images / 0.25 s = 1,024 img/s; a 56-layer
    image is 3 resnet20 images (54 / 18): 3,072."""
    import core.engine.train_packed
    from core.engine import checkpoints
    from tools.probe import one

    def stand_in(specs, recipe, train, test, out, options):
        assert [(s.name, s.seed) for s in specs] == [("resnet56", 0), ("plain56", 0)] and options.impl == "grouped"
        rows = [{"iter": i, "wall_s": 20.0 if i == recipe.eval_every else 50.0 + 0.25 * i}  # 20, 54, 56, ... s
                for i in range(recipe.eval_every, recipe.iters + 1, recipe.eval_every)]
        (Path(out) / specs[0].name).mkdir()
        (Path(out) / specs[0].name / checkpoints.HISTORY).write_bytes(checkpoints.history_csv(rows))
    monkeypatch.setattr(core.engine.train_packed, "train_packed", stand_in)
    got = one(56, 2, "grouped", "eager", 64, "cpu", 256)
    assert (got["s_per_step"], got["img_per_s"], got["r20_img_per_s"]) == (0.25, 1024.0, 3072.0), got


def test_train_skip_names_the_real_reason(tmp_path):
    """Without --fit, a unit waits only for --min-left; the skip said 'estimate 0 s > 118 s left' once."""
    r = subprocess.run([sys.executable, "-m", "tools.lease", "train", "--out", str(tmp_path / "out"),
                        "--work", str(tmp_path / "work"), "--budget", "30", "--models", "resnet20",
                        "--seed", "99", "--jobs", "1", "--pack", "1", "--compile", "eager", "--device", "cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "skipped resnet20: 30 s left, not over --min-left 120 s" in r.stdout


def test_train_leaves_out_nets_finished_with_the_same_seed(tmp_path):
    """A lease once retrained shipped resnet110 and, in a second call, three nets the first had finished."""
    done = tmp_path / "resume" / "plain20"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({"finished": True, "seed": 0}))
    r = subprocess.run([sys.executable, "-m", "tools.lease", "train", "--out", str(tmp_path / "out"),
                        "--work", str(tmp_path / "work"), "--budget", "30", "--models", "resnet20", "plain20",
                        "--resume-from", str(tmp_path / "resume"), "--jobs", "1", "--pack", "1",
                        "--compile", "eager", "--device", "cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "nothing to train" in r.stderr and str(done) in r.stderr
    assert str(ROOT / "checkpoints" / "resnet20") in r.stderr


def test_train_leaves_out_shipped_seed_runs(tmp_path):
    """Seed runs ship as checkpoints/seeds/NAME-seedS (core.engine.runs.folder_for); a --seed S lease looks
    there, not in checkpoints/NAME (seed 0). resnet20's seed 1 is shipped (first 2026-11-28 lease)."""
    shipped = ROOT / "checkpoints" / "seeds" / "resnet20-seed1"
    assert (shipped / "metrics.json").is_file()
    r = subprocess.run([sys.executable, "-m", "tools.lease", "train", "--out", str(tmp_path / "out"), "--work",
                        str(tmp_path / "work"), "--budget", "30", "--models", "resnet20", "--seed", "1",
                        "--jobs", "1", "--pack", "1", "--compile", "eager", "--device", "cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "nothing to train" in r.stderr and str(shipped) in r.stderr
