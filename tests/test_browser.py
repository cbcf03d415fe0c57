"""The page in a real browser: headless Debian chromium driven by Playwright. Upload a photo, go
through the four tabs, check each result renders, and save a screenshot of each step to
screenshots/ (git-ignored). Skips only where chromium or playwright is not installed; .ci/run
installs both."""
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "screenshots"
results = []  # (case, message shown), for the closing note
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(server)
        pg.get_by_text("ResNet lab").first.wait_for()
        yield pg
        browser.close()


def test_walk_through_the_four_tabs(page):
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "assets/examples/photo_cat.jpg"))
    page.locator("#upload img").first.wait_for()
    page.screenshot(path=SHOTS / "0-upload.png", full_page=True)

    page.locator("#classify-btn").click()
    page.locator("#label-residual").get_by_text("%").first.wait_for()  # confidences rendered
    assert "test error" in page.locator("#classify-info").inner_text()
    page.screenshot(path=SHOTS / "1-classify.png", full_page=True)

    page.get_by_role("tab", name="Explain").click()
    page.locator("#explain-btn").click()
    page.locator("#attr-residual img").first.wait_for()
    page.locator("#attr-plain img").first.wait_for()
    assert " ms" in page.locator("#explain-info").inner_text()
    page.screenshot(path=SHOTS / "2-explain.png", full_page=True)

    page.get_by_role("tab", name="Architecture").click()
    page.locator("#arch-btn").click()
    page.locator("#arch-plot .js-plotly-plot").first.wait_for()
    page.screenshot(path=SHOTS / "3-architecture.png", full_page=True)

    page.get_by_role("tab", name="Gradient flow").click()
    page.locator("#flow-btn").click()
    page.locator("#flow-plot .js-plotly-plot").first.wait_for()
    assert "ratio" in page.locator("#flow-info").inner_text()
    page.screenshot(path=SHOTS / "4-gradient-flow.png", full_page=True)


RESEARCH = [("Results", "#results-btn", "#results-table table"), ("Training curves", "#curves-btn", "#curves-plot .js-plotly-plot"),
            ("Layer responses", "#responses-btn", "#responses-plot .js-plotly-plot"),
            ("Lesions", "#lesion-btn", "#lesion-plot .js-plotly-plot"),
            ("Loss landscape", "#landscape-btn", "#landscape-plot .js-plotly-plot"),
            ("Shattered gradients", "#shattered-btn", "#shattered-plot .js-plotly-plot"),
            ("VGG vs ResNet", "#vgg-btn", "#vgg-plot .js-plotly-plot")]


@pytest.mark.parametrize("tab, button, result", RESEARCH, ids=[r[0] for r in RESEARCH])
def test_research_tab_renders(page, tab, button, result):
    page.get_by_role("tab", name=tab).click()
    page.locator(button).click()
    page.locator(result).first.wait_for()
    page.screenshot(path=SHOTS / f"research-{tab.lower().replace(' ', '-')}.png", full_page=True)


def test_a_bad_upload_shows_a_clear_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"definitely not an image")
    page.get_by_role("tab", name="Classify").click()
    page.locator("#upload input[type=file]").set_input_files(str(bad))
    page.locator("#classify-btn").click()
    page.get_by_text("not", exact=False).filter(has_text="image").first.wait_for()
    page.screenshot(path=SHOTS / "5-bad-upload.png", full_page=True)


from tests.test_bad_inputs import BAD  # noqa: E402  (every case the API suite sends)

BROWSER_BAD = list(BAD)


@pytest.mark.parametrize("case", BROWSER_BAD)
def test_bad_uploads_in_the_browser_show_their_message(page, tmp_path, case):
    fname, data, expect = BAD[case]
    bad = tmp_path / fname
    bad.write_bytes(data)
    for close in page.locator(".toast-close").all():  # no message left over from an earlier case
        close.click()
    page.locator(".toast-body").first.wait_for(state="detached")
    page.get_by_role("tab", name="Classify").click()
    page.locator("#upload input[type=file]").set_input_files(str(bad))
    page.locator("#classify-btn").click()
    # the browser's own file-type check (PDF) or the app's decoder message, never a generic error
    toast = page.locator(".toast-body").filter(has_text=re.compile(expect + "|Invalid file type", re.I)).first
    toast.wait_for()
    text = toast.inner_text()
    page.screenshot(path=SHOTS / f"bad-{case.replace(' ', '-')}.png")
    assert "has not enabled verbose error reporting" not in text
    results.append((case, " ".join(text.split())))
    print(f"\n| {case} | {' '.join(text.split())} |")
