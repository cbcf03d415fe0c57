"""How faithful is an attribution map? Deletion and insertion curves, their AUC, and Captum's metrics.

Deletion (Petsiuk et al., RISE, 2018): remove the image's pixels in the map's order, most important
first, STEP pixels at a time, and record the softmax probability of the target class after each step:
a faithful map makes it fall fast (low AUC). Insertion: start from the baseline image and reveal the
pixels in the same order: a faithful map makes it rise fast (high AUC). A removed pixel takes the
baseline the attribution methods use, zeros in normalised space (the dataset's mean colour), on all
three channels; IG, DeepLift and Occlusion compare against that image, and the other methods, which
have none, are scored against the same one. Pixels are ranked by core.research.attribution.channel_map
(the map the page shows, for the chosen sign); ties (Grad-CAM's zeros) fall in a fixed random order,
so no image edge is favoured. The random order (RANDOM) is every net's reference. The AUC is the
trapezoid over the fraction of pixels, 0 to 1 (1024 pixels, STEP = 32: 33 points).

Captum's metrics, both lower-is-better, at a bounded cost. infidelity (Yeh et al. 2019; Captum's, with
the map optimally rescaled): the squared error of the score change the map predicts, under
INFIDELITY_SAMPLES perturbations x - m (x - baseline), m Gaussian per value (std INFIDELITY_NOISE);
maps of score change from the baseline (FROM_BASELINE) are dotted with m, gradient-like maps with the
step itself, as Captum asks. It is reported relative to the mean squared score change, so 0 is
exact, 1 explains nothing, and nets with different logit scales compare. sensitivity_max
(Captum's): the largest relative change of the map under SENSITIVITY_SAMPLES uniform perturbations
of radius SENSITIVITY_RADIUS, each one more attribution.

`attribute_all` makes every method's map and `score` scores them (and the random order) by one sign.
The forwards here run outside core.research.attribution's per-model lock: callers serialise the model work
(the app runs all of it on one worker thread).
`study` runs every method on a set of test images for one net (target: the net's own prediction),
ranking by each of SIGNS: "absolute" (the page's default: magnitude, whichever way a pixel pushes)
and "all" (the signed map: evidence for the class first, evidence against it last, which is the
order a signed map such as Occlusion's or IG's means); `summary` and `paired` give the means with
bootstrap intervals, for one net and for a residual-minus-plain difference over the same images,
each method's AUC taken relative to its own net's random order (the nets differ in how fast any
pixel removal moves their probability, and that is not their maps' doing).

Held by tests/test_faithfulness.py: on a model whose class score is linear in the pixels, the ideal
order's curves equal the ones computed by hand (the logit less, or made of, the largest
contributions), Integrated Gradients' order reaches the ideal deletion and insertion AUCs, and random
and reversed orders score worse; Captum's infidelity is 0 for the exact map and near 1 for noise;
curve endpoints are the input's and the baseline's scores; ties do not fall row by row; training
flags are restored; each sign is recorded per image; bootstrap intervals hold their mean and narrow
with more images; paired differences are taken against each net's own random order.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from core.research import attribution

STEP = 32  # pixels removed (or revealed) per step
RANDOM = "random order"  # the reference ordering's name
TIE_SEED = 0  # the fixed random order that breaks ties
BATCH = 264  # perturbed images per forward pass (4 orderings x 2 curves x 33 points)
INFIDELITY_SAMPLES, INFIDELITY_NOISE = 32, 0.1  # Gaussian perturbations (std in normalised units)
SENSITIVITY_SAMPLES, SENSITIVITY_RADIUS = 4, 0.02  # Captum's default radius; each sample re-attributes
BOOTSTRAP = 1000
SIGNS = ("absolute", "all")  # the study's rankings: the page's default, and the signed map (evidence for first)
BASELINE = 0.0  # what a removed pixel becomes (normalised units): the mean colour, as IG, DeepLift, Occlusion use
FROM_BASELINE = ("Integrated Gradients", "DeepLift", "Occlusion")  # maps of score change from the baseline


def ranking(attr: np.ndarray, sign: str = "absolute") -> np.ndarray:
    """Pixel indices (row-major over H x W), most important first by channel_map(attr, sign); equal
    values in a fixed random order."""
    m = attribution.channel_map(attr, sign).ravel()
    tie = np.random.default_rng(TIE_SEED).permutation(m.size)
    return np.lexsort((tie, -m))


def random_ranking(n_pixels: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n_pixels)


def fractions(n_pixels: int, step: int = STEP) -> np.ndarray:
    """The fraction of pixels removed (or revealed) at each point of a curve, 0 to 1."""
    counts = np.unique(np.r_[np.arange(0, n_pixels, step), n_pixels])
    return counts / n_pixels


def _perturbed(x: torch.Tensor, order: np.ndarray, step: int, baseline: float):
    """(deletion batch, insertion batch), each P x C x H x W, for one 1 x C x H x W input."""
    _, c, h, w = x.shape
    counts = np.rint(fractions(h * w, step) * h * w).astype(int)
    rank = np.empty(h * w, dtype=np.int64)
    rank[order] = np.arange(h * w)  # position of each pixel in the order
    gone = torch.as_tensor(rank[None, :] < counts[:, None], device=x.device).view(len(counts), 1, h, w)  # P x 1 x H x W
    base = torch.full_like(x, baseline)
    return torch.where(gone, base, x), torch.where(gone, x, base)


@contextlib.contextmanager
def _evaluating(model):
    """The model in eval mode, every module's training flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def auc(y, fraction) -> float:
    return float(np.trapezoid(np.asarray(y, np.float64), np.asarray(fraction, np.float64)))


