"""The CIFAR-10-C reader, on a fake set in the official layout and shapes (no network, no real data).

The fake gaussian_noise.npy is real-shaped (50000, 32, 32, 3) uint8, written through a memory map:
image i of severity s has HWC pixel (0,0,0) = i % 256, (1,0,0) = i // 256, (0,0,1) = s and
(3,5,2) = 77, zeros elsewhere; fog.npy is present but all zeros.
"""
import numpy as np
import pytest
from numpy.lib.format import open_memmap

from core.engine import cifar10c, data

LABELS = np.tile(np.arange(10_000) % 10, 5).astype(np.uint8)


def _pattern(rows: np.ndarray) -> np.ndarray:
    """The fake images (HWC) at these rows of a corruption file."""
    x = np.zeros((len(rows), 32, 32, 3), np.uint8)
    i, s = rows % 10_000, rows // 10_000 + 1
    x[:, 0, 0, 0], x[:, 1, 0, 0], x[:, 0, 0, 1], x[:, 3, 5, 2] = i % 256, i // 256, s, 77
    return x


def _write(path, dtype=np.uint8, shape=cifar10c.SHAPE, fill=False):
    m = open_memmap(path, "w+", dtype, shape)  # sparse on disk until written
    if fill:
        for a in range(0, shape[0], 10_000):
            m[a:a + 10_000] = _pattern(np.arange(a, a + 10_000))
    m.flush()
    del m


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """A root folder holding CIFAR-10-C/ with labels.npy, gaussian_noise.npy and fog.npy."""
    folder = tmp_path_factory.mktemp("root") / cifar10c.DIRNAME
    folder.mkdir()
    np.save(folder / "labels.npy", LABELS)
    _write(folder / "gaussian_noise.npy", fill=True)
    _write(folder / "fog.npy")
    return folder


def test_find(official, tmp_path, monkeypatch):
    assert cifar10c.find(official.parent) == official and cifar10c.find(official) == official
    assert cifar10c.find(official.parent / "cifar-10-batches-bin") == official  # its sibling
    monkeypatch.setenv("CIFAR10_DIR", str(official.parent))
    assert cifar10c.find() == official
    assert cifar10c.find(tmp_path) is None  # optional: absent is not an error
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path))
    assert cifar10c.find() is None


def test_constants():
    assert len(cifar10c.BENCHMARK) == 15 and len(cifar10c.EXTRA) == 4
    assert len(set(cifar10c.CORRUPTIONS)) == 19 and cifar10c.CORRUPTIONS[0] == "gaussian_noise"


def test_available(official, tmp_path):
    assert cifar10c.available(official) == ["gaussian_noise", "fog"]  # CORRUPTIONS order
    (tmp_path / "fog.npy").touch()
    assert cifar10c.available(tmp_path) == []  # no labels.npy


@pytest.mark.parametrize("severity,n", [(1, 10_000), (3, 300), (5, 1)])
def test_load_picks_block_and_rows(official, severity, n):
    x, y = cifar10c.load(official, "gaussian_noise", severity, n)
    assert x.shape == (n, 3, 32, 32) and x.dtype == np.uint8 and x.flags.c_contiguous
    assert type(x) is np.ndarray and y.dtype == np.int64 and y.shape == (n,)
    assert (x[:, 0, 0, 0] + 256 * x[:, 0, 1, 0].astype(int) == np.arange(n)).all()  # first n images
    assert (x[:, 1, 0, 0] == severity).all()  # of this severity block
    assert (x[:, 2, 3, 5] == 77).all()  # HWC (h=3, w=5, c=2) -> CHW (2, 3, 5)
    rows = np.arange(n) + (severity - 1) * 10_000
    assert np.array_equal(x, _pattern(rows).transpose(0, 3, 1, 2))
    assert np.array_equal(y, np.arange(n) % 10)


