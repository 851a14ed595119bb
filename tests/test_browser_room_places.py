"""The room's places in headless Chromium (issue 26): a browser behind an address whose
plain GETs hold the starting places is asked to retry, gets its page once they expire, and
keeps its place past the grace; a stalled upload says so and gives the button back."""

from __future__ import annotations

import time

import nbformat
import pytest
from browser_util import LOAD_TIMEOUT_MS
from test_sharing import Visitor, kernel_id_of, kernels, room_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KERNEL_ID_JS = "JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
GRACE_S = 20
STALL_MS = 3000
NOTEBOOK = f"""
import ipywidgets as w
from explorer.ui.files_panel import ChunkedUpload

class Deaf(ChunkedUpload):
    def _chunk(self, content, piece):  # never acknowledges a chunk: the upload stalls
        pass

status = w.Label('', _dom_classes=['cx-upload-status'])
upload = Deaf(lambda file, name: None, lambda name, message: setattr(status, 'value', message),
              stall_ms={STALL_MS}, chunk_bytes=1024, in_flight=2, accept='')
upload.add_class('cx-stall')
w.VBox([w.Label('hello room', _dom_classes=['cx-hello']), upload, status])
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("room-places-browser")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, folder / "places.ipynb")
    with room_server(str(folder / "places.ipynb"), "--preheat", "0", "--max-visitors", "2",
                     "--connect-grace", str(GRACE_S)) as url_proc:
        yield url_proc


def alive(proc, kernel_id: str) -> bool:
    return any(kernel_id in " ".join(k.cmdline()) for k in kernels(proc))


def test_a_browser_gets_its_place_after_plain_gets_expire_and_keeps_it(served, browser_page):
    url, proc = served
    hoarders = [Visitor(url).get() for _ in range(2)]  # two plain GETs: no websocket
    assert [status for status, _ in hoarders] == [200, 200]
    page = browser_page
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    # A clear refusal first (2 pages from this address never connected) ...
    assert "have not connected" in page.inner_text("body")
    # ... which retries by itself and gets the page once the plain GETs' kernels are gone.
    page.locator(".cx-hello").wait_for(timeout=LOAD_TIMEOUT_MS)
    # Their kernels were asked to shut down; the processes end a moment later.
    deadline = time.monotonic() + 60
    while any(alive(proc, kernel_id_of(body)) for _, body in hoarders):
        assert time.monotonic() < deadline, "an expired page's kernel outlived its shutdown"
        time.sleep(0.5)
    mine = page.evaluate(KERNEL_ID_JS)
    status, body = Visitor(url).get()  # another plain GET: its kernel goes after the grace
    assert status == 200
    hoarded = kernel_id_of(body)
    deadline = time.monotonic() + GRACE_S + 120
    while alive(proc, hoarded):
        assert time.monotonic() < deadline, "a never-connected kernel outlived the grace"
        time.sleep(0.5)
    assert alive(proc, mine), "the browser's kernel was shut down"
    assert page.locator(".cx-session-banner").count() == 0


def test_a_stalled_upload_says_so_and_resets_the_button(served, browser_page, tmp_path):
    url, _ = served
    page = browser_page
    page.goto(url, timeout=LOAD_TIMEOUT_MS)
    page.locator(".cx-hello").wait_for(timeout=LOAD_TIMEOUT_MS)
    button = page.locator(".cx-stall button")
    idle = button.inner_text()
    file = tmp_path / "ten.pt"
    file.write_bytes(b"z" * 10_240)
    page.set_input_files(".cx-stall input[type=file]", str(file))
    page.wait_for_function(
        "() => /stalled at \\d+%/.test(document.querySelector('.cx-stall button').textContent)",
        timeout=LOAD_TIMEOUT_MS, polling=100)
    # The kernel hears of it and says what arrived (it acknowledged nothing).
    status = page.locator(".cx-upload-status")
    page.wait_for_function(
        "() => /stalled after/.test(document.querySelector('.cx-upload-status').textContent)",
        timeout=LOAD_TIMEOUT_MS, polling=200)
    assert "ten.pt" in status.inner_text()
    # The control comes back to its idle label, usable.
    page.wait_for_function(
        "(idle) => document.querySelector('.cx-stall button').textContent === idle",
        arg=idle, timeout=LOAD_TIMEOUT_MS, polling=200)
    assert button.is_enabled()
