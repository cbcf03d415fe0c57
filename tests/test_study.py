"""core/research/study.py and core/figures/study.py on a temporary checkpoint root of tiny fresh models (read
with core.engine.checkpoints.records), the Results tab's measures on the shipped checkpoints, and the
layer-response view of the precompute driver."""
import csv
import json
import math

import numpy as np
import pytest
import torch

from core.engine import checkpoints, models
from core.engine.evaluate import MEASURES
from core.figures import study as figures_study
from core.figures import theme
from core.research import precompute, study
from core.serving import notes as text
from core.settings import Settings

# (train error (eval pass), test error): plain32 2 points worse on training -> degradation; resnet32
# (mean over 3 seeds: train 4 = resnet20's, test 11, 2 points above 9, beyond the binomial noise of
# ±0.85) -> overfitting; resnet20b has nothing shallower -> "—"
FAKE = {"plain20": (5.0, 10.0), "plain32": (7.0, 12.0), "resnet20": (4.0, 9.0), "resnet32": (3.0, 10.0),
        "resnet20b": (2.0, 8.5)}
SEEDS = [(4.0, 11.0), (5.0, 12.0)]  # resnet32's extra seeds


def _history(train, test):
    return [{"iter": i, "train_loss": 2.0 / i, "train_err": train + 10 / i, "test_err": test + 10 / i,
             "lr": 0.1, "wall_s": float(i)} for i in (1, 2, 3)]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    for i, (name, (train, test)) in enumerate(FAKE.items()):
        torch.manual_seed(i)
        metrics = {"train_error_pct": train, "test_error_pct": test, "train_error_running_pct": train + 1,
                   "iterations": 3, "finished": True}
        checkpoints.save(root / name, models.build(name), metrics, _history(train, test))
    (root / "resnet32" / "seeds").mkdir()
    for k, (train, test) in enumerate(SEEDS):
        (root / "resnet32" / "seeds" / f"seed{k + 1}.json").write_text(
            json.dumps({"train_error_pct": train, "test_error_pct": test}))
    # where `core.engine.train --seeds` writes: ROOT/seeds/NAME-seedS/metrics.json; an unfinished one and
    # one of another recipe do not count
    for seed, extra in ((3, {"finished": True}), (4, {"finished": False}), (5, {"recipe": {"iters": 1}})):
        folder = root / "seeds" / f"resnet32-seed{seed}"
        folder.mkdir(parents=True)
        m = {"train_error_pct": 4.0 if seed == 3 else 50.0, "test_error_pct": 11.0 if seed == 3 else 50.0,
             "iterations": 3, **extra}
        (folder / "metrics.json").write_text(json.dumps(m))
    return root


def test_a_seed_run_counts_by_its_setup_not_its_raw_parallel_record():
    """The 20-layer main runs predate the "parallel" record; their seed-1 runs (2026-11-28) carry it,
    for the same one-process 1×128 setup, and must count; a 2×64 seed must not."""
    main = {"recipe": {"batch_size": 128}, "iterations": 3, "data": {"train_images": 50_000}, "finished": True}
    one = {**main, "parallel": {"world_size": 1, "per_rank_batch": 128, "bn": "per-rank", "bn_images": 128}}
    two = {**main, "parallel": {"world_size": 2, "per_rank_batch": 64, "bn": "per-rank", "bn_images": 64}}
    assert study._matches(main, one) and study._matches(one, main)
    assert not study._matches(main, two) and not study._matches(one, two)


