"""JupyterLab in headless Chromium: open the tour notebook, run all cells, use the app."""

from __future__ import annotations

import re
import shutil
import sys

import pytest
from browser_util import (
    LOAD_TIMEOUT_MS,
    UPDATE_TIMEOUT_MS,
    cut_buttons,
    our_console_errors,
    set_readout,
)
from conftest import REPO, artifact_path, checkout_env, find_free_port, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "TESTTOKEN"
NOTEBOOK = "explore.ipynb"
RUN_ALL_TIMEOUT_MS = 600_000  # the tour trains and distils (quick mode) on a shared machine


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    """JupyterLab on a copy of notebooks/ in a temporary folder; yields its base URL."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copyfile(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port = find_free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={TOKEN}",
        "--allow-root",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1",
    ]
    env = checkout_env(
        EXPLORER_QUICK="1",
        JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"),  # no state left in ~/.jupyter
        JUPYTER_CONFIG_DIR=str(root / ".config"),
    )
    url = f"http://127.0.0.1:{port}/"
    with running_server(cmd, f"{url}api/status", f"lab-{port}.log", cwd=root, env=env):
        yield url


def test_explore_notebook_runs_and_app_responds(lab_url, browser_page):
    """Run All Cells from the Run menu; the app renders and a slider move updates it."""
    page = browser_page
    page.goto(f"{lab_url}lab/tree/{NOTEBOOK}?token={TOKEN}", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LOAD_TIMEOUT_MS)
    # The kernel must be up before Run All, or Lab may ask which kernel to start.
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=LOAD_TIMEOUT_MS
    )
    started = ("() => Array.from(document.querySelectorAll('.jp-InputPrompt'))"
               ".some((p) => /\\[(\\*|\\d+)\\]/.test(p.textContent))")
    for attempt in range(3):  # a busy Lab can drop the first click on a menu: check, retry
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function(started, timeout=60_000, polling=500)
            break
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")

    app = page.locator(".jp-OutputArea .cx-app")
    app.wait_for(timeout=RUN_ALL_TIMEOUT_MS)
    page.wait_for_selector(".cx-fig-main.js-plotly-plot", timeout=LOAD_TIMEOUT_MS)
    tracebacks = page.locator(".jp-RenderedText[data-mime-type*='error']")
    assert tracebacks.count() == 0, tracebacks.all_inner_texts()[:3]

    set_readout(page, ".cx-app .cx-prune-slider .widget-readout", "0.9")
    from playwright.sync_api import expect

    expect(page.locator(".cx-app .cx-sparsity-label")).to_contain_text(
        re.compile(r"90\.0%"), timeout=UPDATE_TIMEOUT_MS
    )
    # The figure answers each update with its deltas; none of them may raise in the kernel
    # (issue 15, item 2: they did, and the log console showed "The truth value of an
    # array ... is ambiguous"). Move the slider a few more times, then read the log console.
    for value in ("0.5", "0.7", "0.95"):
        set_readout(page, ".cx-app .cx-prune-slider .widget-readout", value)
        expect(page.locator(".cx-app .cx-sparsity-label")).to_contain_text(
            value.rstrip("0").split(".")[1], timeout=UPDATE_TIMEOUT_MS)
    console = page.locator(".jp-LogConsolePanel")
    for attempt in range(3):  # as for Run All: a busy Lab can drop a menu click
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^View$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Show Log Console$")).click()
        try:
            console.wait_for(timeout=30_000)
            break
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    logged = console.inner_text()
    assert not re.search(r"Error|Traceback|ambiguous", logged), logged[-2000:]
    # A 900 px wide cell: the app reflows, and no button label is cut off.
    width = app.evaluate("(el) => el.getBoundingClientRect().width")
    size = page.viewport_size
    page.set_viewport_size({"width": int(size["width"] + 900 - width), "height": 1800})
    page.wait_for_function("(w) => Math.abs(document.querySelector('.jp-OutputArea .cx-app')"
                           ".getBoundingClientRect().width - w) < 40", arg=900, timeout=30_000)
    app.scroll_into_view_if_needed()
    assert not cut_buttons(page), cut_buttons(page)
    app.screenshot(path=str(artifact_path("lab_cell_900.png")))
    assert not our_console_errors(page), our_console_errors(page)
