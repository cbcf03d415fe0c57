"""The page in a real browser: headless Debian chromium driven by Playwright. Upload a photo, go
through the five tabs and the research tabs, check what each result shows (the models' lines, the
plots' traces), show every hostile upload of tests/support.BAD with its own whole message (the app's,
or the page's own file-type refusal for files that are not image/*), and save a screenshot of each
step to screenshots/ (git-ignored). Skips only where chromium or playwright is not installed; .ci/run
installs both."""
import re
from pathlib import Path

import pytest

from core.engine import models
from core.serving.zoo import Zoo
from core.settings import Settings
from tests.support import BAD, ROOT, SHOTS, open_tab, wait_for

pytestmark = pytest.mark.e2e

results = []  # (case, message shown), for the closing note
PLAIN, RESIDUAL = models.pair(Zoo(Settings()).default_depth())  # the page's default pair


@pytest.fixture(scope="module")
def page(browser, server):
    pg = browser.new_page(viewport={"width": 1280, "height": 1000})
    pg.set_default_timeout(60_000)
    pg.goto(server)
    pg.get_by_text("ResNet lab").first.wait_for()
    yield pg
    pg.close()


def _text(locator) -> str:
    return " ".join(locator.inner_text().split())


def _traces(page, selector) -> list:
    """The names of the traces of the first Plotly plot under `selector`, once it has rendered."""
    plot = page.locator(f"{selector} .js-plotly-plot").first
    plot.wait_for()
    return plot.evaluate("el => el.data.map(d => d.name === undefined ? null : d.name)")


def test_walk_through_the_five_tabs(page):
    """The shipped pair at the page's default depth (56 once shipped, else the deepest shipped pair),
    on the example photo of a cat."""
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "assets/examples/photo_cat.jpg"))
    page.locator("#upload img").first.wait_for()
    page.screenshot(path=SHOTS / "0-upload.png", full_page=True)

    page.locator("#classify-btn").click()
    page.locator("#label-residual").get_by_text("%").first.wait_for()  # confidences rendered
    assert re.match(r"Residual cat cat \d+%", _text(page.locator("#label-residual")))
    info = _text(page.locator("#classify-info"))
    for name in (PLAIN, RESIDUAL):
        assert re.search(rf"{name}: test error \d+\.\d\d% \(train error \(eval pass, clean\) \d+\.\d\d%\): "
                         r"the served run, seed 0", info), info
    page.screenshot(path=SHOTS / "1-classify.png", full_page=True)

    open_tab(page, "Explain")
    page.locator("#explain-btn").click()
    page.locator("#attr-residual img").first.wait_for()
    page.locator("#attr-plain img").first.wait_for()
    info = page.locator("#explain-info")
    info.get_by_text(RESIDUAL).wait_for()
    lines = [" ".join(p.split()) for p in info.inner_text().split("\n") if p.strip()]
    assert len(lines) == 2, lines
    for name, line in zip((PLAIN, RESIDUAL), lines):  # the default method: Integrated Gradients
        assert re.fullmatch(rf"{name}: Integrated Gradients for \w+ \(p = [01]\.\d\d\) in \d+ ms; deletion AUC "
                            r"0\.\d+ \(random order 0\.\d+\), insertion AUC 0\.\d+ \(random order 0\.\d+\) in \d+ ms", line), line
    for side in ("plain", "residual"):  # the map on the photo itself, aspect-true (the cat photo is landscape)
        size = page.locator(f"#photo-{side} img").first.evaluate("el => [el.naturalWidth, el.naturalHeight]")
        assert size[0] > size[1] > 32, size
    assert len(_traces(page, "#faith-curves")) == 8
    page.screenshot(path=SHOTS / "2-explain.png", full_page=True)
    page.locator("#faith-btn").click()
    assert _traces(page, "#faith-methods") == [PLAIN, PLAIN, RESIDUAL, RESIDUAL]
    page.locator("#faith-info").get_by_text(RESIDUAL).wait_for()
    page.screenshot(path=SHOTS / "2-explain-faithfulness.png", full_page=True)

    open_tab(page, "Corrupt")
    page.locator("#corrupt-btn").click()
    page.locator("#corrupt-info").get_by_text(RESIDUAL).wait_for()
    assert page.locator("#corrupt-seen img").first.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [32, 32]
    assert page.locator("#corrupt-seen img").first.evaluate(  # drawn 4x, as blocks of pixels
        "el => [getComputedStyle(el).imageRendering, getComputedStyle(el).objectFit, el.clientWidth]"
    ) == ["pixelated", "contain", 128]
    assert re.match(r"Residual \w+ \w+ \d+%", _text(page.locator("#corrupt-residual")))
    assert _traces(page, "#corrupt-plot") == [f"{PLAIN}: p(cat)", f"{RESIDUAL}: p(cat)"]
    info = _text(page.locator("#corrupt-info"))
    assert info.startswith("Gaussian noise, severity 3: σ of the added noise (0–1 scale) = 0.08; seed 0"), info
    page.screenshot(path=SHOTS / "2-corrupt.png", full_page=True)

    open_tab(page, "Architecture")
    page.locator("#arch-btn").click()
    names = _traces(page, "#arch-plot")
    assert len(names) == 8 and {n.split()[0] for n in names} == {PLAIN, RESIDUAL}, names
    page.screenshot(path=SHOTS / "3-architecture.png", full_page=True)

    open_tab(page, "Gradient flow")
    page.locator("#flow-btn").click()
    assert _traces(page, "#flow-plot") == ["plain110 (init)", "resnet110 (init)"]  # the tab's defaults
    page.locator("#flow-info").get_by_text("First-conv gradient").wait_for()
    info = _text(page.locator("#flow-info"))
    for name in ("plain110", "resnet110"):
        assert re.search(rf"{name}( \(init\))?: loss [-+0-9.e]+; gradient norm at conv1 \(first conv\) [-+0-9.e]+",
                         info), info
    assert re.search(r"First-conv gradient, plain / residual: [-+0-9.e]+$", info), info
    page.screenshot(path=SHOTS / "4-gradient-flow.png", full_page=True)


