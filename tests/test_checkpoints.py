"""Checkpoint folders: round trip, atomic swap, and one clear CheckpointError per corruption."""
import json
import pickle
import shutil

import pytest
import torch
from safetensors.torch import save_file

from core.engine import checkpoints as ck
from core.engine import models


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = models.build("resnet20")
    ck.save(tmp_path / "resnet20", model, {"test_error_pct": 50.0, "iterations": 1},
            history=[{"iter": 1, "train_loss": 2.3, "test_err": 50.0}])
    return tmp_path / "resnet20", model


def _err(folder, *needles):
    with pytest.raises(ck.CheckpointError) as e:
        ck.load(folder)
    for n in needles:
        assert n in str(e.value), str(e.value)
    return str(e.value)


def test_round_trip(saved):
    folder, model = saved
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "history.csv", "metrics.json",
                                                        "model.safetensors"]
    got = ck.load(folder)
    assert got.name == "resnet20" and not got.model.training
    for k, v in model.state_dict().items():
        assert torch.equal(got.model.state_dict()[k], v)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(got.model(x), model.eval()(x))
    assert got.config["normalization"]["mean"] == [125.307, 122.950, 113.865]
    assert got.metrics["weights_sha256"] == ck.sha256_bytes((folder / "model.safetensors").read_bytes())
    assert ck.read_history(folder) == [{"iter": 1.0, "train_loss": 2.3, "test_err": 50.0}]


