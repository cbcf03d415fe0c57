"""Degradation or overfitting: a deeper net against the next shallower one, read as the paper reads it
(He et al. 2016, Sec. 4.2: degradation is a higher TRAINING error, "not caused by overfitting").

    compare(deep, shallow) -> {"diagnosis": label, "basis": one line on why}

`deep` and `shallow` are plain dicts (core/research/study.py makes them from checkpoint records):
model; train, test (eval-pass training error and test error in %, the mean over runs; NaN if
missing); train_std, test_std (sample std over runs, NaN for one run); train_runs, test_runs (how
many runs recorded that error); n_train, n_test (images evaluated); finished; iterations; recipe;
setup.

1. Comparable runs only. Both finished, with the same recipe (as recorded in metrics.json, apart
   from IGNORED: its name and how often it logged), the same iterations, the same number of
   training images and the same setup (ranks × images per rank, BN scope). Otherwise the label is
   "not comparable" and the basis says what differs.
2. The tolerance of a difference d = deep - shallow (points) is Z = 2 standard errors of d, and at
   least FLOOR = 0.1 points:
   - both with >= MIN_RUNS = 3 runs (seeds): from the seed spread, sqrt(s_a²/n_a + s_b²/n_b) (Welch);
   - otherwise binomial, from the images evaluated: the pooled two-proportion standard error
     sqrt(p(1 - p) (1/N_a + 1/N_b)), p the pooled error rate. This covers which images were
     evaluated, not how another seed would do, and near 0% training error it is a few hundredths of
     a point; the floor keeps such differences from deciding. It is the paper's own resolution
     there: it reports ResNet-1202's training error only as "<0.1%" and calls it "similar" to
     ResNet-110's.
   A difference counts only beyond its tolerance; |d| <= tolerance is "within noise".
3. The label, training error first:
   - "degradation": training error higher beyond its tolerance, whatever the test error does
     (the paper's plain-56 against plain-20);
   - "overfitting": training error not higher beyond its tolerance (lower or within noise), test
     error higher beyond its tolerance (the paper's ResNet-1202 against ResNet-110: "similar
     training error", test 7.93% against 6.43%);
   - "better": training error not higher beyond its tolerance, test error lower beyond its tolerance;
   - "within noise": training error not higher beyond its tolerance, test difference within it.
   "—" where there is nothing to compare with, or an error is missing (the basis says which).

tests/test_verdict.py holds the paper's cases, the tolerances and each comparability check.
"""
from __future__ import annotations

import math

Z = 2.0  # standard errors: about a 95% two-sided interval
MIN_RUNS = 3  # runs per net before the seed spread, not the binomial, sets the tolerance
FLOOR = 0.1  # points: no smaller difference counts
IGNORED = ("name", "eval_every")  # recipe fields that do not change what is trained
DEGRADATION, OVERFITTING, BETTER, NOISE = "degradation", "overfitting", "better", "within noise"
NOT_COMPARABLE, NONE = "not comparable", "—"
LABELS = (DEGRADATION, OVERFITTING, BETTER, NOISE, NOT_COMPARABLE, NONE)


def binomial_tolerance(err_a: float, n_a: int, err_b: float, n_b: int) -> float:
    """Z pooled two-proportion standard errors, in points, of the difference of two error rates (%)
    measured on n_a and n_b images."""
    p = (err_a * n_a + err_b * n_b) / 100.0 / (n_a + n_b)
    return 100.0 * Z * math.sqrt(p * (1.0 - p) * (1.0 / n_a + 1.0 / n_b))


def seed_tolerance(std_a: float, runs_a: int, std_b: float, runs_b: int) -> float:
    """Z standard errors (Welch), in points, of the difference of two means over seeds."""
    return Z * math.sqrt(std_a ** 2 / runs_a + std_b ** 2 / runs_b)


def tolerance(deep: dict, shallow: dict, key: str) -> tuple[float, str]:
    """(tolerance in points, how it was set) for the difference in `key` ("train" or "test")."""
    ra, rb = deep[f"{key}_runs"], shallow[f"{key}_runs"]
    sa, sb = deep[f"{key}_std"], shallow[f"{key}_std"]
    if ra >= MIN_RUNS and rb >= MIN_RUNS and not (math.isnan(sa) or math.isnan(sb)):
        tol, how = seed_tolerance(sa, ra, sb, rb), f"seed spread, {ra} and {rb} runs"
    else:
        n_a, n_b = deep[f"n_{key}"], shallow[f"n_{key}"]
        runs = "one run each" if ra == rb == 1 else f"{ra} and {rb} runs"
        tol = binomial_tolerance(deep[key], n_a, shallow[key], n_b)
        how = f"binomial on {_n(n_a)} and {_n(n_b)} images, {runs}"
    return (tol, how) if tol >= FLOOR else (FLOOR, f"the {FLOOR} floor; {how}: ±{tol:.2f}")


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def differences(deep: dict, shallow: dict) -> list[str]:
    """What keeps two runs from being compared ([] if nothing)."""
    why = [f"`{r['model']}` is unfinished ({_n(r['iterations'])} iterations)" for r in (deep, shallow)
           if r["finished"] is not True]
    a, b = ({k: v for k, v in (r["recipe"] or {}).items() if k not in IGNORED} for r in (deep, shallow))
    if a != b:
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        why.append(f"recipes differ ({', '.join(keys)})")
    if deep["iterations"] != shallow["iterations"]:
        why.append(f"iterations differ ({_n(deep['iterations'])} vs {_n(shallow['iterations'])})")
    if deep["n_train"] != shallow["n_train"]:
        why.append(f"training sets differ ({_n(deep['n_train'])} vs {_n(shallow['n_train'])} images)")
    if deep["setup"] != shallow["setup"]:
        why.append(f"setups differ ({deep['setup']} vs {shallow['setup']})")
    return why


def compare(deep: dict, shallow: dict | None) -> dict:
    """{"diagnosis": one of LABELS, "basis": the differences and tolerances, or why there is no verdict}."""
    if shallow is None:
        return {"diagnosis": NONE, "basis": "nothing shallower shipped"}
    missing = [f"{k} error of `{r['model']}`" for k in ("train", "test") for r in (deep, shallow)
               if r[k] is None or math.isnan(r[k])]
    if missing:
        return {"diagnosis": NONE, "basis": "no " + ", no ".join(missing)}
    why = differences(deep, shallow)
    if why:
        return {"diagnosis": NOT_COMPARABLE, "basis": "; ".join(why)}
    d_train, d_test = deep["train"] - shallow["train"], deep["test"] - shallow["test"]
    (t_train, how_train), (t_test, how_test) = tolerance(deep, shallow, "train"), tolerance(deep, shallow, "test")
    if d_train > t_train:
        label = DEGRADATION
    elif d_test > t_test:
        label = OVERFITTING
    elif d_test < -t_test:
        label = BETTER
    else:
        label = NOISE
    basis = (f"train {d_train:+.2f} points (noise ±{t_train:.2f}: {how_train}), "
             f"test {d_test:+.2f} points (noise ±{t_test:.2f}: {how_test})")
    return {"diagnosis": label, "basis": basis}
