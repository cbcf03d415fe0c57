"""The page's layout in headless Chromium, at a desktop's size (1440 x 900) and a phone's (390 x 844).

Each walk uploads the example photo and opens every tab: the five image tabs, clicking each one's
button, then every research tab of core.ui.research_tabs.VIEWS, where opening alone must show the view's
ready data (a figure, or a filled table; or notes saying why the data is not there), and the button
is clicked only for figures that are computed live (the loss landscape's 1-D line). A full-page
screenshot of each tab goes to screenshots/ (git-ignored).

Claims held for every Plotly figure drawn: (a) its title does not overlap its component's label
(where one is shown) nor its legend, (b) the title lies whole inside the plot (nothing cut off),
(c) the plot fills at least 90% of its component's width, (d) it is at least MIN_HEIGHT px tall,
(e) no two of its titles (figure, axes, subplots) overlap; and for the page: nothing scrolls
sideways (document width <= viewport width + 1, and no element outside a scrolling box passes the
window's right edge), and no tab hides behind an overflow menu. (c) also holds for figures that arrive while their
tab is hidden, once it is shown. Skips where chromium or playwright is not installed.
"""

import pytest

from tests.support import ROOT, SHOTS, open_tab, wait_for

pytestmark = pytest.mark.e2e

PHOTO = ROOT / "assets" / "examples" / "photo_cat.jpg"
TIMEOUT = 60  # s for one tab's results


def _research():
    """(tab, its button, None, the plots it draws, True) for each research view, from the views."""
    import gradio as gr

    from core.ui.research_tabs import VIEWS
    return [(v.title, f"#{v.elem}-btn", None, sum(isinstance(make(), gr.Plot) for make in v.outputs), True)
            for v in VIEWS]


# (tab, its button, a selector that shows its result, the plots it draws, whether opening shows them)
TABS = [("Classify", "#classify-btn", "#label-residual >> text=%", 0, False),
        ("Explain", "#explain-btn", "#attr-residual img", 0, False),
        ("Corrupt", "#corrupt-btn", None, 1, False),
        ("Architecture", "#arch-btn", None, 3, False),
        ("Gradient flow", "#flow-btn", None, 2, False),
        *_research()]
MIN_HEIGHT = 240  # px: the least a figure is drawn tall
# elements (not inside a scrolling box) whose right edge passes the window's: their tag, id and width
WIDER = """() => [...document.querySelectorAll('body *')].filter(e => {
  const r = e.getBoundingClientRect();
  if (!r.width || r.right <= window.innerWidth + 1) return false;
  for (let p = e.parentElement; p; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX;
    if (o === 'auto' || o === 'scroll' || o === 'hidden') return false;
  }
  return true;
}).slice(0, 5).map(e => `${e.tagName.toLowerCase()}#${e.id} ${Math.round(e.getBoundingClientRect().width)} px`)"""
NOT_READY = "No current"  # how a research view's notes begin where its stored data is not there (yet)
FILLED_TABLE = "() => [...document.querySelectorAll('table tbody')].some(t => t.offsetParent && t.innerText.trim())"
DRAWN_HIDDEN = ("() => [...document.querySelectorAll('#flow-plot .js-plotly-plot')]"
                ".some(e => e._fullLayout && !e.offsetParent)")  # the gradient flow figure, drawn in a hidden tab
BUSY = ".eta-bar:visible, .progress-text:visible"  # Gradio's progress on an output that is computing

# every visible Plotly figure: its plot, title, legend, and its component's box and shown label
MEASURE = """() => {
  const box = e => { if (!e) return null; const r = e.getBoundingClientRect();
                     return r.width && r.height ? [r.left, r.top, r.right, r.bottom] : null; };
  return [...document.querySelectorAll('.js-plotly-plot')].filter(e => e.offsetParent !== null).map(e => {
    const block = e.closest('.block');
    const label = block && block.querySelector('[data-testid=block-label]');
    const title = e.querySelector('.gtitle');
    const texts = [...e.querySelectorAll('text[class$="title"], .annotation-text')]
      .filter(t => t.textContent.trim()).map(t => ({text: t.textContent, box: box(t)})).filter(t => t.box);
    return {id: block && block.id, plot: box(e.querySelector('.main-svg')), block: box(block), texts: texts,
            label: label && label.offsetParent !== null ? box(label) : null,
            legend: box(e.querySelector('.legend')),
            title: title && title.textContent ? box(title) : null, text: title ? title.textContent : ''};
  });
}"""


def _open_page(browser, server, width, height=900):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT * 1000)
    page.goto(server)
    page.get_by_text("ResNet lab").first.wait_for()
    page.locator("#upload input[type=file]").set_input_files(str(PHOTO))
    page.locator("#upload img").first.wait_for()
    return page


