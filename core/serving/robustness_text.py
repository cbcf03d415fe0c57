"""The sentences and tables of the corruption views: pure functions from results to Markdown; no gradio.

corrupt_note: one net's live result; levels_markdown: every corruption's published levels;
robustness_rows / robustness_table: the study's per-corruption table (the tab's and docs/research.md's;
pair_rows: compare, titles and rows of one stored pair, as both show it);
robustness_reading: the one sentence the study says, computed from core.research.robustness.compare.
Our numbers are only ever formatted from data.
"""
from __future__ import annotations

from core.engine import cifar10c, corruptions
from core.research import robustness

HEADERS = ["corruption", "family", "{plain} error %", "{residual} error %", "Δ error [95%]", "Δ degradation [95%]"]
DELTA = ("Δ: residual − plain, image by image, in points (its mean over the 5 severities); degradation: "
         "a net's error under the corruption less its own clean error.")


def corrupt_note(net: str, clean: tuple[str, float], now: tuple[str, float], p_clean_now: float, severity: int,
                 ms: float) -> str:
    """`net`: its clean-image prediction, its prediction at this severity, and its probability of
    the clean-image class now."""
    (c0, p0), (c1, p1) = clean, now
    turn = f"still says **{c0}**" if c0 == c1 else f"says **{c1}** ({p1:.2f})"
    return (f"`{net}`: clean **{c0}** ({p0:.2f}); at severity {severity} it {turn}; p({c0}) = {p_clean_now:.2f} "
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


def _iv(v: dict) -> str:
    return f"{v['diff']:+.2f} [{v['low']:+.2f}, {v['high']:+.2f}]"


def robustness_rows(cmp: dict, titles: dict, families: dict, plain: str, residual: str) -> list[list]:
    """[corruption, family, plain error, residual error, Δ error, Δ degradation] per corruption (means
    over the 5 severities), then all of them (the mCE) and the clean images."""
    s, r = cmp["summaries"], cmp["rows"]
    out = [[titles.get(c, c), families.get(c, ""), round(s[plain]["per_corruption"][c], 2),
            round(s[residual]["per_corruption"][c], 2), _iv(r[c]["error"]), _iv(r[c]["degradation"])]
           for c in s[plain]["per_corruption"]]
    out.append(["**all (mean corruption error)**", "", round(s[plain]["mce"], 2), round(s[residual]["mce"], 2),
                _iv(r["all"]["error"]), _iv(r["all"]["degradation"])])
    out.append(["clean (no corruption)", "", round(s[plain]["clean"], 2), round(s[residual]["clean"], 2),
                f"{cmp['clean_diff']:+.2f}", ""])
    return out


def pair_rows(entry: dict, plain: str, residual: str) -> tuple[dict, dict, list[list]]:
    """(core.research.robustness.compare, {corruption: title}, robustness_rows) of a stored study entry."""
    cmp = robustness.compare(entry, plain, residual, entry["n_images"])
    names = list(entry["errors"][plain])
    named = titles(names)
    return cmp, named, robustness_rows(cmp, named, families(names), plain, residual)


def robustness_table(rows: list[list], plain: str, residual: str) -> str:
    """The rows as a Markdown table (docs/research.md's)."""
    head = [h.format(plain=plain, residual=residual) for h in HEADERS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in r) + " |" for r in rows])


def robustness_reading(cmp: dict, titles: dict, plain: str, residual: str, n: int, label: str) -> str:
    """What the study says, from its numbers: the pair's mean corruption errors, the difference in
    degradation over all corruptions, and where the residual net degrades less or more."""
    s, every = cmp["summaries"], cmp["rows"]["all"]

    def names(cs):
        return ", ".join(titles.get(c, c) for c in cs) or "none"
    deg = every["degradation"]
    return (f"**Reading:** on {n:,} test images ({label}; the mean over its {len(s[plain]['per_corruption'])} "
            f"corruptions × 5 severities), `{residual}` errs {s[residual]['mce']:.1f}% against `{plain}`'s "
            f"{s[plain]['mce']:.1f}% (clean: {s[residual]['clean']:.1f}% and {s[plain]['clean']:.1f}%). Net of "
            f"each one's clean error, `{residual}` degrades {deg['diff']:+.1f} points [{deg['low']:+.1f}, "
            f"{deg['high']:+.1f}] relative to `{plain}`: less under **{names(cmp['better'])}**, more under "
            f"**{names(cmp['worse'])}** (95% intervals of the image-by-image difference excluding 0, each "
            "on its own). One trained net of each: this compares these two checkpoints, not the "
            "architectures across training runs.")
