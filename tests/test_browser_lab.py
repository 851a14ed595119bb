"""JupyterLab in headless Chromium: open the tour notebook, run all cells, use the app."""

from __future__ import annotations

import re
import shutil
import sys

import pytest
from browser_util import LOAD_TIMEOUT_MS, UPDATE_TIMEOUT_MS, our_console_errors, set_readout
from conftest import REPO, checkout_env, find_free_port, running_server

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
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

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
    app.scroll_into_view_if_needed()
    assert not our_console_errors(page), our_console_errors(page)