def curves(model, x: torch.Tensor, orders: dict[str, np.ndarray], target: int, step: int = STEP,
           baseline: float = BASELINE) -> dict:
    """{"fraction": [...], "curves": {name: {"deletion", "insertion", "deletion_auc", "insertion_auc"}}}
    for each pixel order of `orders`, on x (1 x C x H x W, normalised), class `target`'s softmax
    probability. Runs in eval mode without gradients and restores every training flag."""
    param = next(model.parameters())
    x = x.detach().to(param.device, param.dtype)
    frac = fractions(x.shape[-2] * x.shape[-1], step)
    batches = [b for order in orders.values() for b in _perturbed(x, order, step, baseline)]
    with _evaluating(model), torch.no_grad():
        flat = torch.cat(batches)
        probs = torch.cat([torch.softmax(model(flat[i:i + BATCH]).float(), 1)[:, target]
                           for i in range(0, len(flat), BATCH)]).cpu().numpy()
    probs = probs.reshape(len(orders), 2, len(frac))
    out = {}
    for (name, _), (dele, ins) in zip(orders.items(), probs):
        out[name] = {"deletion": dele.tolist(), "insertion": ins.tolist(),
                     "deletion_auc": auc(dele, frac), "insertion_auc": auc(ins, frac)}
    return {"fraction": frac.tolist(), "curves": out}


def attribute_all(model, x: torch.Tensor, target: int, methods, params: dict | None = None):
    """({method: H x W x C map}, {method: seconds}) of x for `target`. params: core.research.attribution
    parameters (check_params keeps each method's)."""
    maps, seconds = {}, {}
    for method in methods:
        maps[method], seconds[method] = attribution.attribute(
            model, x, method, target, **attribution.check_params(method, **(params or {})))
    return maps, seconds


def score(model, x: torch.Tensor, target: int, maps: dict, sign: str = "absolute", step: int = STEP) -> dict:
    """curves() of every map's order (ranked by `sign`) and of the random order."""
    orders = {m: ranking(a, sign) for m, a in maps.items()}
    orders[RANDOM] = random_ranking(x.shape[-2] * x.shape[-1])
    return curves(model, x, orders, target, step)


def captum_metrics(model, x: torch.Tensor, target: int, method: str, attr: np.ndarray,
                   params: dict | None = None, seed: int = 0) -> dict:
    """{"infidelity", "sensitivity", "seconds"} of `attr` (method's map of x for target), with
    INFIDELITY_SAMPLES Gaussian perturbations and SENSITIVITY_SAMPLES re-attributions (seeded)."""
    from captum.metrics import infidelity, sensitivity_max

    p = attribution.check_params(method, **(params or {}))
    param = next(model.parameters())
    x = x.detach().to(param.device, param.dtype)
    a = torch.as_tensor(np.ascontiguousarray(attr.transpose(2, 0, 1)))[None].to(x)
    gen = torch.Generator().manual_seed(seed)

    def perturb(inp):  # x - m (x - baseline): a map of score changes is dotted with m, a gradient with the step
        m = (torch.randn(inp.shape, generator=gen) * INFIDELITY_NOISE).to(inp)
        step = m * (inp - BASELINE)
        return (m if method in FROM_BASELINE else step), inp - step

    def explain(inp, target):
        inp = inp[0] if isinstance(inp, tuple) else inp
        targets = torch.as_tensor(target).reshape(-1).expand(len(inp)).tolist()  # Captum repeats it
        rows = [attribution.attribute(model, inp[i:i + 1], method, t, **p)[0] for i, t in enumerate(targets)]
        return (torch.as_tensor(np.stack(rows)).permute(0, 3, 1, 2).contiguous().to(inp),)  # as Captum passes it

    t0 = time.perf_counter()
    with _evaluating(model), torch.random.fork_rng(devices=[]):  # the caller's global generator is left as it was
        torch.manual_seed(seed)  # sensitivity's uniform perturbations (and SmoothGrad's noise) use the global one
        with torch.no_grad():
            inf = infidelity(model, perturb, x, a, target=target, n_perturb_samples=INFIDELITY_SAMPLES,
                             normalize=True)
            gen.manual_seed(seed)  # the same perturbations again: the mean squared score change
            moved = perturb(x.expand(INFIDELITY_SAMPLES, -1, -1, -1))[1]
            change = (model(x)[:, target] - model(moved)[:, target]).pow(2).mean()
        sens = sensitivity_max(explain, x, target=target, perturb_radius=SENSITIVITY_RADIUS,
                               n_perturb_samples=SENSITIVITY_SAMPLES)
    return {"infidelity": float(inf.item() / max(change.item(), 1e-30)), "sensitivity": float(sens.item()),
            "seconds": time.perf_counter() - t0}


