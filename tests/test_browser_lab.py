"""JupyterLab in headless Chromium: open the tour notebook, run all cells, use the app."""

from __future__ import annotations

import json
import re
import shutil
import sys
import urllib.request

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
        JUPYTERLAB_SETTINGS_DIR=str(quiet_settings(root / ".settings")),
    )
    url = f"http://127.0.0.1:{port}/"
    with running_server(cmd, f"{url}api/status", f"lab-{port}.log", cwd=root, env=env):
        start_notebook_kernel(url)
        yield url


def quiet_settings(folder):
    """User settings with no news toast (it asks "Would you like to get notified about
    official Jupyter news?" in a corner of every fresh Lab)."""
    path = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return folder


def api(url: str, method: str = "GET", body: dict | None = None):
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=LOAD_TIMEOUT_MS / 1000) as response:
        return json.loads(response.read() or b"null")


def start_notebook_kernel(url: str) -> None:
    """Start the notebook's session (and kernel) before the page opens.

    A notebook Lab opens without a running session picks a kernel itself
    (SessionContext.startKernel): when the kernel specs have not arrived yet or the
    session request fails, as on a loaded machine, it opens the modal "Select Kernel"
    dialog instead, which then intercepts every click. Lab's execution indicator reads
    "idle" before any kernel exists, so waiting for it does not rule that out. With a
    session already running for this path, Lab connects to it and asks nothing. (The
    server answers once the kernel process has started.)
    """
    session = api(f"{url}api/sessions", "POST", {
        "path": NOTEBOOK, "name": NOTEBOOK, "type": "notebook", "kernel": {"name": "python3"}})
    assert session["kernel"]["name"] == "python3", session


def test_explore_notebook_runs_and_app_responds(lab_url, browser_page):
    """Run All Cells from the Run menu; the app renders and a slider move updates it."""
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{lab_url}lab/tree/{NOTEBOOK}?token={TOKEN}", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LOAD_TIMEOUT_MS)
    # The kernel runs already (lab_url starts it): Lab connects to it, no kernel dialog;
    # the toolbar names it once connected.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=LOAD_TIMEOUT_MS)
    expect(page.locator(".jp-Toolbar-kernelName").first).to_contain_text(
        "Python 3", timeout=LOAD_TIMEOUT_MS)
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
    # The notebook panel scrolls inside Lab's window, above the log console opened here:
    # a panel shorter than the app cut the shot there (seen in lab-900.png), so the
    # window grows until the panel holds the whole app.
    app_height = "(el) => el.getBoundingClientRect().height"
    panel_height = ("(el) => el.closest('.jp-WindowedPanel-outer')"
                    ".getBoundingClientRect().height")
    for _ in range(3):
        short = app.evaluate(app_height) + 40 - app.evaluate(panel_height)
        if short <= 0:
            break
        size = page.viewport_size
        page.set_viewport_size({"width": size["width"], "height": int(size["height"]
                                                                      + 2 * short)})
    app.scroll_into_view_if_needed()
    app.screenshot(path=str(artifact_path("lab-900.png")))  # issue 28: looked at
    assert not our_console_errors(page), our_console_errors(page)
