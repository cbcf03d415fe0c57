"""The Corrupt tab's endpoint through gradio_client against the running app (tests/conftest.py's
`client`): the corrupted image is the exact 32x32 image core.engine.corruptions makes of the upload, the
same for a seed and another for another seed; both nets' top-5 at that severity; the chart's six
points per net end at the severity shown; bad controls are refused with the app's own message."""
import json

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from core.engine import checkpoints, corruptions
from core.serving import images
from tests.support import EXAMPLES

CAT = str(EXAMPLES / "photo_cat.jpg")


def _call(client, corruption="gaussian_noise", severity=3, seed=0, plain="plain20", residual="resnet20"):
    return client.predict(handle_file(CAT), plain, residual, corruption, severity, seed, api_name="/corrupt")


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
        return np.asarray(im).transpose(2, 0, 1)


@pytest.mark.parametrize("corruption", ["gaussian_noise", "elastic_transform", "jpeg_compression"])
def test_the_image_is_the_corruption_of_the_upload(client, corruption):
    seen, lab_p, lab_r, plot, notes = _call(client, corruption, 4, seed=7)
    arr, _ = images.load(CAT)
    assert np.array_equal(_pixels(seen), corruptions.corrupt(arr, corruption, 4, seed=7))
    for lab in (lab_p, lab_r):
        assert len(lab["confidences"]) == 5 and lab["label"] == lab["confidences"][0]["label"]
    fig = json.loads(plot["plot"])
    assert [t["name"].split(":")[0] for t in fig["data"]] == ["plain20", "resnet20"]
    residual = fig["data"][1]
    assert residual["x"] == [0, 1, 2, 3, 4, 5] and all(0 <= p <= 1 for p in residual["y"])
    cls = residual["name"].split("p(")[1].rstrip(")")
    lines = notes.split("\n\n")
    assert lines[0].startswith(f"**{corruptions.CORRUPTIONS[corruption].title}**, severity 4: ")
    assert lines[0].endswith("; seed 7") and lines[1].startswith("`plain20`: clean **") and len(lines) == 3
    assert f"; p({cls}) = {residual['y'][4]:.2f} (" in lines[2]  # the chart's point at the severity shown
    top = {c["label"]: c["confidence"] for c in lab_r["confidences"]}
    assert residual["y"][4] == pytest.approx(top[cls], abs=1e-6) if cls in top else min(top.values()) >= residual["y"][4]


def test_same_seed_same_image_other_seed_other_image(client):
    a, b, c = (_pixels(_call(client, seed=s)[0]) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_an_unavailable_model_is_named(client):
    # resnet1202: not shipped (every plain net is, since plain110 on 2026-11-28)
    assert not (checkpoints.DEFAULT_ROOT / "resnet1202").exists()
    seen, lab_p, lab_r, _, notes = _call(client, "contrast", 2, residual="resnet1202")
    assert lab_r in ({}, None) and len(lab_p["confidences"]) == 5
    assert "`resnet1202`: unavailable. resnet1202 has no trained checkpoint yet" in notes


@pytest.mark.parametrize("args, message", [
    (("fog", 3, 0), "not in the list of choices|unknown corruption"), (("contrast", 3, -1), "seed must be|minimum"),
    (("contrast", 3, 1.5), "seed must be a whole number"), (("contrast", 7, 0), "severity|maximum"),
])
def test_bad_controls_are_refused(client, args, message):
    with pytest.raises(AppError, match=message):
        _call(client, *args)
    assert len(_call(client)) == 5  # and the next request works
