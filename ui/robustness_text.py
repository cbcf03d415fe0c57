"""The sentences and tables of the corruption views: pure functions from results to Markdown; no gradio.

corrupt_note: one net's live result; levels_markdown: every corruption's published levels;
robustness_rows / robustness_table: the study's per-corruption table (the tab's and the README's);
robustness_reading: the one sentence the study says, computed from research.robustness.compare.
Our numbers are only ever formatted from data.
"""
from __future__ import annotations

from engine import cifar10c, corruptions

HEADERS = ["corruption", "family", "{plain} error %", "{residual} error %", "residual − plain (points)"]


def corrupt_note(net: str, clean: tuple[str, float], now: tuple[str, float], p_clean_now: float, severity: int,
                 ms: float) -> str:
    """`net`: its clean-image prediction, its prediction at this severity, and its probability of
    the clean-image class now."""
    (c0, p0), (c1, p1) = clean, now
    turn = "keeps" if c0 == c1 else f"now says **{c1}** ({p1:.2f}), drops"
    return (f"`{net}`: clean **{c0}** ({p0:.2f}); at severity {severity} it {turn} {c0} to {p_clean_now:.2f} "
            f"({ms:.0f} ms for 6 images)")


def titles(names) -> dict[str, str]:
    """{name: title}: this lab's title of a corruption it generates, else the file name in words."""
    return {n: corruptions.CORRUPTIONS[n].title if n in corruptions.CORRUPTIONS else n.replace("_", " ").capitalize()
            for n in names}


def families(names) -> dict[str, str]:
    return {n: cifar10c.FAMILY.get(n, "") for n in names}


def level_text(name: str, severity: int) -> str:
    c = corruptions.CORRUPTIONS[name]
    return f"**{c.title}**, severity {severity}: {c.parameter} = {corruptions.level(name, severity)}"


def levels_markdown() -> str:
    """Every corruption: its parameter and five levels (CIFAR-10-C's), and how ours differs."""
    lines = ["| corruption | parameter | severities 1–5 | differs from the published code |", "|---|---|---|---|"]
    for r in corruptions.table():
        lines.append(f"| {r['title']} | {r['parameter']} | {', '.join(map(str, r['levels']))} | {r['differs'] or '—'} |")
    return "\n".join(lines) + f"\n\nLevels: {corruptions.SOURCE}."


def robustness_rows(cmp: dict, titles: dict, families: dict, plain: str, residual: str) -> list[list]:
    """[corruption, family, plain, residual, residual - plain] per corruption (means over the 5
    severities), then the mean over all of them (mCE) and the clean error."""
    s = cmp["summaries"]
    rows = [[titles.get(c, c), families.get(c, ""), round(s[plain]["per_corruption"][c], 2),
             round(s[residual]["per_corruption"][c], 2), round(d, 2)] for c, d in cmp["diff"].items()]
    for label, key in (("**mean corruption error**", "mce"), ("clean (no corruption)", "clean")):
        rows.append([label, "", round(s[plain][key], 2), round(s[residual][key], 2),
                     round(s[residual][key] - s[plain][key], 2)])
    return rows


def robustness_table(rows: list[list], plain: str, residual: str) -> str:
    """The rows as a Markdown table (the README's)."""
    head = [h.format(plain=plain, residual=residual) for h in HEADERS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(f"{v:+.2f}" if i == 4 else str(v) for i, v in enumerate(r)) + " |" for r in rows]
    return "\n".join(lines)


def robustness_reading(cmp: dict, titles: dict, plain: str, residual: str, n: int, label: str) -> str:
    """One sentence: the pair's mean corruption errors and gaps to clean, and on which corruptions the
    residual net errs less or more than the plain one by more than the tolerance."""
    s, tol = cmp["summaries"], cmp["tolerance"]

    def names(cs):
        return ", ".join(titles.get(c, c) for c in cs) or "none"
    return (f"On {n} test images ({label}), `{residual}` has a mean corruption error of {s[residual]['mce']:.1f}% "
            f"({s[residual]['gap']:+.1f} points over its clean {s[residual]['clean']:.1f}%) against `{plain}`'s "
            f"{s[plain]['mce']:.1f}% ({s[plain]['gap']:+.1f} over {s[plain]['clean']:.1f}%); it errs less under "
            f"**{names(cmp['better'])}** and more under **{names(cmp['worse'])}** (by more than ±{tol:.1f} points, "
            "twice the standard error of a difference).")
