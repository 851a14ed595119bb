"""The room in headless Chromium: the session banner after a kernel dies, and a closed tab
freeing its kernel at once (not after the idle cull)."""

from __future__ import annotations

import os
import signal
import time

import nbformat
import pytest
from browser_util import LOAD_TIMEOUT_MS
from test_sharing import kernels, room_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KERNEL_ID_JS = "JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
BANNER = ".cx-session-banner"


def widget_notebook(folder):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import ipywidgets as w\nw.Label('hello room', _dom_classes=['cx-hello'])")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "widget.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    notebook = widget_notebook(tmp_path_factory.mktemp("room-browser"))
    with room_server(str(notebook), "--preheat", "0", "--max-visitors", "4") as url_proc:
        yield url_proc


def kernel_process(proc, kernel_id: str):
    found = [p for p in kernels(proc) if kernel_id in " ".join(p.cmdline())]
    assert found, [p.cmdline() for p in kernels(proc)]
    return found[0]


def open_page(page, url: str) -> str:
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    page.locator(".cx-hello").wait_for(timeout=LOAD_TIMEOUT_MS)
    return page.evaluate(KERNEL_ID_JS)


def test_a_dead_kernel_shows_the_restart_banner(served, browser_page):
    """kill -9 of the page's kernel: a banner says the session restarted, with a reload link."""
    url, proc = served
    kernel_id = open_page(browser_page, url)
    assert browser_page.locator(BANNER).count() == 0
    os.kill(kernel_process(proc, kernel_id).pid, signal.SIGKILL)
    banner = browser_page.locator(BANNER)
    banner.wait_for(state="visible", timeout=120_000)
    assert "session" in banner.inner_text() and "Reload" in banner.inner_text()


def test_a_closed_tab_frees_its_kernel_within_60_s(served, browser_page):
    """Leaving the page sends Voila's shutdown beacon (with the _xsrf cookie we set): the
    kernel goes away at once, not after the idle cull."""
    url, proc = served
    kernel_id = open_page(browser_page, url)
    kernel = kernel_process(proc, kernel_id)
    browser_page.goto("about:blank")
    deadline = time.monotonic() + 60
    while kernel.is_running() and kernel.status() != "zombie" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not kernel.is_running() or kernel.status() == "zombie", "the kernel outlived its tab"
