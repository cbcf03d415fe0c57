"""The CIFAR-10 reader, its checks and errors, and the on-device augmentation."""
import shutil

import numpy as np
import pytest
import torch

from core.engine import data


def test_per_class_counts(cifar):
    assert np.bincount(cifar["train"][1], minlength=10).tolist() == [5000] * 10
    assert np.bincount(cifar["test"][1], minlength=10).tolist() == [1000] * 10
    assert cifar["train"][0].shape == (50_000, 3, 32, 32) and cifar["train"][0].dtype == np.uint8


@pytest.mark.audit
def test_channel_statistics_match_shared_readme_and_normalization(cifar):
    x = cifar["train"][0].transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(x.mean(1), [125.307, 122.950, 113.865], atol=1e-3)
    np.testing.assert_allclose(x.std(1), [62.993, 62.089, 66.705], atol=1e-3)
    np.testing.assert_allclose(x.mean(1), data.NORMALIZATION["mean"], atol=1e-3)
    np.testing.assert_allclose(x.std(1), data.NORMALIZATION["std"], atol=1e-3)
    z = data.normalize(torch.as_tensor(cifar["train"][0][:5000]))
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05


def test_md5_check_passes_on_real_files(cifar_dir):
    x, y = data.load_split("test", cifar_dir, check_md5=True)
    assert len(y) == 10_000


def test_holdout_split(cifar_dir):
    xa, ya = data.load_split("train45k", cifar_dir)
    xb, yb = data.load_split("val5k", cifar_dir)
    assert len(ya) == 45_000 and len(yb) == 5_000
    full, _ = data.load_split("train", cifar_dir)
    assert np.array_equal(np.concatenate([xa, xb]), full)


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    with pytest.raises(data.DataMissingError) as e:
        data.load_split("test", tmp_path)
    msg = str(e.value)
    assert "python -m core.engine.data download" in msg and "unpack.py" in msg and str(tmp_path) in msg


def test_env_var_is_used(cifar_dir, monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", str(cifar_dir.parent))
    assert data.find_data_dir() == cifar_dir


def _copy(cifar_dir, tmp_path):
    dest = tmp_path / "cifar-10-batches-bin"
    dest.mkdir()
    shutil.copy(cifar_dir / "test_batch.bin", dest)
    return dest


def test_truncated_file_is_rejected(cifar_dir, tmp_path):
    dest = _copy(cifar_dir, tmp_path)
    with open(dest / "test_batch.bin", "r+b") as f:
        f.truncate(data.FILE_BYTES - 100)
    with pytest.raises(ValueError, match="test_batch.bin.*bytes"):
        data.load_split("test", tmp_path)


def test_md5_mismatch_is_rejected(cifar_dir, tmp_path):
    dest = _copy(cifar_dir, tmp_path)
    with open(dest / "test_batch.bin", "r+b") as f:
        f.seek(12345)
        b = f.read(1)
        f.seek(12345)
        f.write(bytes([b[0] ^ 1]))
    data.load_split("test", tmp_path)  # sizes fine: loads without the MD5 check
    with pytest.raises(ValueError, match="MD5"):
        data.load_split("test", tmp_path, check_md5=True)


def test_check_cli(cifar_dir, capsys):
    data.main(["check", str(cifar_dir)])
    out = capsys.readouterr().out
    assert "train: 50,000 images" in out and "test: 10,000 images" in out


def test_augment_is_pad_crop_flip():
    """Every augmented image is one of the 9x9 crops of the zero-padded image, maybe flipped."""
    torch.manual_seed(0)
    x = torch.randn(16, 3, 32, 32)
    out = data.augment(x, torch.Generator().manual_seed(3))
    xp = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        crops = [xp[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(out[i], c) for c in crops)
        flipped = any(torch.equal(out[i], c.flip(-1)) for c in crops)
        assert plain or flipped
        flips += flipped and not plain
    assert 0 < flips < 16


def test_loader_batches_are_a_function_of_seed_and_step():
    imgs = np.random.default_rng(0).integers(0, 256, (300, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(300)  # unique ids, to follow the images
    a = data.TensorLoader(imgs, labels, batch_size=64, seed=5)
    b = data.TensorLoader(imgs, labels, batch_size=64, seed=5)
    for k in (7, 0, 3, 7):  # any order, any loader instance: same batch
        xa, ya = a.batch(k)
        xb, yb = b.batch(k)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a.batch(0)[0], a.batch(1)[0])
    epoch = torch.cat([a.batch(k)[1] for k in range(a.steps_per_epoch)])
    assert len(epoch) == 256 and len(set(epoch.tolist())) == 256  # 4 full batches, no repeats
    c = data.TensorLoader(imgs, labels, batch_size=64, seed=6)
    assert not torch.equal(a.batch(0)[0], c.batch(0)[0])


def test_eval_batches_normalise_without_augmenting():
    imgs = np.full((10, 3, 32, 32), 128, np.uint8)
    xs = list(data.eval_batches(imgs, np.zeros(10), batch_size=4))
    assert [len(x) for x, _ in xs] == [4, 4, 2]
    expect = (128 - torch.tensor(data.NORMALIZATION["mean"])) / torch.tensor(data.NORMALIZATION["std"])
    assert torch.allclose(xs[0][0][0, :, 5, 5], expect)


def test_download_cli_wiring(cifar_dir, tmp_path, monkeypatch):
    """`python -m core.engine.data download DIR` asks torchvision for the official tarball with its MD5,
    then checks the unpacked files' MD5s (the network call itself is replaced by a local copy)."""
    import torchvision.datasets.utils as tvu

    calls = []

    def fake(url, download_root, filename=None, md5=None, **kw):
        calls.append((url, filename, md5))
        shutil.copytree(cifar_dir, f"{download_root}/cifar-10-batches-bin")

    monkeypatch.setattr(tvu, "download_and_extract_archive", fake)
    data.main(["download", str(tmp_path)])
    assert calls == [("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz",
                      "c32a1d4ab5d03f1284b67883e8d87530")]
    assert data.find_data_dir(tmp_path) == tmp_path / "cifar-10-batches-bin"