RESEARCH = [("Results", "#results-btn", "#results-table table"),
            ("Training curves", "#curves-btn", "#curves-plot .js-plotly-plot"),
            ("Layer responses", "#responses-btn", "#responses-plot .js-plotly-plot"),
            ("Lesions", "#lesion-btn", "#lesion-plot .js-plotly-plot"),
            ("Loss landscape", "#landscape-btn", "#landscape-plot .js-plotly-plot"),
            ("Shattered gradients", "#shattered-btn", "#shattered-plot .js-plotly-plot"),
            ("Attribution faithfulness", "#study-btn", "#study-plot .js-plotly-plot"),
            ("Corruptions", "#robustness-btn", "#robustness-plot .js-plotly-plot"),
            ("VGG vs ResNet", "#vgg-btn", "#vgg-plot .js-plotly-plot")]


@pytest.mark.parametrize("tab, button, result", RESEARCH, ids=[r[0] for r in RESEARCH])
def test_research_tab_renders(page, tab, button, result):
    open_tab(page, tab)
    page.locator(button).click()
    page.locator(result).first.wait_for()
    if result.endswith("table"):  # a row of the shipped checkpoints
        table = page.locator(result.split()[0])
        wait_for(lambda: re.search(r"\bresnet20\b", table.inner_text()), 60, "a resnet20 row in the results table")
    else:
        assert page.locator(result).first.evaluate("el => el.data.length") >= 1
    page.screenshot(path=SHOTS / f"research-{tab.lower().replace(' ', '-')}.png", full_page=True)


# Files that are not image/* by their name: the page refuses them itself, before any upload.
REFUSED_BY_THE_PAGE = {"XML", "PDF", "ZIP", "HTML"}


def _expected(case) -> str:
    fname, _, expect = BAD[case]
    return re.escape(f"Invalid file type: {fname}. Only image/* allowed.") if case in REFUSED_BY_THE_PAGE else expect


def _upload_and_read_the_message(page, path: Path, click: bool) -> str:
    """Upload `path` (then press Classify if `click`) and return the one error toast's text."""
    for close in page.locator(".toast-close").all():  # no message left over from an earlier case
        close.click()
    page.locator(".toast-body").first.wait_for(state="detached")
    open_tab(page, "Classify")
    page.locator("#upload input[type=file]").set_input_files(str(path))
    if click:
        page.locator("#classify-btn").click()
    toast = page.locator(".toast-body").first
    toast.wait_for()
    return " ".join(toast.inner_text().split())


def test_a_bad_upload_shows_a_clear_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"definitely not an image")
    text = _upload_and_read_the_message(page, bad, click=True)
    assert re.fullmatch("Error × " + BAD["plain text"][2], text), text
    page.screenshot(path=SHOTS / "5-bad-upload.png", full_page=True)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_uploads_in_the_browser_show_their_message(page, tmp_path, case):
    """The toast holds exactly this case's message: the app's (core.serving.images), or for a file that is
    not image/* by name the page's own refusal, shown on the upload itself (nothing is sent)."""
    fname, data, _ = BAD[case]
    bad = tmp_path / fname
    bad.write_bytes(data)
    text = _upload_and_read_the_message(page, bad, click=case not in REFUSED_BY_THE_PAGE)
    page.screenshot(path=SHOTS / f"bad-{case.replace(' ', '-')}.png")
    assert re.fullmatch("Error × " + _expected(case), text), (case, text)
    results.append((case, text))
    print(f"\n| {case} | {text} |")
