"""Compute the research views once and store them, stamped, in assets/research/ (see research/store.py).

    python -m research.precompute [--views layer_responses lesion landscape vgg_vs_resnet shattered] [--data-dir DIR]

Needs CIFAR-10 (data/, $CIFAR10_DIR or --data-dir) and the shipped checkpoints; the app itself then
needs neither the data set nor minutes of CPU: it reads these files, and shows a view as stale when
a checkpoint it was computed from has changed (rerun this command then). Runtimes on the 2-core dev
machine, with resnet20 + plain20 shipped, are printed per view and quoted in the README.
"""
from __future__ import annotations

import argparse
import time

from research import store as cache


def _layer_responses(a):
    from research import study
    return study.precompute_layer_responses(data_dir=a.data_dir)


def _lesion(a):
    from research import lesion
    return lesion.precompute(data_dir=a.data_dir)


def _landscape(a):
    from research import landscape
    return landscape.precompute(data_dir=a.data_dir)


def _vgg_vs_resnet(a):
    from research import arch_cost as imagenet
    return imagenet.precompute()


def _shattered(a):
    from research import shattered
    from serving import zoo
    data = shattered.precompute()
    used = {k.split(" ")[0] for v in data.values() for k in v["lines"] if k.endswith("(trained)")}
    return data, sorted(used & set(zoo.shipped()))


VIEWS = {"layer_responses": _layer_responses, "lesion": _lesion, "landscape": _landscape,
         "vgg_vs_resnet": _vgg_vs_resnet, "shattered": _shattered}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m research.precompute", description=__doc__.split("\n\n")[0])
    ap.add_argument("--views", nargs="+", choices=list(VIEWS), default=list(VIEWS))
    ap.add_argument("--data-dir", help="folder holding cifar-10-batches-bin/ (default $CIFAR10_DIR, data/)")
    a = ap.parse_args(argv)
    from engine import models
    from serving import zoo

    zoo.set_threads()
    for view in a.views:
        t = time.perf_counter()
        data = VIEWS[view](a)
        if isinstance(data, tuple):  # (data, the checkpoints it used)
            data, names = data
        else:
            names = [k for k in data if k in models.REGISTRY] if isinstance(data, dict) else []
        path = cache.save(view, data, names)
        print(f"{view}: {time.perf_counter() - t:.1f} s -> {path} (checkpoints: {', '.join(names) or 'none'})")


if __name__ == "__main__":
    main()
