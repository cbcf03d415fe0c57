"""Shared fixtures. CIFAR-10 comes from data/ (or $CIFAR10_DIR); if it is not there, it is rebuilt
from ../shared/cifar10 (CI, offline) or downloaded (online); without either, data tests skip."""
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from engine import data, models

ROOT = Path(__file__).resolve().parent.parent
SHARED_UNPACK = ROOT.parent / "shared" / "cifar10" / "unpack.py"


def _get_cifar() -> Path | None:
    try:
        return data.find_data_dir()
    except data.DataMissingError:
        pass
    if SHARED_UNPACK.is_file():
        subprocess.run([sys.executable, str(SHARED_UNPACK), str(ROOT / "data")], check=True)
        return data.find_data_dir()
    try:
        return data.download(ROOT / "data")
    except Exception as e:  # offline and no shared copy
        print(f"CIFAR-10 unavailable: {e}")
        return None


@pytest.fixture(scope="session")
def cifar_dir():
    path = _get_cifar()
    if path is None:
        pytest.skip("CIFAR-10 not found, ../shared/cifar10 absent and download failed")
    return path


@pytest.fixture(scope="session")
def cifar(cifar_dir):
    """{"train": (images, labels), "test": (images, labels)} as uint8 numpy arrays."""
    return {s: data.load_split(s, cifar_dir) for s in ("train", "test")}


def ready(name: str, seed: int = 0) -> models.CifarResNet:
    """A fresh model in eval mode whose BN running stats are set from one random batch.

    Without this, an untrained 1202-layer net in eval mode overflows (the default running variance
    of 1 does not normalise anything, and 600 residual additions double the variance each time).
    """
    torch.manual_seed(seed)
    model = models.build(name)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one batch sets the stats exactly
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32))
    return model.eval()


@pytest.fixture(scope="session")
def net():
    """net(name): a cached ready(name) model, shared by the tests that only read it."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = ready(name)
        return cache[name]
    return get


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(log_path, **env_extra):
    """`python app.py` on a free port, as users start it, with extra environment; yields its URL."""
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", **env_extra}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    proc.kill()
                    pytest.fail(f"app.py did not serve: {Path(log_path).read_text()[-3000:]}")
                time.sleep(0.5)
        try:
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app as users start it (log: a pytest tmp file); yields its URL."""
    with running_app(tmp_path_factory.mktemp("app") / "app.log") as (url, _):
        yield url


@pytest.fixture(scope="session")
def client(server):
    """A gradio_client.Client connected to the running app."""
    from gradio_client import Client

    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny batches gain nothing from intra-op threads, and on a shared 2-core box OpenMP spin-waits
    made the small-model tests 10-15x slower (4 s vs 60 s). Restored afterwards for other files."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def kill_after_saves(cmd: list[str], folder: Path, saves: int = 3, timeout: float = 90):
    """Start `cmd`, wait until `folder`'s history has `saves` more rows, wait a random 0-0.5 s
    more (random.seed it first), then SIGKILL it: a kill at some moment of a training run."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from engine.checkpoints import read_history

    start = len(read_history(folder)) if folder.exists() else 0
    deadline = time.time() + timeout
    while time.time() < deadline and (not folder.exists() or len(read_history(folder)) < start + saves):
        time.sleep(0.05)
    time.sleep(random.uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
