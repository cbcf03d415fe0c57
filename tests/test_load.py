"""Many visitors, one image (a public Space whose visitors click the same example), and the warm-up.

- 12 gradio_client users, started together, each send the identical image to every image endpoint
  (classify, explain, architecture) twice and download every output file: no request fails, every
  file decodes, and each output is byte-identical across users. Before core.serving.files this failed:
  Gradio rewrote a shared cache file while other clients downloaded it (h11 "Too little data for
  declared Content-Length").
- The handlers hand Gradio finished files (paths under the files folder), never images for Gradio
  to write itself (the code path with the race: gradio.processing_utils.save_pil_to_cache).
- `python app.py` starts its warm-up only after the page is served, logs each step, and finishes
  with no step failing, while the requests above run.
"""
import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.serving.lab import EXPLAIN
from tests.support import EXAMPLES, running_app, wait_for

pytestmark = pytest.mark.e2e

USERS, ROUNDS = 12, 2
IMAGE = str(EXAMPLES / "photo_cat.jpg")
PAIR = ("plain20", "resnet20")
ENDPOINTS = {"classify": (), "explain": tuple(EXPLAIN.values()), "architecture": ()}


@pytest.fixture(scope="module")
def fresh_app(tmp_path_factory):
    log = tmp_path_factory.mktemp("load") / "app.log"
    with running_app(log) as (url, _):
        yield url, log


def _is_file(value: str) -> bool:
    try:
        return Path(value).is_file()
    except OSError:  # a Markdown note longer than a file name can be
        return False


def _outputs(result, endpoint):
    """(file digests, labels and figures) of one result; every file must decode as an image. The
    Markdown notes are left out: they report each request's own timings."""
    digests, rest = [], []
    for value in result if isinstance(result, tuple) else (result,):
        if isinstance(value, str) and _is_file(value):
            data = Path(value).read_bytes()
            Image.open(Path(value)).load()  # decodes
            digests.append(hashlib.sha256(data).hexdigest())
        elif not isinstance(value, str):
            rest.append(json.dumps(value, sort_keys=True, default=str))
    return digests, rest


def test_many_users_sending_one_image_all_get_it_whole(fresh_app, tmp_path):
    from gradio_client import Client, handle_file

    url, _ = fresh_app
    clients = [Client(url, verbose=False, download_files=str(tmp_path / f"user{i}")) for i in range(USERS)]
    start = threading.Barrier(USERS)
    results, failures = [], []

    def user(client):
        start.wait()
        for _ in range(ROUNDS):
            for endpoint, extra in ENDPOINTS.items():
                try:
                    out = client.predict(handle_file(IMAGE), *PAIR, *extra, api_name=f"/{endpoint}")
                    results.append((endpoint, _outputs(out, endpoint)))
                except Exception as e:  # every failure is reported, none hidden
                    failures.append(f"{endpoint}: {type(e).__name__}: {e}"[:300])
    threads = [threading.Thread(target=user, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(results) == USERS * ROUNDS * len(ENDPOINTS)
    for endpoint in ENDPOINTS:
        distinct = {json.dumps(r) for e, r in results if e == endpoint}
        assert len(distinct) == 1, f"{endpoint}: {len(distinct)} different outputs for one image"
    files = {e: r[0] for e, r in results}
    assert len(files["classify"]) == 1 and len(files["explain"]) == 4 and files["architecture"] == []


def test_warm_up_follows_the_served_page_and_every_step_succeeds(fresh_app):
    _, log = fresh_app
    wait_for(lambda: "warm-up: done" in log.read_text(), 120, "the warm-up to finish")
    lines = log.read_text().splitlines()
    served = next(i for i, line in enumerate(lines) if "Running on local URL" in line)
    warm = [i for i, line in enumerate(lines) if "warm-up:" in line]
    assert served < warm[0], lines
    steps = [line for line in lines if "warm-up:" in line and " in " in line and "done" not in line]
    assert len(steps) == 9 and not [line for line in lines if "failed" in line], lines
    from core.engine import models
    from core.serving.zoo import Zoo
    from core.settings import Settings
    plain, residual = models.pair(Zoo(Settings()).default_depth())  # the page's default pair
    assert f"warm-up: 9 steps for {plain} + {residual}" in lines[warm[0]]


def test_handlers_hand_gradio_finished_files(tmp_path):
    """The outputs are paths of complete PNGs under the Lab's files folder, the same bytes for the
    same image: Gradio then serves them as they are instead of writing them itself."""
    from core.serving.lab import Lab
    from core.serving.worker import Worker
    from core.serving.zoo import Zoo
    from core.settings import Settings

    lab = Lab(Zoo(Settings()), tmp_path, Worker())
    _, _, seen, _ = lab.classify({"path": IMAGE}, *PAIR)
    plain, residual, _, photo_plain, photo_residual, _ = lab.explain({"path": IMAGE}, *PAIR, **EXPLAIN)
    for path in (seen, plain, residual, photo_plain, photo_residual):
        assert isinstance(path, str) and Path(path).is_relative_to(tmp_path) and path.endswith(".png")
        assert np.asarray(Image.open(path)).dtype == np.uint8
    assert Image.open(seen).size == (128, 128)
    assert lab.classify({"path": IMAGE}, *PAIR)[2] == seen


def test_the_log_level_comes_from_the_environment():
    import logging

    from core.settings import Settings, SettingsError
    from core.ui.launch import configure_logging

    logger = logging.getLogger("resnet_lab")
    handlers, level = list(logger.handlers), logger.level
    try:
        configure_logging(Settings.from_env({"RESNET_LAB_LOG": "Debug"}).log_level)
        assert logger.level == logging.DEBUG and len(logger.handlers) == len(handlers) + 1
        assert Settings.from_env({}).log_level == "info"
        with pytest.raises(SettingsError, match=r"\$RESNET_LAB_LOG must be debug, info, warning or error, not 'loud'"):
            Settings.from_env({"RESNET_LAB_LOG": "loud"})
    finally:
        logger.handlers[:], logger.level = handlers, level
