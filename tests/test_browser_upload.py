"""Load session from the browser: a real 12 MiB saved session (mnist-5k / lenet300 after
Train jobs, as the issue's file was) goes through the dashboard's upload in headless
Chromium and replaces the session; before the chunked upload the websocket dropped any
upload above about 10 MiB and nothing happened."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from browser_util import LOAD_TIMEOUT_MS, our_console_errors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATUS = ".cx-status"
FILE_INPUT = ".cx-load-session input[type=file]"
MAIN_FIG = ".cx-fig-main.js-plotly-plot"


@pytest.fixture(scope="module")
def big_session_file(tmp_path_factory) -> Path:
    import torch

    from explorer import Session

    torch.manual_seed(0)
    s = Session("mnist-5k", "lenet300", device="cpu", pretrained=False)
    path = tmp_path_factory.mktemp("upload") / "mnist-lenet300.pt"
    # Each Train job adds an undo step and a rewind point (~1 MiB each, the file writes
    # equal tensors once): train until the file is above one websocket message.
    for _ in range(20):
        s.train(epochs=1)
        s.save(path)
        if path.stat().st_size > 12 * 2**20:
            break
    return path


def test_a_12_mib_session_loads_from_the_browser(dashboard_url, browser_page,
                                                 big_session_file) -> None:
    size = big_session_file.stat().st_size
    assert size > 11 * 2**20, size  # above what one websocket message carries (~10 MiB)
    page = browser_page
    page.goto(dashboard_url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(MAIN_FIG, timeout=LOAD_TIMEOUT_MS)
    # the tab's controls are made when it first opens (issue 29), as a person opens it
    page.locator(".cx-tabs .lm-TabBar-tab", has_text="Data & model").click()
    page.wait_for_selector(FILE_INPUT, state="attached", timeout=LOAD_TIMEOUT_MS)
    label = page.locator(".cx-load-session button").inner_text()
    assert "≤ 200 MiB" in label, label  # the limit is shown before any upload
    page.set_input_files(FILE_INPUT, str(big_session_file))
    page.wait_for_function(
        "(sel) => /loaded|error/.test(document.querySelector(sel).textContent)",
        arg=STATUS, timeout=LOAD_TIMEOUT_MS, polling=500)
    status = html.unescape(page.locator(STATUS).inner_text())
    assert "loaded mnist-lenet300.pt: lenet300 on mnist-5k" in status, status
    assert not our_console_errors(page), page.console_errors
