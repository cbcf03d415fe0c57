"""core.serving.zoo: trained, missing, broken and untrained models; one broken folder never takes down the
rest; BN folding gives the model's outputs; the CPU quota is read from cgroup v2, then v1."""
import math
import shutil

import numpy as np
import pytest
import torch

from core.engine import checkpoints, models
from core.engine.data import CLASSES
from core.serving import notes, zoo
from core.settings import Settings, cpu_quota
from core.ui import text

SHIPPED = ("plain20", "resnet20")  # in the repository: the tests below rely on them, never skip


@pytest.fixture
def root(tmp_path):
    """A private checkpoints root holding copies of the shipped folders."""
    for name in SHIPPED:
        shutil.copytree(checkpoints.DEFAULT_ROOT / name, tmp_path / name)
    return tmp_path


def _shipped_metrics(name: str) -> dict:
    """checkpoints/NAME/metrics.json as shipped (a retrain changes its numbers, not these tests)."""
    return checkpoints.read_json(checkpoints.DEFAULT_ROOT / name / checkpoints.METRICS)


def test_trained_and_missing(root):
    z = zoo.Zoo(Settings(checkpoints=root))
    assert z.shipped() == list(SHIPPED) and not z.untrained_mode()
    served = z.get("resnet20")
    assert served.trained and served.label == "resnet20 (trained)"
    assert served.metrics == _shipped_metrics("resnet20")
    with pytest.raises(zoo.ModelUnavailable, match="plain110 has no trained checkpoint yet.*trained now: plain20, resnet20"):
        z.get("plain110")
    fresh = z.get("plain110", "init")  # fresh weights stay available for analysis
    assert not fresh.trained and fresh.label == "plain110 (init)" and fresh is z.get("plain110", "init")
    with pytest.raises(zoo.ModelUnavailable, match="unknown model 'resnet21'"):
        z.get("resnet21")
    with pytest.raises(zoo.ModelUnavailable, match="weights must be one of"):
        z.get("resnet20", "best")
    assert [(n, s is not None, bool(why)) for n, s, why in z.pair("plain110", "resnet20")] == \
        [("plain110", False, True), ("resnet20", True, False)]


def test_a_corrupt_checkpoint_only_disables_that_model(root):
    weights = root / "resnet20" / checkpoints.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    z = zoo.Zoo(Settings(checkpoints=root))
    with pytest.raises(zoo.ModelUnavailable, match="damaged.*model.safetensors"):
        z.get("resnet20")
    x, _ = z.test_sample()
    probs, sec = zoo.classify(z.get("plain20"), x[0])
    assert list(probs) == list(CLASSES) and abs(sum(probs.values()) - 1) < 1e-5 and sec > 0


def test_no_checkpoints_means_untrained_mode(tmp_path):
    z = zoo.Zoo(Settings(checkpoints=tmp_path))
    assert z.untrained_mode() and z.shipped() == []
    served = z.get("resnet56")  # "trained" asked for: fresh weights, and said so
    assert not served.trained and "untrained" in notes.describe(served)
    assert "No trained checkpoints found" in text.banner(z.shipped())
    torch.manual_seed(0)
    assert torch.equal(served.model.conv1.weight, models.build("resnet56").conv1.weight)  # seed 0


def test_shipped_models_classify_the_test_sample(root):
    z = zoo.Zoo(Settings(checkpoints=root))
    x, y = z.test_sample()
    assert x.shape == (80, 3, 32, 32) and x.dtype == np.uint8 and np.bincount(y).tolist() == [8] * 10
    served = z.get("resnet20")
    right = sum(max(p, key=p.get) == CLASSES[t] for p, t in ((zoo.classify(served, im)[0], t)
                                                             for im, t in zip(x, y)))
    err = _shipped_metrics("resnet20")["test_error_pct"] / 100  # on the 10,000 test images
    assert len(y) - right <= len(y) * err + 4 * math.sqrt(len(y) * err * (1 - err)), right  # binomial room


@pytest.mark.parametrize("name", ["plain20", "resnet20", "resnet20b", "plain56", "resnet110"])
def test_fold_bn_gives_the_models_outputs(name):
    """Every classify runs the folded copy: the intact model's logits in eval mode, exactly up to
    rounding (float64 here; calibrated BN statistics, so there are real scales and shifts to fold)."""
    model = models.calibrated(name, seed=1).double()
    fused = zoo.fold_bn(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        want, got = model(x), fused(x)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-9 * want.abs().max().item())


def test_fold_bn_of_a_shipped_model_in_float32(root):
    served = zoo.Zoo(Settings(checkpoints=root)).get("resnet20")
    x = zoo.inputs(served, served_sample(root))
    with torch.no_grad():
        want, got = served.model(x), served.fast(x)
    assert (got - want).abs().max() < 1e-4 and torch.equal(got.argmax(1), want.argmax(1))


def served_sample(root):
    return zoo.Zoo(Settings(checkpoints=root)).test_sample()[0]


def _cgroup(tmp_path, v2=None, v1=None):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2)
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0])
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1])
    return tmp_path


@pytest.mark.parametrize("v2, v1, affinity, want", [
    ("200000 100000\n", None, 64, 2),        # a Space: 2 vCPU on a 64-core host
    ("150000 100000\n", None, 64, 2),        # 1.5 CPUs round up
    ("max 100000\n", None, 8, 8),            # no limit: the affinity mask
    ("400000 100000\n", None, 3, 3),         # the mask is tighter than the quota
    (None, ("300000", "100000"), 64, 3),     # cgroup v1
    (None, ("-1", "100000"), 6, 6),          # v1, no limit
    ("garbage", None, 5, 5),                 # unreadable: the affinity mask
    (None, None, 4, 4),                      # no cgroup files at all
])
def test_cpu_quota_reads_cgroups(tmp_path, v2, v1, affinity, want):
    assert cpu_quota(_cgroup(tmp_path, v2, v1), affinity=affinity) == want


def test_settings_from_env(tmp_path):
    s = Settings.from_env({"RESNET_LAB_CHECKPOINTS": str(tmp_path), "RESNET_LAB_THREADS": "3", "CIFAR10_DIR": ""})
    assert s.checkpoints == tmp_path and s.threads == 3 and s.data_dir is None
    assert Settings.from_env({}, checkpoints=None, research=str(tmp_path)).research == tmp_path
    assert Settings.from_env({}).checkpoints == checkpoints.DEFAULT_ROOT
