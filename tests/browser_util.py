"""Helpers for the browser tests: reading plotly traces, waiting on them, console noise."""

from __future__ import annotations

import json
import re

LOAD_TIMEOUT_MS = 180_000  # a page load runs the notebook in a new kernel; the machine is shared
UPDATE_TIMEOUT_MS = 60_000
JOB_TIMEOUT_MS = 120_000

# Each trace of a plot as {name, y}; y as plain numbers whether plotly holds it as a list,
# a typed array, or (for binary-encoded data) only decoded in _fullData.
READ_TRACES_JS = """
(gd) => {
  const full = gd._fullData || [];
  return (gd.data || []).map((t, i) => {
    let y = t.y;
    if (!(Array.isArray(y) || ArrayBuffer.isView(y))) {
      const f = full.find((ft) => ft.index === i);
      y = f ? f.y : [];
    }
    return {name: t.name === undefined ? null : String(t.name), y: Array.from(y || [], Number)};
  });
}
"""

# A JS predicate over one trace's y values: true once `test(y)` holds (for wait_for_function).
TRACE_PREDICATE_JS = f"""
([sel, name, testSrc]) => {{
  const gd = document.querySelector(sel);
  if (!gd || !gd.data) return false;
  const read = {READ_TRACES_JS.strip()};
  const trace = read(gd).find((t) => t.name === name);
  return trace ? (new Function('y', testSrc))(trace.y) : false;
}}
"""

# Console errors we do not own: the page asks for web fonts on the internet (offline here).
KNOWN_NOISE = (
    re.compile(r"net::ERR_NAME_NOT_RESOLVED"),
    re.compile(r"net::ERR_INTERNET_DISCONNECTED"),
)


def traces(page, selector: str) -> dict[str, list[float]]:
    """{trace name: y values} of the plotly figure at ``selector``."""
    rows = page.locator(selector).first.evaluate(READ_TRACES_JS)
    return {row["name"]: row["y"] for row in rows}


def wait_for_trace(
    page, selector: str, name: str, test_js: str, timeout_ms: int = UPDATE_TIMEOUT_MS
) -> None:
    """Wait until ``test_js`` (a function body over ``y``, returning a boolean) holds for the
    trace called ``name``."""
    page.wait_for_function(
        TRACE_PREDICATE_JS, arg=[selector, name, test_js], timeout=timeout_ms, polling=200
    )


def our_console_errors(page) -> list[str]:
    """Console errors and page errors, minus known offline-font noise."""
    return [e for e in page.console_errors if not any(p.search(e) for p in KNOWN_NOISE)]


def set_readout(page, selector: str, value: str) -> None:
    """Type ``value`` into a slider's editable readout (as a person would) and press Enter."""
    readout = page.locator(selector)
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)[:3000]


MAIN_FIG = ".cx-fig-main.js-plotly-plot"
STATUS = ".cx-status"
PRUNE_READOUT = ".cx-prune-slider .widget-readout"  # the sparsity slider's typed readout
KERNEL_ERRORS = ".cx-kernel-errors"

# The page's view of the main figure: per-layer (kept, numel, name) from the bars'
# customdata, the histogram's survivors and each trace's point count.
READ_MAIN_JS = """
(sel) => {
  const gd = document.querySelector(sel);
  if (!gd || !gd.data) return null;
  const by = (name) => gd.data.find((t) => t.name === name) || {};
  const arr = (v) => Array.from(v || [], (x) => (x === null ? null : Number(x)));
  return {
    bars: (by("kept").customdata || []).map((r) => [Number(r[0]), Number(r[1]), String(r[2])]),
    hist: arr(by("kept weights").y),
    steps: (by("train loss (step)").x || []).length,
    epochs: (by("val loss").x || []).length,
    curve: (by("one-shot curve").x || []).length,
    grid: (by("neurons").x || []).length,
    pruned_links: (by("pruned links").x || []).length / 3,
    hidden: Array.from(((by("neurons").marker || {}).opacity) || []).filter((o) => o === 0).length,
  };
}
"""


def main_view(page) -> dict:
    return page.evaluate(READ_MAIN_JS, MAIN_FIG)


def status_text(page) -> str:
    return page.locator(STATUS).inner_text()


def kernel_errors(page) -> str:
    """Errors the kernel logged while serving this page (test mode; hidden element)."""
    return (page.locator(KERNEL_ERRORS).text_content() or "").strip()


