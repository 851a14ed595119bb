"""A page whose widget modules start slowly still follows its slider.

With eight visitors on two cores, plotly's 5 MB widget module took over 2 s to start in each
page; anywidget then rejects the model's `ready` promise and drops every later update to it,
so every plot in the room froze on its first drawing (issue 20). The room's pages widen that
window (explorer.compat.anywidget.wait_script). Here one page is made slow the same way,
deterministically: turning a JavaScript blob into a module URL (how anywidget loads a
widget's module) busy-waits for SLOW_MODULE_MS first, as a loaded machine's compile would.
"""

from __future__ import annotations

import pytest
from browser_util import LOAD_TIMEOUT_MS, set_readout
from conftest import TEST_MODE_ENV, checkout_env
from test_browser_pool import wait_fraction
from test_sharing import room_server

from explorer.bench.browser import READOUT, READY_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLOW_MODULE_MS = 3000  # over anywidget's 2 s

SLOW_MODULES_JS = """
(() => {
  const make = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (blob) => {
    if (blob && String(blob.type).includes("javascript")) {
      window.__cx_slow_modules = (window.__cx_slow_modules || 0) + 1;
      const until = performance.now() + SLOW_MS;
      while (performance.now() < until) { /* a slow compile on a busy machine */ }
    }
    return make(blob);
  };
})();
""".replace("SLOW_MS", str(SLOW_MODULE_MS))


@pytest.fixture(scope="module")
def room():
    with room_server("--preheat", "0", env=checkout_env(**TEST_MODE_ENV)) as url_proc:
        yield url_proc


def test_a_page_whose_widget_modules_start_slowly_still_follows_its_slider(room, _chromium):
    url, _proc = room
    context = _chromium.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.add_init_script(SLOW_MODULES_JS)
        page.goto(url, timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(READY_JS, timeout=LOAD_TIMEOUT_MS, polling=200)
        assert page.evaluate("window.__cx_slow_modules || 0") >= 1, "no module was slowed"
        for value in (0.6, 0.3):
            set_readout(page, READOUT, f"{value}")
            wait_fraction(page, value)
        assert not [e for e in errors if "anywidget" in e], errors
    finally:
        context.close()
