"""Shared fixtures, and only fixtures (plain helpers are in tests/support.py). CIFAR-10 comes from
data/ (or $CIFAR10_DIR); if it is not there, it is rebuilt from ../shared/cifar10 (CI, offline) or
downloaded (online); without either, the data tests skip, and under CI ($CI true) they fail."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.engine import data, models
from tests.support import ROOT, require_cifar, running_app

SHARED_UNPACK = ROOT.parent / "shared" / "cifar10" / "unpack.py"
CALIBRATION_BATCH = 8  # the batch the `net` models' BN statistics come from (the suite's numbers assume it)


def _get_cifar() -> Path | None:
    try:
        return data.find_data_dir()
    except data.DataMissingError:
        pass
    if SHARED_UNPACK.is_file():
        subprocess.run([sys.executable, str(SHARED_UNPACK), str(ROOT / "data")], check=True)
        return data.find_data_dir(ROOT / "data")  # where it was unpacked, whatever $CIFAR10_DIR says
    try:
        return data.download(ROOT / "data")
    except Exception as e:  # offline and no shared copy
        print(f"CIFAR-10 unavailable: {e}")
        return None


@pytest.fixture(scope="session")
def cifar_dir():
    """The CIFAR-10 folder; skips the test without it, or fails it under CI (support.require_cifar)."""
    return require_cifar(_get_cifar())


@pytest.fixture(scope="session")
def cifar(cifar_dir):
    """{"train": (images, labels), "test": (images, labels)} as uint8 numpy arrays."""
    return {s: data.load_split(s, cifar_dir) for s in ("train", "test")}


@pytest.fixture(scope="session")
def net():
    """net(name): a cached core.engine.models.calibrated(name) model (seed 0), shared by the tests that
    only read it."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = models.calibrated(name, 0, CALIBRATION_BATCH)
        return cache[name]
    return get


@pytest.fixture(scope="session")
def server_log(tmp_path_factory):
    """Where the session's app writes its log."""
    return tmp_path_factory.mktemp("app") / "app.log"


@pytest.fixture(scope="session")
def server(server_log):
    """The app as users start it (log: server_log); yields its URL."""
    with running_app(server_log) as (url, _):
        yield url


@pytest.fixture(scope="session")
def client(server):
    """A gradio_client.Client connected to the running app."""
    from gradio_client import Client

    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny batches gain nothing from intra-op threads, and on a shared 2-core box OpenMP spin-waits
    made the small-model tests many times slower. Restored afterwards for other files."""
    from core.serving.zoo import one_thread as single

    with single():
        yield


@pytest.fixture(scope="module")
def browser(server):
    """Headless Debian chromium under Playwright (support.CHROMIUM, support.BROWSER_ARGS); where either is
    not installed, skips, or fails under CI (support.require_browser). screenshots/ (git-ignored) exists
    for the tests' pictures."""
    from tests.support import BROWSER_ARGS, CHROMIUM, SHOTS, require_browser

    sync_api = require_browser()
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


LANES = ("slow", "e2e", "audit")  # the markers of the lanes other than the default one (pyproject.toml)


def pytest_collection_modifyitems(config, items):
    """A test belongs to one lane at most, so that running every lane runs it once."""
    for item in items:
        lanes = [m.name for m in item.iter_markers() if m.name in LANES]
        if len(set(lanes)) > 1:
            raise pytest.UsageError(f"{item.nodeid} is in more than one lane: {sorted(set(lanes))}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI ($CI true) nothing may skip but what needs a GPU: any other skip is reported as a failure,
    so that no lane can go green by skipping (a missing dataset, browser or tool fails the run)."""
    from tests.support import ci

    outcome = yield
    report = outcome.get_result()
    if report.skipped and ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not re.search(r"\b(GPU|CUDA)\b", reason):
            report.outcome = "failed"
            report.longrepr = f"skipped under CI=true, where only tests that need a GPU may skip: {reason}"
