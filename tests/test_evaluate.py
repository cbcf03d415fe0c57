"""Error rates of checkpoint folders, the results table, and its Markdown."""
import math

import numpy as np
import torch

from core.engine import checkpoints as ck
from core.engine import evaluate, models
from core.engine.data import normalize


def test_error_rate_matches_a_direct_count(cifar, tmp_path):
    torch.manual_seed(0)
    model = models.build("resnet20").eval()
    x, y = cifar["test"][0][:300], cifar["test"][1][:300]
    with torch.no_grad():
        pred = model(normalize(torch.as_tensor(x))).argmax(1).numpy()
    expect = 100.0 * np.mean(pred != y)
    assert evaluate.error_rate(model, x, y, batch_size=128) == expect
    model.train()
    evaluate.error_rate(model, x, y)
    assert model.training  # mode restored


def test_evaluate_folder_and_results_table(cifar, tmp_path):
    torch.manual_seed(0)
    for name in ("resnet110", "plain20"):
        ck.save(tmp_path / name, models.build(name), {"test_error_pct": 12.5, "iterations": 7, "device": "x"})
    test = (cifar["test"][0][:200], cifar["test"][1][:200])
    train = (cifar["train"][0][:100], cifar["train"][1][:100])
    rows = [evaluate.evaluate_folder(f, test, train) for f in ck.list_folders(tmp_path)]
    df = evaluate.results_df(rows)
    assert df["model"].tolist() == ["plain20", "resnet110"]  # registry order
    r = df.set_index("model")
    assert r.loc["resnet110", "layers"] == 110 and r.loc["resnet110", "params"] == 1_727_962
    assert r.loc["resnet110", "paper_err"] == 6.43 and "6.61" in r.loc["resnet110", "paper_note"]
    assert math.isnan(r.loc["plain20", "paper_err"])
    assert r.loc["plain20", "recorded_test_err"] == 12.5 and r.loc["plain20", "iters"] == 7
    for name in ("plain20", "resnet110"):
        assert 0 <= r.loc[name, "test_err"] <= 100 and 0 <= r.loc[name, "train_err_eval"] <= 100
    md = evaluate.to_markdown(df)
    assert md.splitlines()[0].startswith("| model | layers | params | train_err_eval | test_err |")
    assert "| resnet110 | 110 | 1,727,962 |" in md and "| 6.43 |" in md


def test_paper_table6():
    assert evaluate.PAPER_TABLE6 == {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97,
                                     "resnet110": 6.43, "resnet1202": 7.93}
    assert all(name in models.list_models() for name in evaluate.PAPER_TABLE6)