def test_results_table(root):
    df = study.results_table(checkpoints.records(root))
    assert list(df.columns) == study.COLUMNS
    assert list(df["model"]) == ["plain20", "plain32", "resnet20", "resnet32", "resnet20b"]
    r = df.set_index("model")
    assert r.loc["plain20", "kind"] == "plain" and r.loc["resnet20b", "kind"] == "residual"
    assert r.loc["plain32", "layers"] == 32
    assert r.loc["resnet20", "params"] == 269_722 == r.loc["plain20", "params"]
    assert r.loc["resnet20", "flops"] == 81_102_080
    assert r.loc["resnet20b", "flops"] > r.loc["resnet20", "flops"]
    assert r.loc["plain32", "train_err_eval"] == 7.0 and r.loc["plain32", "test_err"] == 12.0
    assert r.loc["plain32", "train_err_running"] == 8.0 and r.loc["plain32", "iterations"] == 3
    assert r.loc["resnet32", "train_err_running"] == 4.0  # only the main run recorded one
    assert math.isnan(r.loc["plain32", "test_err_std"]) and r.loc["plain32", "seeds"] == 1
    # seeds: the main run, two seeds/*.json and the finished seeds/resnet32-seed3 (errors 3/10, 4/11,
    # 5/12, 4/11); the unfinished seed 4 and seed 5 of another recipe are left out
    assert r.loc["resnet32", "seeds"] == 4
    assert r.loc["resnet32", "train_err_eval"] == pytest.approx(4.0)
    assert r.loc["resnet32", "test_err"] == pytest.approx(11.0)
    assert r.loc["resnet32", "test_err_std"] == pytest.approx(math.sqrt(2 / 3))
    assert r.loc["resnet32", "train_err_eval_std"] == pytest.approx(math.sqrt(2 / 3))
    assert r.loc["resnet20", "paper_err"] == 8.75 and math.isnan(r.loc["plain20", "paper_err"])
    assert dict(r["diagnosis"]) == {"plain20": "—", "plain32": "degradation", "resnet20": "—",
                                    "resnet32": "overfitting", "resnet20b": "—"}
    assert dict(r["reference"].dropna()) == {"plain32": "plain20", "resnet32": "resnet20"}
    md = text.diagnosis(df.to_dict("records"))
    assert "Degradation" in md and "Overfitting" in md
    assert ("- `plain32` vs `plain20`: **degradation**. train +2.00 points (noise ±0.30: binomial on 50,000 "
            "and 50,000 images, one run each), test +2.00 points (noise ±0.88: binomial on 10,000 and "
            "10,000 images, one run each). `plain32`: train error (eval pass, clean) 7.00%, test error 12.00%") in md
    assert "- `resnet32` vs `resnet20`: **overfitting**. train +0.00 points" in md
    assert "binomial on 10,000 and 10,000 images, 4 and 1 runs" in md
    assert "- `resnet20b` (nothing shallower shipped)" in md
    assert r.loc["resnet20b", "basis"] == "nothing shallower shipped"


def test_each_measure_holds_its_metrics_number_in_the_results_of_the_shipped_checkpoints(tmp_path):
    """The Results tab built from the shipped checkpoints (Research.results): each measure's column
    (core.engine.evaluate.MEASURES) holds the metrics.json number its comment names, the mean over the
    model's runs read here from the files (checkpoints/NAME, checkpoints/seeds/NAME-seedS), in the CSV
    and rounded in the page's table; each verdict line names the measure beside its number."""
    from core.serving.research import PAGE_TABLE, Research
    from core.serving.zoo import Zoo

    keys = {"train_err_running": "train_error_running_pct", "train_err_eval": "train_error_pct",
            "test_err": "test_error_pct"}
    assert set(keys) == set(MEASURES)
    table, note, path = Research(Zoo(Settings()), tmp_path).results()
    with open(path, newline="") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    page = {r["model"]: r for r in table.to_dict("records")}
    names = [f.name for f in checkpoints.list_folders()]
    assert names and list(rows) == list(page) == names
    root = checkpoints.DEFAULT_ROOT
    for name, row in rows.items():
        runs = [json.loads(p.read_text()) for p in
                [root / name / checkpoints.METRICS, *sorted(root.glob(f"seeds/{name}-seed*/{checkpoints.METRICS}"))]]
        mean = {col: sum(r[key] for r in runs) / len(runs) for col, key in keys.items()}
        assert int(row["seeds"]) == len(runs)
        for col in keys:
            assert float(row[col]) == pytest.approx(mean[col], abs=1e-9), (name, col)
        for col in ("train_err_eval", "test_err"):
            shown = page[name][PAGE_TABLE[col]]  # to 2 decimals (9.865 may show as 9.86: binary floats)
            assert shown == round(shown, 2) and abs(shown - mean[col]) <= 0.005 + 1e-9, (name, col, shown)
        spec = models.get_spec(name)
        shallower = [n for n in names if (models.get_spec(n).kind, models.get_spec(n).shortcut) ==
                     (spec.kind, spec.shortcut) and models.get_spec(n).depth < spec.depth]
        line = next(ln for ln in note.splitlines() if ln.startswith(f"- `{name}` "))
        assert line.endswith(f"`{name}`: {MEASURES['train_err_eval']} {mean['train_err_eval']:.2f}%, "
                             f"test error {mean['test_err']:.2f}%" if shallower else "(nothing shallower shipped)"), line


def test_empty_root(tmp_path, cifar_dir):
    assert checkpoints.records(tmp_path / "none") == []
    df = study.results_table([])
    assert list(df.columns) == study.COLUMNS and len(df) == 0
    assert "No checkpoints shipped yet" in text.diagnosis([])
    assert study.curves([]) == {}
    assert precompute.layer_responses(Settings(checkpoints=tmp_path, data_dir=cifar_dir), limit=4) == ({}, [])
    for fig in (figures_study.curves_figure({}), figures_study.layer_responses_figure({})):
        assert fig.layout.annotations[0].text.startswith("no ")


