"""The cost of the Corrupt tab on this machine, per corruption (docs/measurements.md's table comes from this output).

    python -m bench.corrupt_cost [--repeats 5] [--depths 20 110] [--json OUT.json]

Per corruption, the median of --repeats calls (after one warm-up call) of:
  one       core.engine.corruptions.corrupt of one 32x32 image at severity 3;
  click     the Corrupt button as the server runs it (core.serving.corrupt.Corrupt.corrupt on the shipped example
            photo_cat.jpg, 1280 x 853): decode, the 5 severities, both nets on the clean image and each
            severity (12 classifications), the PNG write and the chart, for the pair at each of --depths.
The nets have fresh weights (an empty checkpoint folder: the compute does not depend on them).
Threads: the CPU quota (core.settings), as the app runs.
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.app_latency import median_ms as _median  # one warm-up call, then the median in ms
from core.engine import corruptions, models
from core.serving import images
from core.serving.corrupt import Corrupt
from core.serving.lab import Lab
from core.serving.worker import Worker
from core.serving.zoo import Zoo
from core.settings import Settings, set_threads

ROOT = Path(__file__).resolve().parent.parent

PHOTO = ROOT / "assets" / "examples" / "photo_cat.jpg"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--depths", type=int, nargs="+", default=[20, 110])
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    threads = set_threads(Settings.from_env().threads)
    empty, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    lab = Lab(Zoo(Settings(checkpoints=Path(empty))), out, Worker())
    handler, upload = Corrupt(lab), {"path": str(PHOTO)}
    arr, _ = images.load(PHOTO)
    rows = []
    for name in corruptions.CORRUPTIONS:
        row = {"corruption": name, "one_ms": _median(lambda: corruptions.corrupt(arr, name, 3), a.repeats)}
        for depth in a.depths:
            row[f"click_{depth}_ms"] = _median(lambda: handler.corrupt(upload, *models.pair(depth), name, 3, 0),
                                               a.repeats)
        rows.append(row)
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    decode = _median(lambda: images.load(PHOTO), a.repeats)
    print(f"decode of {PHOTO.name} alone: {decode:.1f} ms")
    if a.json:
        a.json.write_text(json.dumps({"threads": threads, "repeats": a.repeats, "photo": PHOTO.name,
                                      "decode_ms": round(decode, 2), f"median_click_{a.depths[0]}_ms":
                                      round(float(np.median([r[f"click_{a.depths[0]}_ms"] for r in rows])), 1),
                                      "rows": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}
                                               for r in rows]}, indent=1))


if __name__ == "__main__":
    main()