def test_load_never_unpickles(saved, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("unpickling during load")
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(torch, "load", boom)
    ck.load(saved[0])


@pytest.mark.parametrize("name", [ck.WEIGHTS, ck.CONFIG, ck.METRICS])
def test_missing_file(saved, name):
    (saved[0] / name).unlink()
    _err(saved[0], name, "missing file")


def test_missing_folder(tmp_path):
    _err(tmp_path / "nope", "nope", "not found")


def test_truncated_weights(saved):
    path = saved[0] / ck.WEIGHTS
    path.write_bytes(path.read_bytes()[:5000])
    _err(saved[0], ck.WEIGHTS, "truncated or corrupt")


def test_garbage_weights(saved):
    (saved[0] / ck.WEIGHTS).write_bytes(b"\x89PNG not a safetensors file at all" * 10)
    _err(saved[0], ck.WEIGHTS, "truncated or corrupt")


def test_bad_json(saved):
    (saved[0] / ck.CONFIG).write_text("{not json")
    _err(saved[0], ck.CONFIG, "not valid JSON")


def test_sha256_mismatch(saved):
    folder, model = saved
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["linear.bias"][0] += 1.0  # a valid file with other numbers
    save_file(state, folder / ck.WEIGHTS)
    _err(folder, ck.WEIGHTS, "sha256", "does not match")


def test_wrong_architecture(saved):
    """config says resnet32, the weights are resnet20's: the first missing key is named."""
    folder = saved[0]
    cfg = ck.make_config("resnet32")
    (folder / ck.CONFIG).write_text(json.dumps(cfg))
    _err(folder, ck.WEIGHTS, "missing key 'layer1.3.conv1.weight'")


def _err_nosha(folder):
    """For files rewritten on purpose: skip the sha256 check so the key check is what fails."""
    with pytest.raises(ck.CheckpointError) as e:
        ck.load(folder, check_sha=False)
    return str(e.value)


def test_unexpected_key(saved):
    folder, model = saved
    state = dict(model.state_dict())
    state["layer2.0.shortcut.0.weight"] = torch.zeros(32, 16, 1, 1)
    save_file(state, folder / ck.WEIGHTS)
    msg = _err_nosha(folder)
    assert "unexpected key 'layer2.0.shortcut.0.weight'" in msg


def test_shape_mismatch(saved):
    folder, model = saved
    state = dict(model.state_dict())
    state["linear.weight"] = torch.zeros(100, 64)
    save_file(state, folder / ck.WEIGHTS)
    msg = _err_nosha(folder)
    assert "'linear.weight'" in msg and "(100, 64)" in msg and "(10, 64)" in msg


def test_unknown_model_and_arch_mismatch(saved):
    folder = saved[0]
    cfg = ck.make_config("resnet20")
    (folder / ck.CONFIG).write_text(json.dumps({**cfg, "model": "resnet21"}))
    _err(folder, ck.CONFIG, "key 'model'", "resnet21")
    (folder / ck.CONFIG).write_text(json.dumps({**cfg, "arch": {**cfg["arch"], "shortcut": "B"}}))
    _err(folder, ck.CONFIG, "arch.shortcut")
    (folder / ck.CONFIG).write_text(json.dumps({**cfg, "arch": "A"}))
    _err(folder, ck.CONFIG, "key 'arch'", "not a dict")
    (folder / ck.CONFIG).write_text(json.dumps({**cfg, "model": ["resnet20"]}))
    _err(folder, ck.CONFIG, "key 'model'", "not a str")


def test_plain_loads_resnet_keys_but_not_as_other_depth(tmp_path):
    """Twins share a layout: plain20 weights load into a resnet20 config (same keys, same shapes)."""
    plain = models.build("plain20")
    ck.save(tmp_path / "x", plain, {})
    cfg = ck.make_config("resnet20")
    (tmp_path / "x" / ck.CONFIG).write_text(json.dumps(cfg))
    assert ck.load(tmp_path / "x").model.spec.shortcut == "A"


def test_interrupted_swap_is_recovered(saved):
    """A kill between the two renames of a save leaves .NAME.new and .NAME.old; load() finishes it."""
    folder, model = saved
    new, old = ck._siblings(folder)
    folder.rename(old)
    torch.manual_seed(1)
    ck.save(new.parent / "tmp_src", models.build("resnet20"), {"iterations": 2})
    (new.parent / "tmp_src").rename(new)
    assert ck.load(folder).metrics["iterations"] == 2  # read in place: readers never rename
    assert new.exists() and not folder.exists()
    assert ck.list_folders(folder.parent) == []  # dot-folders are not checkpoints
    assert ck.load_train_state(folder) is None  # the writer's side finishes the swap
    assert folder.is_dir() and not new.exists() and not old.exists()
    assert ck.load(folder).metrics["iterations"] == 2


def test_save_replaces_whole_folder(saved):
    folder, model = saved
    (folder / ck.STATE_JSON).write_text("{}")
    ck.save(folder, model, {"iterations": 3})
    assert not (folder / ck.STATE_JSON).exists() and not (folder / ck.HISTORY).exists()
    assert [p.name for p in folder.parent.iterdir()] == ["resnet20"]


def test_verify_cli(saved, capsys):
    folder = saved[0]
    with pytest.raises(SystemExit) as e:
        ck.main(["verify", str(folder.parent)])
    assert e.value.code == 0 and "1/1 checkpoints OK" in capsys.readouterr().out
    ck.save(folder.parent / "plain20", models.build("plain20"), {})
    (folder.parent / "plain20" / ck.WEIGHTS).write_bytes(b"junk")
    with pytest.raises(SystemExit) as e:
        ck.main(["verify", str(folder.parent)])
    out = capsys.readouterr().out
    assert e.value.code == 1 and "FAIL" in out and "plain20" in out and "1/2 checkpoints OK" in out


@pytest.mark.parametrize("sub", ["", "seeds"])
def test_verify_shipped_checkpoints(sub):
    """Every shipped folder with weights (checkpoints/NAME, checkpoints/seeds/NAME-seedS) is verified, and
    loads and matches its sha256; a folder verify() passed over (no config.json) fails this too."""
    root = ck.DEFAULT_ROOT / sub
    weights = sorted(p.parent.name for p in root.glob(f"*/{ck.WEIGHTS}") if not p.parent.name.startswith("."))
    results = ck.verify(root)
    assert weights, f"no checkpoint folder with {ck.WEIGHTS} under {root}"
    assert sorted(folder.name for folder, _ in results) == weights
    if sub == "":
        assert {"plain20", "resnet20"} <= set(weights)  # the pair the app's tests classify with
    for folder, err in results:
        assert err is None, (folder, err)


def test_saving_is_byte_deterministic(tmp_path):
    """Same weights, same bytes, same sha256 (safetensors metadata with 2+ keys would vary)."""
    torch.manual_seed(0)
    model = models.build("resnet20")
    shas = {ck.save(tmp_path / f"r{i}", model, {})["weights_sha256"] for i in range(4)}
    assert len(shas) == 1


def test_folder_loads_with_huggingface_hub_mixin(tmp_path):
    """The folder is what PyTorchModelHubMixin reads: from_pretrained() rebuilds the same weights."""
    hub = pytest.importorskip("huggingface_hub")

    class HubNet(models.CifarResNet, hub.PyTorchModelHubMixin):
        def __init__(self, model: str, **_):
            super().__init__(models.get_spec(model))

    torch.manual_seed(0)
    model = models.build("resnet56")
    ck.save(tmp_path / "resnet56", model, {})
    got = HubNet.from_pretrained(str(tmp_path / "resnet56"))
    for (k, a), (_, b) in zip(got.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k


def test_records_read_metrics_seeds_and_history_and_skip_broken_folders(tmp_path):
    for name in ("plain20", "resnet20"):
        shutil.copytree(ck.DEFAULT_ROOT / name, tmp_path / name)
    (tmp_path / "resnet20" / "seeds").mkdir()
    (tmp_path / "resnet20" / "seeds" / "seed1.json").write_text('{"test_error_pct": 8.0}')
    shutil.copytree(ck.DEFAULT_ROOT / "seeds" / "resnet20-seed1", tmp_path / "seeds" / "resnet20-seed1")
    (tmp_path / "plain20" / ck.CONFIG).write_text("{ broken")
    recs = ck.records(tmp_path)
    assert [r.spec.name for r in recs] == ["resnet20"]  # the broken folder is left to load() to report
    r = recs[0]
    shipped = ck.read_json(ck.DEFAULT_ROOT / "resnet20" / ck.METRICS)  # what the shipped files say, whatever it is
    seed1 = ck.read_json(ck.DEFAULT_ROOT / "seeds" / "resnet20-seed1" / ck.METRICS)
    assert r.metrics == shipped and r.seeds == [{"test_error_pct": 8.0}, seed1] and r.runs == [shipped, *r.seeds]
    assert r.history == ck.read_history(ck.DEFAULT_ROOT / "resnet20")
    assert len(r.history) > 1 and r.history[-1]["iter"] == shipped["iterations"]


def test_views_open_on_the_deepest_pair_where_both_nets_trained(tmp_path):
    """A pair with a net whose training error is near chance (as shipped plain110's is) is shown but not
    opened on: the deepest pair where both trained is, from the metrics shipped, whatever they say."""
    for name in ("plain20", "resnet20", "plain32", "resnet32"):
        shutil.copytree(ck.DEFAULT_ROOT / name, tmp_path / name)
    assert ck.trained_pairs(tmp_path) == [20, 32] and ck.opening_pair(tmp_path) == ("plain32", "resnet32")
    m = tmp_path / "plain32" / ck.METRICS
    m.write_text(json.dumps({**json.loads(m.read_text()), "train_error_pct": 81.8}))
    assert ck.trained_pairs(tmp_path) == [20] and ck.opening_pair(tmp_path) == ("plain20", "resnet20")
    m.write_text(json.dumps({**json.loads(m.read_text()), "train_error_pct": 44.9}))  # under half of chance (90%)
    assert ck.trained_pairs(tmp_path) == [20, 32]
    for name in ("plain20", "resnet20"):
        m = tmp_path / name / ck.METRICS
        m.write_text(json.dumps({**json.loads(m.read_text()), "train_error_pct": 90.0}))
    m = tmp_path / "plain32" / ck.METRICS
    m.write_text(json.dumps({**json.loads(m.read_text()), "train_error_pct": 45.0}))
    assert ck.trained_pairs(tmp_path) == [] and ck.opening_pair(tmp_path) == ("plain32", "resnet32")  # none trained:
    # the deepest shipped pair
    assert ck.opening_pair(tmp_path / "none") is None
