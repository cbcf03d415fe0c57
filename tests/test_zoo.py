"""serving.zoo: trained, missing, broken and untrained models; one broken folder never takes down the rest."""
import shutil

import numpy as np
import pytest

from engine import checkpoints
from serving import zoo


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A private checkpoints root holding copies of the shipped folders."""
    for f in checkpoints.list_folders():
        shutil.copytree(f, tmp_path / f.name)
    monkeypatch.setattr(zoo, "ROOT", tmp_path)
    zoo.reset()
    yield tmp_path
    zoo.reset()


def _need(root, *names):
    if not all((root / n).is_dir() for n in names):
        pytest.skip(f"needs shipped checkpoints {names}")


def test_trained_and_missing(root):
    _need(root, "resnet20")
    assert zoo.status("resnet20") == "trained"
    served = zoo.get("resnet20")
    assert served.trained and served.test_error == served.metrics["test_error_pct"]
    missing = next((n for n in ("resnet1202", "plain110", "resnet110b") if not (root / n).is_dir()), None)
    if missing is None:
        pytest.skip("every candidate model is shipped")
    assert zoo.status(missing) == "missing"
    with pytest.raises(zoo.ModelUnavailable, match="no trained checkpoint"):
        zoo.get(missing)
    assert not zoo.get(missing, "init").trained  # fresh weights stay available for analysis
    with pytest.raises(zoo.ModelUnavailable, match="unknown model"):
        zoo.get("resnet21")


def test_a_corrupt_checkpoint_only_disables_that_model(root):
    _need(root, "resnet20", "plain20")
    weights = root / "resnet20" / checkpoints.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    assert zoo.status("resnet20").startswith("broken")
    with pytest.raises(zoo.ModelUnavailable, match="damaged.*model.safetensors"):
        zoo.get("resnet20")
    x, _ = zoo.test_sample()
    probs, sec = zoo.classify(zoo.get("plain20"), x[0])
    assert abs(sum(probs.values()) - 1) < 1e-5 and sec > 0


def test_no_checkpoints_means_untrained_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "ROOT", tmp_path)
    zoo.reset()
    try:
        assert zoo.untrained_mode() and zoo.status("resnet56") == "untrained"
        served = zoo.get("resnet56")
        assert not served.trained and "untrained" in served.describe()
    finally:
        zoo.reset()


def test_shipped_models_classify_the_test_sample(root):
    _need(root, "resnet20")
    x, y = zoo.test_sample()
    assert x.shape == (80, 3, 32, 32) and x.dtype == np.uint8 and np.bincount(y).tolist() == [8] * 10
    served = zoo.get("resnet20")
    right = sum(max(p, key=p.get) == zoo.CLASSES[t] for p, t in ((zoo.classify(served, im)[0], t)
                                                                for im, t in zip(x, y)))
    assert right >= 64  # 8.36% test error: 80 images, at most a few wrong


def test_cpu_quota_is_sane():
    assert 1 <= zoo.cpu_quota() <= 4096