def _drawn(page) -> int:
    return sum(1 for f in page.evaluate(MEASURE) if f["plot"])


def _not_ready(page) -> bool:
    return NOT_READY in page.locator("[role=tabpanel]:visible").first.inner_text()


def _idle(page, tab):
    wait_for(lambda: page.locator(BUSY).count() == 0, TIMEOUT, f"the {tab} tab to finish computing")
    page.wait_for_timeout(300)  # a resize in flight settles


def _overlap(a, b) -> bool:
    return bool(a and b) and min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1


def _inside(a, b) -> bool:
    return a[0] >= b[0] - 1 and a[1] >= b[1] - 1 and a[2] <= b[2] + 1 and a[3] <= b[3] + 1


def _check_figures(page, tab):
    """Claims (a) to (c) for each figure drawn on the visible tab."""
    for f in page.evaluate(MEASURE):
        where = f"{tab}: {f['id'] or 'plot'} titled {f['text']!r}"
        if f["title"]:
            assert not _overlap(f["title"], f["label"]), f"{where}: the title is under the component's label"
            assert not _overlap(f["title"], f["legend"]), f"{where}: the title is under the legend"
            assert _inside(f["title"], f["plot"]), f"{where}: the title is cut off ({f['title']} vs {f['plot']})"
        width, room = f["plot"][2] - f["plot"][0], f["block"][2] - f["block"][0]
        assert width >= 0.9 * room, f"{where}: the plot is {width:.0f} px wide in a {room:.0f} px component"
        height = f["plot"][3] - f["plot"][1]
        assert height >= MIN_HEIGHT, f"{where}: the figure is {height:.0f} px tall"
        texts = f["texts"]  # the title, axis titles and subplot titles: none on top of another
        for i, a in enumerate(texts):
            for b in texts[i + 1:]:
                assert not _overlap(a["box"], b["box"]), f"{where}: {a['text']!r} overlaps {b['text']!r}"


def _no_sideways_scroll(page, tab):
    wide, view = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert wide <= view + 1, f"{tab}: the page is {wide} px wide in a {view} px window"
    over = page.evaluate(WIDER)
    assert not over, f"{tab}: wider than the {view} px window: {over}"


def _every_tab_in_view(page, tab):
    """No tab hides behind Gradio's "More tabs" menu: every tab bar wraps."""
    assert page.locator("button[aria-label='More tabs']:visible").count() == 0, f"{tab}: a tab bar overflows"


def _shot(page, name):
    page.screenshot(path=SHOTS / f"layout-{name.lower().replace(' ', '-')}.png", full_page=True)


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_every_tab_fits_the_window(browser, server, width, height):
    page = _open_page(browser, server, width, height)
    try:
        for tab, button, result, plots, on_open in TABS:
            open_tab(page, tab)
            if on_open:  # no click: the view's ready data shows, or its notes say why there is none
                shown = (lambda: _drawn(page) >= 1) if plots else (lambda: page.evaluate(FILLED_TABLE))
                wait_for(lambda: shown() or _not_ready(page), TIMEOUT, f"the {tab} tab's view, without a click")
                _idle(page, tab)
            if not on_open or (_drawn(page) < plots and not _not_ready(page)):  # live figures need the button
                page.locator(button).click()
                if result:
                    page.locator(result).first.wait_for()
                wait_for(lambda: _drawn(page) >= plots, TIMEOUT, f"{plots} plots on the {tab} tab")
                _idle(page, tab)
            _shot(page, f"{width}-{tab}")  # first: a failed claim below has its picture
            _check_figures(page, tab)
            _no_sideways_scroll(page, tab)
            _every_tab_in_view(page, tab)
    finally:
        page.close()


def test_figures_drawn_while_their_tab_is_hidden_fill_it_when_shown(browser, server):
    """Gradient flow is asked for behind an explanation (one worker: it waits), so its figures arrive
    while another tab is shown."""
    page = _open_page(browser, server, 1440)
    try:
        open_tab(page, "Explain")
        page.locator("#explain-btn").click()
        open_tab(page, "Gradient flow")
        page.locator("#flow-btn").click()
        open_tab(page, "Classify")
        wait_for(lambda: page.evaluate(DRAWN_HIDDEN), TIMEOUT, "the gradient flow figure, drawn in its hidden tab")
        open_tab(page, "Gradient flow")
        wait_for(lambda: _drawn(page) >= 2, TIMEOUT, "the gradient flow figures")
        _idle(page, "Gradient flow")
        _check_figures(page, "Gradient flow, drawn while hidden")
        _shot(page, "1440-gradient-flow-drawn-hidden")
    finally:
        page.close()