def assert_clean(page, where: str) -> None:
    """No error in the status line and nothing raised in the kernel."""
    status, raised = status_text(page), kernel_errors(page)
    assert "error:" not in status, f"{where}: {status}"
    assert not raised, f"{where}: kernel raised: {raised}"


def wait_for_text(page, selector: str, pattern: str, timeout_ms: int) -> bool:
    """Wait until the text of `selector` matches the regular expression `pattern`;
    False when it never did (the caller says what it saw)."""
    try:
        page.wait_for_function(
            "([sel, src]) => { const el = document.querySelector(sel);"
            " return el !== null && new RegExp(src).test(el.textContent); }",
            arg=[selector, pattern], timeout=timeout_ms, polling=100)
    except Exception:
        return False
    return True


def wait_for_status(page, pattern: str, timeout_ms: int = JOB_TIMEOUT_MS) -> str:
    """Wait until the status line matches the regular expression `pattern`."""
    if not wait_for_text(page, STATUS, pattern, timeout_ms):
        raise AssertionError(f"status never matched {pattern!r}; it says "
                             f"{status_text(page)!r}; kernel errors: "
                             f"{kernel_errors(page)!r}")
    return status_text(page)


def pruned_share(view: dict) -> float:
    kept = sum(r[0] for r in view["bars"])
    total = sum(r[1] for r in view["bars"])
    return 1 - kept / total


CUT_BUTTONS_JS = """
() => Array.from(document.querySelectorAll('.cx-app button, .cx-app .lm-TabBar-tab'))
  .filter((b) => b.offsetParent !== null && b.getBoundingClientRect().width > 0)
  .filter((b) => b.scrollWidth > b.clientWidth + 1)
  .map((b) => `${b.textContent.trim()} (${b.scrollWidth} > ${b.clientWidth})`)
"""


def cut_buttons(page) -> list[str]:
    """Visible buttons (and tabs) whose text does not fit: scrollWidth > clientWidth."""
    return page.evaluate(CUT_BUTTONS_JS)


def in_view(page, selector: str, top_px: float | None = None) -> bool:
    """Whether `selector` is inside the viewport (only its upper `top_px` if given)."""
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    if box is None:
        return False
    bottom = box["y"] + (box["height"] if top_px is None else min(top_px, box["height"]))
    return box["y"] >= 0 and bottom <= size["height"] and box["x"] >= 0 and \
        box["x"] + box["width"] <= size["width"] + 1


# Elements that scroll inside the page (the page itself should be the only scroller).
INNER_SCROLLERS_JS = """
() => Array.from(document.querySelectorAll('body *')).filter((e) => {
  const s = getComputedStyle(e);
  return e.scrollHeight > e.clientHeight + 2 && ['auto', 'scroll'].includes(s.overflowY)
    && e.clientHeight > 200; }).map((e) => e.tagName + '.' + String(e.className).slice(0, 60))
"""


def job_bar_out_of_view(page) -> list[str]:
    """Which of Train, Stop, the progress and the status line are not in the window, and
    any box that scrolls inside the page (none should: the page scrolls as a whole)."""
    names = ["train", "stop", "progress", "status"]
    out = [n for n in names if not in_view(page, f".cx-{n}")]
    return out + page.evaluate(INNER_SCROLLERS_JS)


# Control labels (and a select's chosen option) that do not fit: "Tempera...", a select
# that shows "nc" of "none". A select's text width is measured with its own font.
CUT_LABELS_JS = """
() => {
  const shown = (e) => e.offsetParent !== null && e.getBoundingClientRect().width > 0;
  const labels = Array.from(document.querySelectorAll('.cx-app .widget-label'))
    .filter(shown).filter((l) => l.scrollWidth > l.clientWidth + 1)
    .map((l) => `label ${l.textContent.trim()} (${l.scrollWidth} > ${l.clientWidth})`);
  const ctx = document.createElement('canvas').getContext('2d');
  const selects = Array.from(document.querySelectorAll('.cx-app select')).filter(shown)
    .filter((s) => s.selectedIndex >= 0).filter((s) => {
      const st = getComputedStyle(s);
      ctx.font = `${st.fontWeight} ${st.fontSize} ${st.fontFamily}`;
      const text = ctx.measureText(s.options[s.selectedIndex].text).width;
      return text + 20 > s.clientWidth; })  // about 20 px go to the arrow and padding
    .map((s) => `select ${s.options[s.selectedIndex].text} (${s.clientWidth} px)`);
  return labels.concat(selects);
}
"""


def cut_labels(page) -> list[str]:
    """Visible control labels and selects whose text does not fit."""
    return page.evaluate(CUT_LABELS_JS)
