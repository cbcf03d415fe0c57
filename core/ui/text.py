"""Every sentence the dashboard shows: tab introductions, notes built from results, the banner.

Pure functions from data (Served models, result rows, flows) to Markdown; no gradio.
The numbers in the tab introductions are the paper's (He et al. 2016, Veit et al. 2016, Li et al.
2018, Balduzzi et al. 2017); our measured numbers are only ever formatted from data.
"""
from __future__ import annotations

import math

from core.engine.evaluate import MEASURES
from core.engine.introspection import early_late_ratio
from core.research import faithfulness, lesion, shattered

INTRO = {
    "classify": "Both nets have the same layers and the same parameters; the residual one only adds each "
                "block's input to its output, y = F(x) + x. In the paper (Table 6, Fig. 6) that is the "
                "difference between ResNet-56 at 6.97% test error and a plain-56 that is worse than plain-20, "
                "on the training set too: the degradation problem. Each side shows its own measured error.",
    "explain": "Which pixels drive each net's score for the target class. Gradient methods (Saliency, "
               "SmoothGrad, Guided Backprop) are fast and noisy; Integrated Gradients and DeepLift satisfy "
               "completeness (attributions sum to the score change from the mean-colour baseline); Grad-CAM "
               "shows where a stage looks, at that stage's resolution; Occlusion measures it by masking.",
    "architecture": "Three stages of 3×3 convolutions on 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters: "
                    "each time the map halves the filters double, so every block costs about the same FLOPs. "
                    "Plain and residual twins are identical in shape, parameters and FLOPs; option-A shortcuts "
                    "are parameter-free (option B adds 1×1 projections where the shape changes).",
    "gradient_flow": "The norm of the loss gradient at each conv layer and block output, from the last layer "
                     "back to the first, on a log axis. The identity path carries gradients back unchanged "
                     "(∂(F(x)+x)/∂x = ∂F/∂x + I); a plain net must pass them through every layer. With batch "
                     "statistics, as in training, a fresh deep plain net's gradients do not vanish here: they "
                     "grow by orders of magnitude towards the input, while the ResNet's stay level. That fits "
                     "the paper (Sec. 4.1): its BN plain nets had no vanishing gradients, and it calls "
                     "degradation an optimisation difficulty. Running statistics at init do not normalise, "
                     "so there the ResNet's sums blow up instead.",
    "results": "The paper's Table 6 beside ours. A deeper net that is worse on the **training** set "
               "shows degradation (the plain nets, Fig. 6); one that fits the training set as well but is "
               "worse on test is overfitting (the paper's ResNet-1202). Errors are single-view, in %; "
               "the table has both training errors: running over augmented batches (as in Fig. 6) and "
               "an eval pass over the clean training set.",
    "curves": "The paper's Fig. 6 from our histories: train error (running, augmented, as in Fig. 6: each "
              "point the mean over the augmented training batches since the previous point, in train mode) "
              "dashed and test error solid, against "
              "iterations, plain nets left, ResNets right. The lr drops at 32k and 48k iterations are the steps.",
    "layer_responses": "The paper's Fig. 7: the standard deviation of each 3×3 layer's output (after BN, before "
                       "ReLU or addition) over the 10,000 test images. The paper found residual responses "
                       "generally smaller than plain ones: residual functions are closer to zero.",
    "lesion": "Veit et al. (2016): delete one block and a ResNet barely notices, because its paths form an "
              "ensemble of shallower nets; a plain net has one path, and breaks.",
    "landscape": "Li et al. (2018): the loss along random filter-normalised directions around the trained "
                 "weights. Skip connections keep the surface smooth and convex-looking; without them deep nets "
                 "turn chaotic. The 1-D line is computed live on 32 test images; the 2-D grid was precomputed "
                 "on 500 training images.",
    "shattered": "Balduzzi et al. (2017), **as a proxy**: along a straight line between two images, the derivative "
                 "of a class logit, and its autocorrelation. In deep plain nets it decorrelates towards white "
                 "noise; residual nets keep it correlated. Balduzzi et al. measured something simpler: dy/dx of "
                 "fully connected nets with one scalar input, at initialisation, with its spectrum. Here the "
                 "nets are the paper's CIFAR convnets, the path runs through image space, trained nets are shown "
                 f"too, and nets at init take their BN statistics from {shattered.CALIBRATION_IMAGES} real CIFAR "
                 "test images. The contrast is theirs; the numbers are not comparable with theirs.",
    "faithfulness_study": "Which explanation to trust, plain vs residual. Each method's map of each test image "
                          "(for the net's own prediction) is scored by deletion and insertion (Petsiuk et al. "
                          "2018): remove, or reveal, the pixels in the map's order, most important first, and "
                          "watch the class probability. A faithful map makes it fall fast (low deletion AUC) and "
                          "rise fast (high insertion AUC). Bars are means with 95% bootstrap intervals. The random "
                          "order is each net's reference: the Δ column compares the nets with each method's AUC "
                          "taken against its own net's random order.",
    "corrupt": "Which net breaks first? Corrupt the upload as CIFAR-10-C does (Hendrycks & Dietterich 2019: "
               "noise, blur, weather and digital corruptions at five severities, with their published "
               "levels) and watch both predictions. The chart follows each net's confidence in its "
               "clean-image class from the clean image (0) to severity 5. Noise and the elastic warp are "
               "random: the same seed gives the same image.",
    "robustness": "CIFAR-10-C-style (generated here): the test images corrupted by this lab's implementation of "
                  "CIFAR-10-C's corruptions, at the published levels; not the official set, whose files are "
                  "used instead (the Source control) when they are in data/CIFAR-10-C. Errors are top-1, in %, "
                  "per corruption and severity; the mean corruption error (mCE) is their plain mean, "
                  "unnormalised.",
    "vgg_vs_resnet": "Why ResNet is cheaper than VGG, and why 3×3: the paper's 34-layer nets need 3.6 G "
                     "multiply-adds, 18% of VGG-19's 19.6 G. Two stacked 3×3 layers see 5×5 with 18C² "
                     "parameters against 25C² for one 5×5 layer, and add a nonlinearity.",
}