def test_curves_and_figure(root):
    c = study.curves(checkpoints.records(root))
    assert set(c) == set(FAKE)
    assert c["plain32"]["iter"] == [1.0, 2.0, 3.0]
    assert c["plain32"]["test_err"][-1] == pytest.approx(12.0 + 10 / 3)
    assert c["plain32"]["kind"] == "plain" and c["resnet20b"]["kind"] == "residual"
    fig = figures_study.curves_figure(c)
    depths = sorted({v["depth"] for v in c.values()})
    assert len(fig.data) == 2 * len(FAKE) + len(depths)  # and one legend entry per depth, toggling both panels
    assert [t.name for t in fig.data if t.showlegend is not False] == [f"{d} layers" for d in depths]
    by_name = {t.name: t for t in fig.data}
    assert by_name["plain20 test"].legendgroup == by_name["resnet20 test"].legendgroup == by_name["20 layers"].legendgroup
    assert by_name["plain20 train (running, augmented)"].line.dash == "dash"
    assert by_name["plain20 test"].line.dash == "solid"
    assert by_name["plain20 test"].xaxis == "x" and by_name["resnet20 test"].xaxis == "x2"
    assert by_name["plain20 test"].line.color == by_name["resnet20 test"].line.color == theme.DEPTH[20]
    assert by_name["plain32 test"].line.color == theme.DEPTH[32] != theme.DEPTH[20]
    assert c["resnet20b"]["depth"] == 20
    assert "iteration" in by_name["plain20 test"].hovertemplate
    assert MEASURES["train_err_running"] in by_name["plain20 train (running, augmented)"].hovertemplate
    assert MEASURES["train_err_running"] in fig.layout.title.text.replace("<br>", " ")  # wrapped to fit a phone
    assert figures_study.curves_figure(c, log_y=True).layout.yaxis.type == "log"
    fig.to_json()


def test_layer_responses():
    model = models.calibrated("plain20")
    x = torch.randn(24, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    res = study.layer_responses(model, x, batch_size=10)
    assert len(res) == 19
    assert res[0][0] == "bn1" and res[1][0] == "layer1.0.bn1" and res[-1][0] == "layer3.2.bn2"
    assert all(np.isfinite(s) and s > 0 for _, s in res)
    with torch.no_grad():  # hook-free: the stem's BN output directly
        y = model.bn1(model.conv1(x)).double()
    assert res[0][1] == pytest.approx(float(y.std(dim=(0, 2, 3), unbiased=False).mean()), rel=1e-6)
    with torch.no_grad():  # and the last block's bn2 via its residual branch
        h = model.layer2(model.layer1(model.relu(model.bn1(model.conv1(x)))))
        for blk in list(model.layer3)[:-1]:
            h = blk(h)
        y = model.layer3[-1].residual_branch(h).double()
    assert res[-1][1] == pytest.approx(float(y.std(dim=(0, 2, 3), unbiased=False).mean()), rel=1e-6)
    assert not model.training and not model.bn1._forward_hooks
    whole = study.layer_responses(model, x, batch_size=24)  # batching does not change the numbers
    assert [n for n, _ in whole] == [n for n, _ in res]
    assert [s for _, s in whole] == pytest.approx([s for _, s in res], rel=1e-9)


def test_layer_responses_figure():
    data = {"plain20": {"layers": ["a", "b", "c"], "std": [1.0, 3.0, 2.0], "kind": "plain"},
            "resnet20": {"layers": ["a", "b", "c"], "std": [0.5, 0.2, 0.9], "kind": "residual"}}
    fig = figures_study.layer_responses_figure(data)
    assert [t.name for t in fig.data] == ["plain20", "resnet20"]
    assert list(fig.data[0].y) == [1.0, 3.0, 2.0] and list(fig.data[0].x) == [1, 2, 3]
    assert fig.data[0].line.color in theme.PALETTE["plain"]
    assert fig.data[1].line.color in theme.PALETTE["residual"]
    s = figures_study.layer_responses_figure(data, sorted_=True)
    assert list(s.data[0].y) == [3.0, 2.0, 1.0] and list(s.data[0].customdata) == ["b", "c", "a"]
    s.to_json()


def test_precompute_layer_responses(root, cifar_dir):
    out, names = precompute.layer_responses(Settings(checkpoints=root, data_dir=cifar_dir), limit=20)
    assert set(out) == set(FAKE) == set(names)
    assert out["plain32"]["kind"] == "plain" and out["resnet20b"]["kind"] == "residual"
    assert len(out["plain32"]["std"]) == 31 and len(out["resnet20"]["layers"]) == 19
    assert all(np.isfinite(s) and s > 0 for d in out.values() for s in d["std"])
