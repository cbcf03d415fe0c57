"""The page's own script: every figure is redrawn at its component's width whenever that width changes.

Gradio's gr.Plot draws a Plotly figure at its container's width and lets Plotly follow window
resizes, but a figure drawn while its tab is hidden (a result that arrives after the user moved to
another tab) is drawn at Plotly's default 700 px and stays so when the tab is shown, and a window
resize skips hidden figures. FIT_PLOTS (app.py runs it once when the page loads, as a JS-only load
event) watches every Plotly container with a ResizeObserver and redraws a figure whose width no
longer matches its container's. tests/test_page_layout.py holds the page to it. PIXELATED (another
JS-only load event) draws the Corrupt tab's 32x32 image at 128 px as blocks of pixels, not smoothed,
and sets tables in a smaller type on a phone-wide page.
"""

PIXELATED = """() => {
  const style = document.createElement('style');
  style.textContent = `#corrupt-seen img { image-rendering: pixelated; width: 128px; height: 128px; object-fit: contain; }
@media (max-width: 600px) {
  table td, table th, table td *, table th * { font-size: 12px !important; }
  table td, table th { padding: 3px 4px !important; }
}`;
  document.head.appendChild(style);
}"""

FIT_PLOTS = """() => {
  const fit = new ResizeObserver(entries => {
    for (const {target} of entries) {
      const drawn = target._fullLayout, width = target.clientWidth;
      if (drawn && width > 0 && window.Plotly && Math.abs(drawn.width - width) > 1) {
        window.Plotly.Plots.resize(target);
      }
    }
  });
  const watched = new WeakSet();
  const watch = () => document.querySelectorAll('[data-testid="plotly"]').forEach(el => {
    if (!watched.has(el)) { watched.add(el); fit.observe(el); }
  });
  new MutationObserver(watch).observe(document.body, {childList: true, subtree: true});
  watch();
}"""
