"""Safe sharing over plain HTTP: only the dashboard is served, visitors see no tracebacks,
idle kernels are culled. (Host and token refusals are in test_cli.py and test_install.py.)"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import artifact_path, dashboard_server

pytestmark = [pytest.mark.slow]
SECRET = "secret-marker-4711"


def get(url: str, timeout: float = 180) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def failing_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"raise ValueError('{SECRET}')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / "failing.ipynb"
    nbformat.write(nb, path)
    return path


def test_visitors_see_no_traceback_unless_debug(tmp_path):
    """An error in the notebook shows a generic message; its text appears only with --debug."""
    notebook = failing_notebook(tmp_path)
    with dashboard_server(str(notebook)) as url:
        status, page = get(url)
    assert status == 200 and SECRET not in page and "Traceback" not in page
    with dashboard_server(str(notebook), "--debug") as url:
        status, page = get(url)
    assert SECRET in page  # the switch works, so the check above can fail


def test_only_the_dashboard_notebook_is_served():
    """Other notebooks and files next to it or in the working directory are refused."""
    with dashboard_server() as url:
        refused = {path: get(url + path)[0] for path in (
            "voila/files/talk.ipynb", "voila/files/digits_mlp.pt", "voila/render/talk.ipynb",
            "voila/files/../../pyproject.toml", "files/pyproject.toml", "api/contents",
            "tree", "talk.ipynb")}
    assert all(code in (403, 404) for code in refused.values()), refused


def test_idle_kernels_are_culled(tmp_path):
    """A visitor who leaves: the kernel is shut down after the idle timeout (here 3 s)."""
    with dashboard_server("--cull-idle", "3") as url:
        port = url.rstrip("/").rsplit(":", 1)[1]
        status, _ = get(url)  # runs the notebook in a new kernel; no websocket stays open
        assert status == 200
        log = artifact_path(f"dashboard-{port}.log")
        deadline = time.monotonic() + 120
        while "Culling kernel" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(1)
        assert "Culling kernel" in log.read_text()
