"""The trainer on CPU: the loss falls, a resumed run is bit-identical, a kill leaves a loadable folder
(kills at moments found by polling the history with a deadline, never by sleeping a guessed time);
and the data fixture's rule: without CIFAR-10 these tests skip, but fail under CI ($CI true)."""
import dataclasses
import json
import os
import random
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from core.engine import checkpoints as ck
from core.engine.recipe import lr_at
from core.engine.train import Options, Recipe, RunSpec, train
from tests import support
from tests.support import kill_after_saves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _subset(cifar, n_train, n_test):
    (xtr, ytr), (xte, yte) = cifar["train"], cifar["test"]
    return (xtr[:n_train], ytr[:n_train]), {"test": (xte[:n_test], yte[:n_test])}


def test_paper_schedule():
    r = Recipe()
    assert (r.iters, r.batch_size, r.momentum, r.weight_decay) == (64_000, 128, 0.9, 1e-4)
    assert [lr_at(r, i, False) for i in (0, 31_999, 32_000, 47_999, 48_000, 63_999)] == \
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert lr_at(r, 0, True) == 0.01
    # a warmup that never reaches its target is cut off by the first lr step
    assert [lr_at(r, i, True) for i in (31_999, 32_000, 48_000)] == [0.01, 0.01, 0.001]
    short = dataclasses.replace(r, iters=200)
    assert [lr_at(short, i, False) for i in (99, 100, 150)] == [0.1, 0.01, 0.001]


@pytest.mark.slow
def test_loss_falls_in_150_cpu_iterations(cifar, tmp_path):
    train_set, evals = _subset(cifar, 10_000, 500)
    recipe = Recipe(iters=150, batch_size=64, eval_every=50)
    m = train(RunSpec("resnet20"), recipe, train_set, evals, tmp_path, Options(train_eval=False, bar=False))
    hist = ck.read_history(tmp_path / "resnet20")
    assert [h["iter"] for h in hist] == [50, 100, 150]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.25, hist
    assert hist[-1]["train_err"] < 70 and m["test_error_pct"] < 75  # chance is 90%
    got = ck.load(tmp_path / "resnet20")
    assert got.metrics["iterations"] == 150 and got.metrics["finished"]
    for key in ("seed", "versions", "device", "commit", "wall_time_s", "img_per_s", "recipe"):
        assert key in got.metrics
    assert not (tmp_path / "resnet20" / ck.STATE_JSON).exists()


def test_resume_matches_uninterrupted_run(cifar, tmp_path):
    train_set, evals = _subset(cifar, 640, 200)
    recipe = Recipe(iters=30, batch_size=32, eval_every=10)
    run, kw = RunSpec("resnet20", seed=3), dict(train_eval=False, bar=False)
    train(run, recipe, train_set, evals, tmp_path / "a", Options(**kw))
    train(run, recipe, train_set, evals, tmp_path / "b", Options(stop_at=20, **kw))
    half = ck.load(tmp_path / "b" / "resnet20")
    assert half.metrics["iterations"] == 20 and not half.metrics["finished"]
    assert (tmp_path / "b" / "resnet20" / ck.STATE_JSON).exists()
    m = tmp_path / "b" / "resnet20" / ck.METRICS  # the first launch's provenance, as a lease corrects it by hand
    m.write_text(json.dumps({**json.loads(m.read_text()), "commit": "c0ffee", "provenance_note": "by hand"}))
    train(run, recipe, train_set, evals, tmp_path / "b", Options(resume=True, **kw))
    a, b = ck.load(tmp_path / "a" / "resnet20"), ck.load(tmp_path / "b" / "resnet20")
    first, second = b.metrics["launches"]  # each launch's commit and device; the metrics' own are the last's
    assert first["from_iter"] == 0 and first["commit"] == "c0ffee" and first["provenance_note"] == "by hand"
    assert second == {"from_iter": 20, **{k: b.metrics[k] for k in ("commit", "dirty", "device")}}
    assert "launches" not in a.metrics and b.metrics["commit"] != "c0ffee"
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert strip(ck.read_history(tmp_path / "a" / "resnet20")) == strip(ck.read_history(tmp_path / "b" / "resnet20"))
    assert a.metrics["weights_sha256"] == b.metrics["weights_sha256"]
    train(run, dataclasses.replace(recipe, iters=40), train_set, evals, tmp_path / "c", Options(stop_at=10, **kw))
    with pytest.raises(ValueError, match="same flags"):  # a different recipe is refused on resume
        train(run, recipe, train_set, evals, tmp_path / "c", Options(resume=True, **kw))
    small = (train_set[0][:320], train_set[1][:320])
    train(run, recipe, small, evals, tmp_path / "b2", Options(stop_at=10, **kw))
    with pytest.raises(ValueError, match="train_images"):  # so is different training data
        train(run, recipe, train_set, evals, tmp_path / "b2", Options(resume=True, **kw))


@pytest.mark.parametrize("until_err,expect_end", [(101.0, 20), (0.0, None)])
def test_warmup_for_deep_nets(cifar, tmp_path, until_err, expect_end):
    train_set, evals = _subset(cifar, 640, 100)
    recipe = Recipe(iters=40, batch_size=16, eval_every=20, lr_steps=(), warmup_min_depth=20,
                    warmup_until_err=until_err)
    m = train(RunSpec("resnet20"), recipe, train_set, evals, tmp_path, Options(train_eval=False, bar=False))
    assert m["warmup_until_iter"] == expect_end
    lrs = [h["lr"] for h in ck.read_history(tmp_path / "resnet20")]
    assert lrs == ([0.01, 0.1] if expect_end else [0.01, 0.01])  # lr of each row's last step