def test_load_default_n_and_int64_labels(official, tmp_path):
    x, y = cifar10c.load(official, "fog", 2)
    assert x.shape == (10_000, 3, 32, 32) and not x.any() and np.array_equal(y, np.arange(10_000) % 10)
    (tmp_path / "fog.npy").symlink_to(official / "fog.npy")
    np.save(tmp_path / "labels.npy", LABELS.astype(np.int64))  # older copies
    assert np.array_equal(cifar10c.load(tmp_path, "fog", 1, 5)[1], np.arange(5) % 10)


def _labels(values):
    return lambda d: np.save(d / "labels.npy", values)


def _fog(d):
    """d/fog.npy as a fresh path (it was a link to the shared fake file, which must stay intact)."""
    (d / "fog.npy").unlink()
    return d / "fog.npy"


def _blocks_differ(d):
    lab = LABELS.copy()
    lab[-1] = (lab[-1] + 1) % 10
    np.save(d / "labels.npy", lab)


BAD = {  # case: (break the folder, load args, file named, words in the message)
    "wrong dtype": (lambda d: _write(_fog(d), np.int16), ("fog", 1), "fog.npy", "int16"),
    "HWC/CHW mixup": (lambda d: _write(_fog(d), shape=(50_000, 3, 32, 32)), ("fog", 1), "fog.npy",
                      "(50000, 3, 32, 32)"),
    "short file": (lambda d: np.save(_fog(d), np.zeros((10, 32, 32, 3), np.uint8)), ("fog", 1), "fog.npy",
                   "(10, 32, 32, 3)"),
    "pickled": (lambda d: np.save(_fog(d), np.array([{}]), allow_pickle=True), ("fog", 1), "fog.npy",
                "not a readable"),
    "missing file": (None, ("snow", 1), "snow.npy", "missing"),
    "missing labels": (lambda d: (d / "labels.npy").unlink(), ("fog", 1), "labels.npy", "missing"),
    "labels shape": (_labels(LABELS[:10_000]), ("fog", 1), "labels.npy", "(10000,)"),
    "labels float": (_labels(LABELS.astype(np.float32)), ("fog", 1), "labels.npy", "float32"),
    "label blocks differ": (_blocks_differ, ("fog", 1), "labels.npy", "differ"),
    "labels out of range": (_labels(LABELS + 1), ("fog", 1), "labels.npy", "outside 0..9"),
    "unknown corruption": (None, ("gaussian", 1), "gaussian.npy", "jpeg_compression"),
    "severity 0": (None, ("fog", 0), "fog.npy", "severity 0"),
    "severity 6": (None, ("fog", 6), "fog.npy", "severity 6"),
    "severity float": (None, ("fog", 1.0), "fog.npy", "severity 1.0"),
    "n 0": (None, ("fog", 1, 0), "fog.npy", "n=0"),
    "n 10001": (None, ("fog", 1, 10_001), "fog.npy", "n=10001"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_names_file(official, tmp_path, case):
    breaker, args, name, words = BAD[case]
    np.save(tmp_path / "labels.npy", LABELS)
    (tmp_path / "fog.npy").symlink_to(official / "fog.npy")
    if breaker:
        breaker(tmp_path)
    with pytest.raises(cifar10c.OfficialSetError) as e:
        cifar10c.load(tmp_path, *args)
    assert isinstance(e.value, ValueError) and str(tmp_path / name) in str(e.value) and words in str(e.value)


def test_download_cli_flag(tmp_path, monkeypatch):
    """`download DIR --cifar10c` fetches CIFAR-10, then CIFAR-10-C, into DIR; without it only CIFAR-10."""
    calls = []
    monkeypatch.setattr(data, "download", lambda d: calls.append(("cifar10", d)))
    monkeypatch.setattr(cifar10c, "download", lambda d: calls.append(("cifar10c", d)))
    data.main(["download", str(tmp_path), "--cifar10c"])
    assert calls == [("cifar10", str(tmp_path)), ("cifar10c", str(tmp_path))]
    calls.clear()
    data.main(["download", str(tmp_path)])
    assert calls == [("cifar10", str(tmp_path))]