LIVE_LINE = "The 1-D line is computed live, in a few seconds: press **Show landscape**."

BLOCK_DIAGRAM = """
```
 x ──► conv3×3 ─► BN ─► ReLU ─► conv3×3 ─► BN ──► (+) ─► ReLU ─► y = ReLU(F(x) + x)
 │                                                 ▲
 └───────────── identity shortcut (ResNet only) ───┘     plain net: y = ReLU(F(x))
```"""

LESION_DEFINITION = """**Deleting block b** (Veit et al. 2016), applied to a copy of the net at test time, no retraining:

* **Residual block** y = ReLU(F(x) + shortcut(x)): drop the residual branch F and keep the shortcut,
  **y = ReLU(shortcut(x))**. With an identity shortcut this is **y = x** (x ≥ 0, it comes out of a
  ReLU); at a stage change with option A it is the stride-2 subsampled, zero-padded x; with
  option B it is y = ReLU(BN(conv1×1(x))).
* **Plain block** (no shortcut, nothing left once F is gone): replaced by the identity when the
  shape is unchanged, and by the option-A map (stride-2 subsampling + zero-padded channels) where it
  changes, so a plain net can be lesioned at all. This is a parameter-free stand-in, not a path the
  plain net ever learned.

**Identity and downsampling blocks are shown apart.** Veit et al.'s reading (a ResNet barely
notices, because only the paths through that block are lost) is about identity blocks, where
deleting a block leaves y = x. The first block of stages 2 and 3 (`layer2.0`, `layer3.0`) changes
the shape: with option A, deleting it leaves stride-2 subsampling with zero-padded channels, so half
the channels become zero. Those blocks are drawn as open diamonds, left out of the range below, and
never drawn by the random lesions, which delete k random *identity* blocks.
"""

VERDICTS = ("**Degradation vs overfitting**, as the paper reads it. Each net is compared with the next "
            "shallower shipped net of the same kind, on the **train error (eval pass, clean)** first. "
            "*Degradation* (the paper's problem): the deeper net's training error is higher, whatever its "
            "test error does: it fits the training set worse, an optimisation difficulty, not overfitting. "
            "*Overfitting*: training error not higher, test error higher (the paper's ResNet-1202 against "
            "ResNet-110). *Better*: training error not higher, test error lower. A difference counts only "
            "beyond its noise: two standard errors, from the seed spread when both nets have 3 or more "
            "runs, else from the binomial on the images evaluated; inside it the verdict is *within noise*. "
            "Only finished runs with the same recipe, iterations, data and setup are compared; otherwise "
            "*not comparable*, and why. Both training errors are in the table: the "
            f"{MEASURES['train_err_running']} is Fig. 6's dashed line, the {MEASURES['train_err_eval']} is "
            "a separate pass over the 50,000 un-augmented images in eval mode.")


