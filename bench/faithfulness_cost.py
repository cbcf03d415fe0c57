"""The cost of the Explain tab's faithfulness outputs on this machine, per method, per net, at depths
20 and 110 (docs/measurements.md's table comes from this script's output).

    python -m bench.faithfulness_cost [--repeats 3] [--depths 20 110] [--json OUT.json]

For each net of the pairs at depths 20 and 110 (fresh He-initialised weights, BN statistics from 8
random images: the compute does not depend on the weights) and each attribution method at the page's
defaults, the median of --repeats calls (after one warm-up call) of:
  attribution   core.research.attribution.attribute, what the Explain click already paid;
  curves        the Explain click's deletion and insertion curves: the method's order and the random
                order, 2 x 2 x 33 images (core.research.faithfulness.curves);
  metrics       Captum's infidelity and sensitivity for that method (core.research.faithfulness.captum_metrics);
and per net, independent of the method: "Score every method" (every method's map, then the curves of
all eight orders); and once, the heat map on a 1280 x 853 JPEG upload as the Explain click pays for
it: images.load_photo (one decode, the 32x32 image and a 1024 x 682 display copy) + overlay.on_photo
+ the PNG write (core.serving.files.publish_png), beside images.load alone (what the click paid before).
Threads: the CPU quota (core.settings), as the app runs.
"""
import argparse
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.app_latency import median_ms as _median  # one warm-up call, then the median in ms
from core.engine import models
from core.research import attribution, faithfulness
from core.serving import files, images, overlay
from core.settings import Settings, set_threads

DEPTHS = (20, 110)


def _photo() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (853, 1280, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    set_threads(Settings.from_env().threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    upload, out = _photo(), tempfile.mkdtemp()

    def heat_map(attr):
        _, _, photo, box = images.load_photo(upload)
        return files.publish_png(overlay.on_photo(attr, photo, box), out, "photo.png")
    rows = []
    for depth in a.depths:
        for name in models.pair(depth):
            model = models.calibrated(name, 0, 8).eval()
            maps = {}
            for method in attribution.METHODS:
                maps[method] = attribution.attribute(model, x, method, 3)[0]
                orders = {method: faithfulness.ranking(maps[method]), faithfulness.RANDOM: faithfulness.random_ranking(1024)}
                row = {"depth": depth, "model": name, "method": method,
                       "attribution_ms": _median(lambda: attribution.attribute(model, x, method, 3), a.repeats),
                       "curves_ms": _median(lambda: faithfulness.curves(model, x, orders, 3), a.repeats),
                       "metrics_ms": _median(lambda: faithfulness.captum_metrics(model, x, 3, method, maps[method]),
                                             a.repeats)}
                rows.append(row)
                print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
            every = _median(lambda: faithfulness.score(model, x, 3, faithfulness.attribute_all(model, x, 3, list(maps))[0]),
                            a.repeats)
            rows.append({"depth": depth, "model": name, "method": "(every method)", "score_every_method_ms": every})
            print(json.dumps(rows[-1]), flush=True)
    photo = {"heat_map_on_photo_ms": _median(lambda: heat_map(maps["Integrated Gradients"]), a.repeats),
             "load_alone_ms": _median(lambda: images.load(upload), a.repeats)}
    print(json.dumps(photo), flush=True)
    print("\n| depth | model | method | attribution | curves (Explain) | infidelity + sensitivity |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "curves_ms" in r:
            print(f"| {r['depth']} | {r['model']} | {r['method']} | {r['attribution_ms']:.0f} ms | "
                  f"{r['curves_ms']:.0f} ms | {r['metrics_ms']:.0f} ms |")
    print("\n| depth | model | Score every method (no Captum metrics) |")
    print("|---|---|---|")
    for r in rows:
        if "score_every_method_ms" in r:
            print(f"| {r['depth']} | {r['model']} | {r['score_every_method_ms'] / 1000:.2f} s |")
    print(f"\nHeat map on a 1280 × 853 upload, per net: load_photo + on_photo + PNG write "
          f"{photo['heat_map_on_photo_ms']:.0f} ms (load alone: {photo['load_alone_ms']:.0f} ms)")
    if a.json:
        a.json.write_text(json.dumps({"threads": torch.get_num_threads(), "repeats": a.repeats, "rows": rows,
                                      "photo": photo}, indent=1))


if __name__ == "__main__":
    main()