@pytest.mark.slow
def test_kill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    """SIGKILL a training process at 3 random moments; each time the folder loads, then resumes; the
    final weights equal an uninterrupted run's exactly (tolerance 0: CPU training is deterministic)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the script runs from tmp_path, without an install
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        import sys, numpy as np
        from core.engine.train import Options, Recipe, RunSpec, train
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (256, 3, 32, 32), dtype=np.uint8); y = rng.integers(0, 10, 256)
        train(RunSpec("resnet20"), Recipe(iters=400, batch_size=8, eval_every=2), (x, y), {"test": (x[:16], y[:16])},
              sys.argv[1], Options(resume=True, train_eval=False, bar=False))
    """))
    folder, seen = tmp_path / "resnet20", []
    random.seed(0)
    for _ in range(3):
        kill_after_saves([sys.executable, str(script), str(tmp_path)], folder)
        got = ck.load(folder)
        seen.append(got.metrics["iterations"])
    assert seen == sorted(seen) and seen[0] >= 6
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    resumed = ck.load(folder)
    assert resumed.metrics["finished"]
    clean_dir = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), str(clean_dir)], check=True, capture_output=True)
    clean = ck.load(clean_dir / "resnet20")
    for key, value in clean.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for key in ("test_error_pct", "train_error_running_pct", "train_loss_running", "iterations"):
        assert resumed.metrics[key] == clean.metrics[key], key
    strip = [{k: v for k, v in row.items() if k != "wall_s"} for row in ck.read_history(folder)]
    assert strip == [{k: v for k, v in row.items() if k != "wall_s"} for row in ck.read_history(clean_dir / "resnet20")]


@pytest.mark.slow
def test_cli_jobs_then_evaluate_cli(cifar_dir, tmp_path):
    """Two models in two processes, then `python -m core.engine.evaluate` prints the table."""
    out = tmp_path / "ck"
    cmd = [sys.executable, "-m", "core.engine.train", "--model", "resnet20", "plain20", "--jobs", "2", "--iters", "3",
           "--batch-size", "8", "--device", "cpu", "--no-train-eval", "--out", str(out),
           "--data-dir", str(cifar_dir)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("resnet20", "plain20"):
        assert f"{name}: done" in r.stdout
        assert f"{name}: 3 iterations" in (out / f"{name}.log").read_text()
        assert ck.load(out / name).metrics["iterations"] == 3
    r = subprocess.run([sys.executable, "-m", "core.engine.evaluate", "--checkpoints", str(out), "--data-dir",
                        str(cifar_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| plain20 | 20 | 269,722 |" in r.stdout and "| resnet20 | 20 | 269,722 |" in r.stdout
    assert (out / "results.csv").is_file() and (out / "results.md").is_file()


def test_cli_reports_missing_data(tmp_path):
    r = subprocess.run([sys.executable, "-m", "core.engine.train", "--model", "resnet20", "--data-dir", str(tmp_path),
                        "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "python -m core.engine.data download" in r.stderr


def test_progress_without_tqdm(monkeypatch, capsys):
    """The GPU machines have no tqdm: the fallback still iterates and prints a final line."""
    from core.engine import progress

    monkeypatch.setattr(progress, "_tqdm", None)
    bar = progress.progress_bar(range(3), total=3, desc="eval")
    assert list(bar) == [0, 1, 2]
    assert "eval: 3/3" in capsys.readouterr().err


@pytest.mark.parametrize("ci_value, outcome", [(None, "skip"), ("", "skip"), ("false", "skip"), ("0", "skip"),
                                               ("true", "fail"), ("TRUE", "fail"), ("1", "fail"), ("yes", "fail")])
def test_missing_cifar_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path, ci_value, outcome):
    """conftest's cifar_dir calls support.require_cifar(path found or None); here without removing data."""
    if ci_value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci_value)
    assert support.ci() is (outcome == "fail")
    raised = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as e:  # either: a wrong skip must not skip this
        support.require_cifar(None)
    assert e.type is raised
    assert str(e.value).startswith(support.CIFAR_MISSING)
    assert ("$CI is set" in str(e.value)) is (outcome == "fail")
    assert support.require_cifar(tmp_path) == tmp_path  # found: neither


@pytest.mark.parametrize("missing", ["chromium", "playwright"])
@pytest.mark.parametrize("ci_value, outcome", [(None, "skip"), ("false", "skip"), ("true", "fail"), ("1", "fail")])
def test_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path, missing, ci_value, outcome):
    """conftest's browser fixture calls support.require_browser(): the same rule as CIFAR-10's."""
    if ci_value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci_value)
    sync_api = types.ModuleType("playwright.sync_api")  # stand-ins: this runs with or without them installed
    monkeypatch.setitem(sys.modules, "playwright", types.SimpleNamespace(sync_api=sync_api))
    monkeypatch.setitem(sys.modules, "playwright.sync_api", sync_api)
    monkeypatch.setattr(support, "CHROMIUM", sys.executable)  # a file that exists
    assert support.require_browser() is sync_api  # both there: neither skip nor fail
    if missing == "chromium":
        monkeypatch.setattr(support, "CHROMIUM", str(tmp_path / "no-chromium"))
    else:
        monkeypatch.setitem(sys.modules, "playwright", None)  # `from playwright import ...` raises ImportError
    raised = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as e:  # either: a wrong skip must not skip this
        support.require_browser()
    assert e.type is raised
    assert f"{missing} is not installed" in str(e.value)
    assert ("$CI is set" in str(e.value)) is (outcome == "fail")