def banner(shipped: list[str]) -> str:
    if not shipped:
        return ("## ⚠ No trained checkpoints found\nEvery model below runs on **freshly initialised "
                "weights**: predictions and attributions are meaningless until checkpoints are added "
                "to `checkpoints/`.")
    return "Trained checkpoints: " + ", ".join(f"`{n}`" for n in shipped)


def describe(served) -> str:
    """One line on a served model: its measured errors and run, or that it is untrained."""
    if not served.trained:
        return f"`{served.name}`: **untrained** (fresh He initialisation, seed 0)"
    m = served.metrics
    return (f"`{served.name}`: test error **{m['test_error_pct']:.2f}%** "
            f"({MEASURES['train_err_eval']} {_pct(m.get('train_error_pct'))}), "
            f"{m['iterations']:,} iterations on {m.get('device', '?')}")


def unavailable(name: str, why: str) -> str:
    return f"`{name}`: unavailable. {why}"


def missing(wanted: list[str], shipped: list[str], shown: list[str]) -> str:
    """Which of the wanted models this view lacks because they are not shipped yet ("" if none)."""
    miss = [n for n in wanted if n not in shipped and n not in shown]
    return f"Not shipped yet (missing from this view): {', '.join(miss)}." if miss else ""


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}%"


def diagnosis(rows: list[dict]) -> str:
    """The verdict rule, then each results row's verdict against its reference, with its numbers and
    its basis (the differences and their noise, or why there is no verdict)."""
    if not rows:
        return "\n".join([VERDICTS, "", "_No checkpoints shipped yet._"])
    lines = [VERDICTS, ""]
    for r in rows:
        ref = r.get("reference")  # a name, or None / NaN (pandas) when nothing shallower is shipped
        if not isinstance(ref, str):
            lines.append(f"- `{r['model']}` (nothing shallower shipped)")
            continue
        lines.append(f"- `{r['model']}` vs `{ref}`: **{r['diagnosis']}**. {r['basis']}. "
                     f"`{r['model']}`: {MEASURES['train_err_eval']} {_pct(r['train_err_eval'])}, "
                     f"test error {_pct(r['test_err'])}")
    return "\n".join(lines)


def lesion_notes(data: dict) -> list[str]:
    """Per model of the stored lesion view: its intact error, the range of single identity-block
    deletions with the block at each end, and each downsampling block's error, apart."""
    notes = []
    for name, res in data.items():
        s = lesion.summary(res)
        lo, hi = s["identity"]["min"], s["identity"]["max"]
        ident = (f"one identity block deleted: {lo[1]:.2f}% (`{lo[0]}`) to {hi[1]:.2f}% (`{hi[0]}`)" if lo
                 else "no identity blocks")
        down = ", ".join(f"`{b}` {e:.2f}%" for b, e in s["downsampling"]) or "none"
        notes.append(f"`{name}` (intact {s['baseline']:.2f}%): {ident}; downsampling blocks, apart: {down}")
    return notes


def flow_notes(flows: dict[str, dict]) -> list[str]:
    """Per model its loss, first-conv gradient and first/last ratio (introspection.early_late_ratio);
    for a pair, the plain / residual ratio of the first-conv gradients (flows: plain, then residual)."""
    notes = []
    for label, flow in flows.items():
        first = flow["conv"][-1]
        notes.append(f"`{label}`: loss {flow['loss']:.3g}; gradient norm at `{first[0]}` (first conv) "
                     f"{first[1]:.3g}; first/last conv ratio {early_late_ratio(flow):.3g}")
    if len(flows) == 2:
        a, b = (f["conv"][-1][1] for f in flows.values())
        notes.append(f"First-conv gradient, plain / residual: **{a / b:.3g}**")
    return notes


def autocorr_notes(lines: dict[str, dict]) -> list[str]:
    return [f"`{k}`: autocorrelation at lag 1 **{v['autocorr'][1]:.2f}**, lag 5 {v['autocorr'][5]:.2f}"
            for k, v in lines.items()]


FAITHFULNESS_DEFINITION = (
    "**Which map to trust?** Deletion: remove the image's pixels in the map's order, most important first, "
    f"{faithfulness.STEP} at a time, each set to the mean colour (the baseline IG, DeepLift and Occlusion use), "
    "and watch the class probability: a faithful map makes it fall fast, a low area under the curve (AUC). "
    "Insertion: reveal them in the same order on the mean-colour image: a faithful map makes it rise fast, "
    "a high AUC. The pixels are ranked by the map as shown (the Sign setting). The random order is the "
    "reference. The AUCs also depend on how confident each net is: compare each net with its own random "
    "order. Captum's infidelity (relative: 0 exact, 1 explains nothing) and sensitivity (how much the map "
    f"moves under tiny input noise) are optional: {faithfulness.INFIDELITY_SAMPLES} perturbed forwards and "
    f"{faithfulness.SENSITIVITY_SAMPLES} more attributions per method and net.")