def study(model, x: torch.Tensor, methods, signs=SIGNS, progress=None, start: int = 0) -> dict:
    """Per-image AUCs over x (N x C x H x W, normalised), each image explained for the net's own
    prediction with the methods' default parameters (SmoothGrad's noise seeded per image: image i of x
    with seed start + i, so a study of images start.. continues one of images 0..start exactly), pixels
    ranked by each of `signs`: {"signs": {sign: {"deletion": {name: [N]}, "insertion": {...}}},
    "predicted": [N]}."""
    with _evaluating(model), torch.no_grad():
        pred = torch.cat([model(x[i:i + BATCH]).argmax(1) for i in range(0, len(x), BATCH)]).tolist()
    out = {"signs": {s: {"deletion": {}, "insertion": {}} for s in signs}, "predicted": pred}
    for i, target in enumerate(pred):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(start + i)
            maps = attribute_all(model, x[i:i + 1], target, methods)[0]
        for sign in signs:
            for name, c in score(model, x[i:i + 1], target, maps, sign)["curves"].items():
                for curve in ("deletion", "insertion"):
                    out["signs"][sign][curve].setdefault(name, []).append(round(c[f"{curve}_auc"], 5))
        if progress:
            progress(i + 1, len(pred))
    return out


def interval(values, boot: int = BOOTSTRAP, seed: int = 0, level: float = 0.95) -> dict:
    """{"mean", "low", "high", "n"}: the mean and its percentile bootstrap interval (images resampled)."""
    v = np.asarray(values, np.float64)
    idx = np.random.default_rng(seed).integers(0, len(v), size=(boot, len(v)))
    means = v[idx].mean(1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return {"mean": float(v.mean()), "low": float(lo), "high": float(hi), "n": int(len(v))}


def one_image(curves: dict) -> dict:
    """{curve: {name: {"mean", "low", "high"}}} of one image's curves (score's "curves"): summary's
    layout, the interval collapsed to the AUC itself."""
    return {c: {name: dict.fromkeys(("mean", "low", "high"), v[f"{c}_auc"]) for name, v in curves.items()}
            for c in ("deletion", "insertion")}


def summary(per_image: dict, boot: int = BOOTSTRAP) -> dict:
    """{curve: {name: interval}} of one net's study (curve: "deletion" | "insertion")."""
    return {curve: {name: interval(v, boot) for name, v in per_image[curve].items()}
            for curve in ("deletion", "insertion")}


def paired(residual: dict, plain: dict, boot: int = BOOTSTRAP) -> dict:
    """{curve: {name: interval}}, image by image over the same images: for each method, the residual
    net's AUC less its own random order's, minus the same for the plain net (so a net that reacts to
    any pixel removal more strongly gains nothing); for RANDOM, the raw residual - plain difference
    (that reaction itself)."""
    out = {}
    for curve in ("deletion", "insertion"):
        r, p = ({k: np.asarray(v, np.float64) for k, v in d[curve].items()} for d in (residual, plain))
        if {len(v) for v in (*r.values(), *p.values())} != {len(r[RANDOM])}:
            raise ValueError("paired studies must cover the same images")
        out[curve] = {name: interval((r[name] - r[RANDOM]) - (p[name] - p[RANDOM]) if name != RANDOM
                                     else r[name] - p[name], boot) for name in r if name in p}
    return out


def compare(stored: dict, plain: str, residual: str, sign: str) -> tuple[dict, dict, int]:
    """(rows {net: {"kind", **summary}}, paired residual - plain, number of images) of a stored study
    ({net: study(...) + "kind", "labels"}) for the pixels ranked by `sign`, over the images both nets
    have (a study that grows, one net ahead of the other, is compared on its common first images)."""
    n = min(len(stored[plain]["labels"]), len(stored[residual]["labels"]))
    if n == 0 or stored[plain]["labels"][:n] != stored[residual]["labels"][:n]:
        raise ValueError(f"{plain} and {residual} were studied on different images")
    per = {name: {curve: {m: v[:n] for m, v in stored[name]["signs"][sign][curve].items()}
                  for curve in ("deletion", "insertion")} for name in (plain, residual)}
    rows = {name: {"kind": stored[name]["kind"], **summary(per[name])} for name in (plain, residual)}
    return rows, paired(per[residual], per[plain]), n
