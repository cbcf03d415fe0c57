"""The README and docs/: their generated sections are the data (tools/docs.py), their links resolve,
and the README stays short. Prose is never checked: only tables made from data, and links."""
import re
from pathlib import Path

import pytest

from core.settings import Settings
from tools import docs

ROOT = Path(__file__).resolve().parent.parent
PAGES = docs.pages(ROOT)
LINK = re.compile(r"\]\(([^)\s]+)\)|\bsrc=\"([^\"]+)\"")


def test_generated_sections_are_the_data():
    """Every generated table of README.md and docs/*.md is what tools/docs.py makes from the shipped
    metrics.json and stored views now; after a retrain or a recompute, run python -m tools.docs."""
    assert docs.run(ROOT, write=False) == []


def test_a_stale_section_is_found_and_rewritten(tmp_path):
    """A results table that no longer matches the checkpoints is named by file and line, and the
    rewrite makes it current; the prose around it is left as it was."""
    page = tmp_path / "README.md"
    page.write_text("Intro.\n\n<!-- results -->\n| model |\n| plain20 | 0.00 |\n<!-- /results -->\n\nOutro.\n")
    assert docs.run(tmp_path, Settings(), write=False) == ["README.md:3 results"]
    assert docs.run(tmp_path, Settings()) == ["README.md:3 results"]
    text = page.read_text()
    assert docs.run(tmp_path, Settings(), write=False) == []
    assert text.startswith("Intro.\n\n<!-- results -->\n| model |") and text.endswith("<!-- /results -->\n\nOutro.\n")
    rows = [line for line in text.splitlines() if line.startswith("| plain20 |")]
    assert len(rows) == 1 and "0.00 |" not in rows[0].split("|")[3]


def test_an_unknown_section_is_refused(tmp_path):
    (tmp_path / "README.md").write_text("<!-- tabel -->\nx\n<!-- /tabel -->\n")
    with pytest.raises(SystemExit, match="unknown generated section 'tabel'"):
        docs.run(tmp_path, Settings(), write=False)


def test_the_readme_is_short_and_shows_the_page_at_both_sizes():
    """At most 200 lines, with its two screenshots (taken by tests/test_page_layout.py's walk, copied to
    assets/): the page at the desktop's width and at the phone's, both present and linked."""
    from PIL import Image

    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200 and "<!-- results -->" in readme
    for name, width in (("screenshot-desktop.png", 1440), ("screenshot-phone.png", 390)):
        assert f'src="assets/{name}"' in readme
        with Image.open(ROOT / "assets" / name) as im:
            assert im.width == width and im.height >= 800, (name, im.size)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_link_resolves(page):
    """Each relative link of a page names a file that exists, and each #anchor a heading of it."""
    bad = []
    for a, b in LINK.findall(page.read_text()):
        link = a or b
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            bad.append(link)
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            bad.append(link)
    assert not bad, f"{page.name}: broken links {bad}"


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in PAGES if p.parent.name == "docs" and f"docs/{p.name}" not in readme] == []