FAITH_HEADERS = ["method", "model", "deletion AUC (lower is better)", "insertion AUC (higher is better)",
                 "infidelity (lower is better)", "sensitivity (lower is better)", "attribution ms"]


def explain_note(name: str, method: str, cls: str, p: float, seconds: float, curves: dict, curve_seconds: float) -> str:
    """One net's Explain line: the map's class, time, and its deletion and insertion AUCs beside the random order's."""
    c, r = curves[method], curves[faithfulness.RANDOM]
    return (f"`{name}`: {method} for **{cls}** (p = {p:.2f}) in {1000 * seconds:.0f} ms; "
            f"deletion AUC {c['deletion_auc']:.3f} (random order {r['deletion_auc']:.3f}), "
            f"insertion AUC {c['insertion_auc']:.3f} (random order {r['insertion_auc']:.3f}) in {1000 * curve_seconds:.0f} ms")


def _iv(v: dict) -> str:
    return f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"


DIFF_HEADER = "Δ vs own random order: {residual} − {plain}"


def faithfulness_table(plain: str, residual: str, rows: dict, diff: dict) -> list[list]:
    """[method, curve, plain, residual, paired difference (core.research.faithfulness.paired)] per method
    and curve; each cell 'mean [95% interval]'."""
    return [[m, curve, _iv(rows[plain][curve][m]), _iv(rows[residual][curve][m]), _iv(diff[curve][m])]
            for m in rows[residual]["deletion"] for curve in ("deletion", "insertion")]


def faithfulness_reading(plain: str, residual: str, rows: dict, diff: dict, n: int) -> str:
    """What the study says, from its numbers, in one sentence: for how many methods the residual net's
    maps are more (or less) faithful than the plain net's beyond the 95% interval of the paired
    difference (each net against its own random order), by each curve; then a caveat where most
    methods lose to the random order by deletion."""
    methods = [m for m in diff["deletion"] if m != faithfulness.RANDOM]
    better = {"deletion": lambda v: v["high"] < 0, "insertion": lambda v: v["low"] > 0}
    worse = {"deletion": lambda v: v["low"] > 0, "insertion": lambda v: v["high"] < 0}
    parts = [f"more faithful for {sum(better[c](diff[c][m]) for m in methods)} and less for "
             f"{sum(worse[c](diff[c][m]) for m in methods)} of {len(methods)} methods by {c}"
             for c in ("deletion", "insertion")]
    losing = [net for net in (plain, residual) if sum(rows[net]["deletion"][m]["mean"] <
                                                      rows[net]["deletion"][faithfulness.RANDOM]["mean"]
                                                      for m in methods) < len(methods) / 2]
    caveat = (f" By deletion most methods lose to the random order ({', '.join(f'`{net}`' for net in losing)}): "
              "scattered mean-colour pixels probably take the image off the training distribution faster than "
              "a map's order does (deletion without retraining; Hooker et al. 2019), so read deletion with care."
              if losing else "")
    return (f"**Reading:** on {n} test images, each net against its own random order, `{residual}`'s maps are "
            f"{parts[0]} and {parts[1]} than `{plain}`'s (95% bootstrap interval of the paired difference "
            f"excluding zero).{caveat}")


def faithfulness_markdown(plain: str, residual: str, rows: dict, diff: dict) -> list[str]:
    """The study as a Markdown table (the README's): per method, each curve's mean AUC of both nets
    and the paired difference with its 95% interval."""
    lines = [f"| method | deletion {plain} | deletion {residual} | Δ deletion vs own random | insertion {plain} | "
             f"insertion {residual} | Δ insertion vs own random |", "|---|---|---|---|---|---|---|"]
    for m in rows[residual]["deletion"]:
        cells = [f"{rows[n][c][m]['mean']:.3f}" for c in ("deletion", "insertion") for n in (plain, residual)]
        lines.append(f"| {m} | {cells[0]} | {cells[1]} | {_iv(diff['deletion'][m])} | {cells[2]} | {cells[3]} | "
                     f"{_iv(diff['insertion'][m])} |")
    return lines
