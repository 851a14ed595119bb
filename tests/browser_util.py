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
