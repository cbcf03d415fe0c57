"""Plain helpers the test modules share (no fixtures: those are in conftest.py, which imports these).

- ROOT, EXAMPLES: the repository and its example images.
- free_port, running_app: `python app.py` in a subprocess on a free port, as users start it (from the
  repository, or from a staged Space folder).
- wait_for: poll a condition until a deadline (never a bare sleep), failing the test with a message.
- kill_after_saves: SIGKILL a training process (or one torchrun rank, torchrun_rank) at a random
  moment after it saved N more times; run_group, kill_group: a command and all it starts, ended
  together (no torchrun rank outlives its test).
- ci, require_cifar: without CIFAR-10, a CI run ($CI true) fails; elsewhere the data tests skip.
- BAD: hostile uploads with the one message core.serving.images gives each (tests/test_bad_inputs.py
  sends them through the API, tests/test_browser.py through the page); image_bytes, png_header and
  animated build such files.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"


# ---------------------------------------------------------------- waiting, processes, the app

def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    """condition()'s first truthy value, polled every `interval` s; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_app(log_path, cwd=ROOT, environ=None, **env_extra):
    """`python app.py` on a free port, as users start it, from cwd (the repository, or a staged Space),
    with `environ` (default: this process's) plus extra variables; yields (URL, process). Fails the
    test (with the log's tail) if the app exits or does not serve its page within 120 s."""
    port = free_port()
    env = {**(os.environ if environ is None else environ), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_SERVER_NAME": "127.0.0.1", **env_extra}
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not _serves(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"app.py did not serve: {Path(log_path).read_text()[-3000:]}")
                time.sleep(0.2)
            try:
                yield url, proc
            except BaseException:  # the test failed: pytest shows the log under "Captured stdout"
                print(f"--- the tail of {log_path} ---\n{Path(log_path).read_text()[-4000:]}")
                raise
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def kill_after_saves(cmd: list[str], folder: Path, saves: int = 3, timeout: float = 120, victim=None) -> str:
    """Start `cmd`, wait until `folder`'s history has `saves` more rows than before the start, wait a
    random 0-0.5 s more (random.seed it first), then SIGKILL it: a kill at some moment of a training
    run. victim(process) -> pid kills that process instead (a torchrun rank); then `cmd` must end
    by itself within `timeout` s. Fails the test if the rows do not come within `timeout` s, or if
    the process ends by itself before the kill (then nothing was tested). Returns cmd's stderr."""
    from core.engine.checkpoints import read_history, readable

    def rows() -> int:
        return len(read_history(readable(folder)))

    start = rows()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            def saved_or_ended():
                return proc.poll() is not None or rows() >= start + saves
            wait_for(saved_or_ended, timeout, f"{saves} more history rows in {folder}")
            if proc.poll() is None:
                time.sleep(random.uniform(0, 0.5))  # the random moment itself, not a wait for anything
            if proc.poll() is not None:
                err.seek(0)
                pytest.fail(f"{cmd} ended by itself (exit {proc.returncode}) before the kill: "
                            f"{err.read().decode(errors='replace')[-2000:]}")
            if victim is None:
                proc.send_signal(signal.SIGKILL)
            else:
                os.kill(victim(proc), signal.SIGKILL)
                wait_for(lambda: proc.poll() is not None, timeout, f"{cmd} to end after one of its processes died")
        finally:
            kill_group(proc)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if victim is None:
        assert proc.returncode == -signal.SIGKILL, proc.returncode
    else:
        assert proc.returncode != 0, text[-2000:]
    return text


def kill_group(proc: subprocess.Popen):
    """SIGKILL `proc` (started with start_new_session=True) and every process it started, then reap
    it: a test that fails leaves no torchrun rank behind to load the machine for the tests after it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the group is gone: every member has exited
        pass
    proc.wait()


def run_group(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True) in a session of its own, killed whole
    (kill_group) when it ends or on timeout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def torchrun_rank(proc: subprocess.Popen, rank: int, timeout: float = 60) -> int:
    """The pid of `rank` among the workers of a torchrun process (read from /proc: its children's
    RANK environment variable)."""
    def find():
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                try:
                    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if f"RANK={rank}".encode() in env:
                    return int(pid)
        return None
    return wait_for(find, timeout, f"torchrun's rank {rank}")


# ---------------------------------------------------------------- CIFAR-10 missing: fail under CI

CIFAR_MISSING = ("CIFAR-10 not found: not in data/ or $CIFAR10_DIR, ../shared/cifar10 absent and "
                 "the download failed")


def ci(environ=None) -> bool:
    """Whether this is a CI run: $CI set to true, 1 or yes (any case), as CI services set it."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_cifar(path, environ=None):
    """`path` where CIFAR-10 was found. Without it, fail under CI (a CI run must not pass by
    skipping every data test) and skip elsewhere."""
    if path is not None:
        return path
    if ci(environ):
        pytest.fail(f"{CIFAR_MISSING}; $CI is set, so this fails instead of skipping", pytrace=False)
    pytest.skip(CIFAR_MISSING)


def require_browser(environ=None):
    """playwright.sync_api, where it and Debian chromium (CHROMIUM) are installed. Without either, fail
    under CI (a CI run must not pass by skipping every browser test, as with CIFAR-10) and skip elsewhere."""
    try:
        from playwright import sync_api
    except ImportError:
        missing = "playwright is not installed (pip install playwright)"
    else:
        if Path(CHROMIUM).is_file():
            return sync_api
        missing = f"Debian chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if ci(environ):
        pytest.fail(f"{missing}; $CI is set, so this fails instead of skipping", pytrace=False)
    pytest.skip(missing)


# ---------------------------------------------------------------- hostile uploads

def image_bytes(mode="RGB", size=(64, 48), fmt="PNG", **save) -> bytes:
    """A noise image of `size` (w, h) converted to `mode`, saved as `fmt`."""
    arr = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def png_header(w: int, h: int) -> bytes:
    """A valid PNG signature and IHDR claiming w x h, then a tiny IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


_FORMATS = "upload a PNG, JPEG, WebP, BMP, GIF or TIFF image."


def _unsupported(name: str) -> str:
    return re.escape(f"{name} files are not supported; {_FORMATS}")


_UNREADABLE = re.escape(f"the file is not an image that can be read; {_FORMATS}")
_ANIMATED = r"animated images are not supported; upload a single frame\."


def _too_many(w: int, h: int) -> str:  # PIL refuses these itself (count unknown) or we count them
    return (rf"the image has (too many|{w:,} x {h:,} = {w * h:,}) pixels, over the 50,000,000 limit; "
            r"upload a smaller image \(for example at most 7000 x 7000\)\.")


# name: (file name, bytes, a regex for the whole message (re.fullmatch) core.serving.images gives this file)
BAD = {
    "empty file": ("a.png", b"", r"the file is empty \(0 bytes\); upload an image file\."),
    "plain text": ("a.png", b"hello, this is not an image\n" * 10, _UNREADABLE),
    "truncated PNG": ("a.png", image_bytes()[:200],
                      r"the PNG file is truncated or corrupt \(.+\); upload the complete file or another image\."),
    "corrupt JPEG": ("a.jpg", image_bytes(fmt="JPEG")[:100] + b"\x00" * 500,
                     r"the JPEG file is (corrupt or has an invalid size; re-save it with an image editor or "
                     r"upload another image|truncated or corrupt \(.+\); upload the complete file or another image)\."),
    "SVG with a script": ("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                          _unsupported("SVG")),
    "XML": ("a.xml", b'<?xml version="1.0"?><root/>', _unsupported("SVG/XML")),
    "PSD": ("a.psd", b"8BPS" + b"\x00\x01" + b"\x00" * 200, _unsupported("PSD")),
    "PDF": ("a.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", _unsupported("PDF")),
    "HEIC": ("a.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100, _unsupported("HEIC")),
    "AVIF": ("a.avif", b"\x00\x00\x00\x18ftypavif" + b"\x00" * 100, _unsupported("AVIF")),
    "ICO": ("a.ico", image_bytes(size=(32, 32), fmt="ICO"), _unsupported("ICO")),
    "ZIP": ("a.zip", b"PK\x03\x04" + b"\x00" * 100, _UNREADABLE),
    "HTML": ("a.html", b"<html><body>hi</body></html>", _UNREADABLE),
    "animated GIF": ("a.gif", animated("GIF"), _ANIMATED),
    "animated WebP": ("a.webp", animated("WEBP"), _ANIMATED),
    "animated PNG": ("a.png", animated("PNG"), _ANIMATED),
    "1x1 image": ("a.png", image_bytes(size=(1, 1)),
                  r"the image is 1 x 1 pixels, too small to classify; upload one at least 8 pixels on each side\."),
    "4x400 image": ("a.png", image_bytes(size=(4, 400)),
                    r"the image is 4 x 400 pixels, too small to classify; upload one at least 8 pixels on each side\."),
    "65535x65535 header": ("a.png", png_header(65535, 65535), _too_many(65535, 65535)),
    "decompression bomb 20000x20000": ("a.png", png_header(20000, 20000), _too_many(20000, 20000)),
    "0-height header": ("a.png", png_header(64, 0),
                        r"(the PNG file is corrupt or has an invalid size; re-save it with an image editor or "
                        r"upload another image|the image has zero size \(64 x 0\); upload another image)\."),
}


def open_tab(page, name):
    """Click a page's tab (Playwright), opening the top-level group that holds it first (core.ui.text.GROUPS).
    Every tab bar wraps onto more rows instead of hiding tabs behind a menu, so a tab is either visible
    or in the other group."""
    from core.ui.text import GROUPS

    tab = page.get_by_role("tab", name=name, exact=True)
    if not (tab.count() and tab.first.is_visible()):
        for group in GROUPS:
            page.get_by_role("tab", name=group, exact=True).click()
            if tab.first.is_visible():
                break
    tab.first.click()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "screenshots"  # git-ignored


SLOW_DEPTH = 200  # nets deeper than this (resnet1202) run their per-model tests in the slow lane


def by_model(names) -> list:
    """pytest params over model names, each net deeper than SLOW_DEPTH (its spec's depth) marked slow."""
    from core.engine import models

    return [pytest.param(n, id=n, marks=[pytest.mark.slow] if models.get_spec(n).depth > SLOW_DEPTH else [])
            for n in names]
