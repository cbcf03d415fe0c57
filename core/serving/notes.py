"""The sentences the service layer computes from results: a served model's description, why a model
is unavailable, what a view is missing, verdicts, lesion, gradient-flow and autocorrelation notes,
the explain note, and the faithfulness study's table and reading. Pure functions from data (Served
models, result rows, flows) to Markdown; no gradio. Our numbers are only ever formatted from data.
"""
from __future__ import annotations

import math

from core.engine.evaluate import MEASURES
from core.engine.introspection import early_late_ratio
from core.research import faithfulness, lesion

LIVE_LINE = "The 1-D line is computed live, in a few seconds: press **Show landscape**."


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


def describe(served) -> str:
    """One line on a served model: its measured errors and run, or that it is untrained."""
    if not served.trained:
        return f"`{served.name}`: **untrained** (fresh He initialisation, seed 0)"
    m = served.metrics
    return (f"`{served.name}`: test error **{m['test_error_pct']:.2f}%** "
            f"({MEASURES['train_err_eval']} {_pct(m.get('train_error_pct'))}): the served run, seed "
            f"{m.get('seed', '?')} ({m.get('precision', '?')}), {m['iterations']:,} iterations on "
            f"{m.get('device', '?')}; the Results tab shows the mean over every shipped seed")


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
    """The study as a Markdown table (docs/research.md's): per method, each curve's mean AUC of both nets
    and the paired difference with its 95% interval."""
    lines = [f"| method | deletion {plain} | deletion {residual} | Δ deletion vs own random | insertion {plain} | "
             f"insertion {residual} | Δ insertion vs own random |", "|---|---|---|---|---|---|---|"]
    for m in rows[residual]["deletion"]:
        cells = [f"{rows[n][c][m]['mean']:.3f}" for c in ("deletion", "insertion") for n in (plain, residual)]
        lines.append(f"| {m} | {cells[0]} | {cells[1]} | {_iv(diff['deletion'][m])} | {cells[2]} | {cells[3]} | "
                     f"{_iv(diff['insertion'][m])} |")
    return lines
